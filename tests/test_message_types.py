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
from parley.messages import Source, ToolResult, ToolStep
from parley.sandbox.outputs import Attachment
from parley.turns.runner import _mark_confirmation, _record_result
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


def test_tool_steps_round_trip_from_start_to_result() -> None:
    steps: list[ToolStep] = [{"id": "call_1", "name": "run_python", "arguments": '{"code": "1"}'}]
    assert round_trips(STEPS, steps)
    _mark_confirmation(steps, "call_1")
    attachment = Attachment("o1", "plot.png", "image/png", "image", 42).as_dict()
    _record_result(steps, ToolResult("call_1", "run_python", "ok", False, 12.5, [attachment]))
    _record_result(steps, ToolResult("call_2", "calculator", "42"))  # no start seen
    assert steps[0]["attachments"] == [attachment] and steps[0]["needs_confirmation"]
    assert steps[1]["arguments"] == ""
    assert round_trips(STEPS, steps)
