"""Steps and sources are typed once (``parley.messages``) and the JSON stays as sent.

Pydantic response models use these TypedDicts as field types and drop any key a
type does not declare, so every producer's output must round-trip unchanged.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pydantic import TypeAdapter

from parley.knowledge.context import FileContext
from parley.knowledge.retrieval import Hit
from parley.messages import Source, ToolResult, ToolStart, ToolStep
from parley.sandbox.outputs import Attachment
from parley.turns.recorder import Recorder
from parley.web_tools.search import SearchResult

SOURCES: TypeAdapter[list[Source]] = TypeAdapter(list[Source])
STEPS: TypeAdapter[list[ToolStep]] = TypeAdapter(list[ToolStep])


def round_trips(adapter: TypeAdapter[Any], value: Any) -> bool:
    return bool(adapter.dump_python(adapter.validate_python(value)) == value)


def test_every_kind_of_source_round_trips() -> None:
    hit = Hit(7, "f1", "a.pdf", 3, "Intro", "Some text", 10, 19, 0)
    row = SimpleNamespace(id="f2", filename="b.docx", status="parsing")
    sources = [
        FileContext.hit_source(hit, 1),
        FileContext._note(row, "pending", "parsing, 2 of 5 pages"),  # type: ignore[arg-type]
        SearchResult("A page", "https://example.com/", "snippet").source(),
        {"kind": "memory", "id": "m1", "title": "Likes tea"},
        {"kind": "memory", "id": "m2", "title": "Lives in Lyon", "action": "updated"},
        {"kind": "conversation", "id": "c1", "title": "Trip", "url": "/c/c1"},
    ]
    assert round_trips(SOURCES, sources)


def bookkeeping_only() -> Recorder:
    """A recorder that is never asked to write (no database, no model)."""
    return Recorder(
        None,  # type: ignore[arg-type]
        user_id="u1",
        conversation_id="c1",
        message=SimpleNamespace(id="m1"),  # type: ignore[arg-type]
        model=None,  # type: ignore[arg-type]
        title_from=None,
        flush_interval_s=1.0,
    )


def test_tool_steps_round_trip_from_start_to_result() -> None:
    recorder = bookkeeping_only()
    recorder.tool_started(ToolStart("call_1", "run_python", '{"code": "1"}'))
    assert round_trips(STEPS, recorder.steps)
    recorder.confirmation_asked("call_1")
    attachment = Attachment("o1", "plot.png", "image/png", "image", 42).as_dict()
    recorder.tool_finished(ToolResult("call_1", "run_python", "ok", False, 12.5, [attachment]))
    recorder.tool_finished(ToolResult("call_2", "calculator", "42"))  # no start seen
    steps = recorder.steps
    assert steps[0]["attachments"] == [attachment] and steps[0]["needs_confirmation"]
    assert steps[1]["arguments"] == "" and "attachments" not in steps[1]
    assert round_trips(STEPS, steps)


def test_tool_sources_follow_the_context_sources_and_keep_sent_lists() -> None:
    recorder = bookkeeping_only()
    memory: Source = {"kind": "memory", "id": "m1", "title": "Likes tea"}
    web: Source = SearchResult("A page", "https://example.com/", "snippet").source()
    recorder.context_sources([memory])
    sent = recorder.sources
    cited: list[Source] = []
    assert not recorder.tool_sources(cited)
    cited.append(web)
    assert recorder.tool_sources(cited) and recorder.sources == [memory, web]
    assert sent == [memory]  # a list already streamed is not changed afterwards
    assert not recorder.tool_sources(cited)  # nothing new
