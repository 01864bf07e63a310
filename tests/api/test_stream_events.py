"""The chat stream's events in the OpenAPI document match what the encoder sends.

``parley.api.stream_events`` declares each event's payload for the document (and
so for the web app's generated types); ``parley.api.turn_stream`` writes the
stream from the dataclasses of ``parley.messages`` without pydantic. Here the
real encoder writes one of each event and every payload is validated against its
model and must come back unchanged from it: a field the encoder adds, drops,
renames or retypes fails here, not in the browser.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from parley.api import turn_stream
from parley.api.app import create_app
from parley.api.stream_events import STREAM_EVENTS, ChatStreamEvent
from parley.config import load_settings
from parley.messages import (
    ContextNotice,
    Done,
    ErrorEvent,
    MemoryUpdated,
    ReasoningDelta,
    SourcesEvent,
    StepAttachment,
    TextDelta,
    ToolConfirm,
    ToolResult,
    ToolStart,
    Usage,
    UsageEvent,
)
from parley.storage.tables import Message
from parley.turns.events import Resync, TitleMade

CHAT_ROUTES = (
    "/api/conversations/{conversation_id}/messages",
    "/api/conversations/{conversation_id}/messages/{message_id}/regenerate",
    "/api/conversations/{conversation_id}/messages/{message_id}/edit",
)


def frames(raw: bytes, ids: list[int | None] | None = None) -> list[tuple[str, str]]:
    """``(event, data)`` of each SSE frame, ``data`` as the JSON text sent; each
    frame's ``id`` (None without one) is appended to ``ids``."""
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        seq = None
        if lines[0].startswith("id: "):
            seq = int(lines.pop(0)[4:])
        assert len(lines) == 2 and lines[0].startswith("event: "), block
        assert lines[1].startswith("data: "), block
        out.append((lines[0][7:], lines[1][6:]))
        if ids is not None:
            ids.append(seq)
    return out


def row(id: str, role: str, parent_id: str | None, **fields: Any) -> Message:
    values: dict[str, Any] = {
        "id": id,
        "conversation_id": "c1",
        "user_id": "u1",
        "parent_id": parent_id,
        "role": role,
        "content": "",
        "reasoning": "",
        "steps": [],
        "sources": [],
        "status": "complete",
        "provider": None,
        "model": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_ms": None,
        "ttft_ms": None,
        "finish_reason": None,
        "cost": 0.0,
        "error_code": None,
        "error_message": None,
        "feedback": 0,
        "pinned": False,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    values.update(fields)
    return Message(**values)


ATTACHMENT: StepAttachment = {
    "id": "o1",
    "filename": "chart.png",
    "media_type": "image/png",
    "kind": "image",
    "size": 1234,
    "url": "/api/sandbox/outputs/o1",
}

ANSWER = row(
    "a1",
    "assistant",
    "u1",
    content="Paris [1].",
    reasoning="The capital.",
    steps=[
        {
            "id": "call_1",
            "name": "run_python",
            "arguments": '{"code": "1"}',
            "output": "1",
            "is_error": False,
            "duration_ms": 12.5,
            "attachments": [ATTACHMENT],
        }
    ],
    sources=[{"kind": "memory", "id": "m1", "title": "Likes maps", "action": "added"}],
    provider="scripted",
    model="scripted/scripted",
    input_tokens=12,
    output_tokens=3,
    latency_ms=40.0,
    ttft_ms=9.5,
    finish_reason="stop",
)

# One of each event the engine and the features send, with every optional part set.
EVENTS = [
    SourcesEvent(
        sources=[
            {"kind": "memory", "id": "m1", "title": "Likes maps", "action": "added"},
            {"kind": "conversation", "id": "c9", "title": "Maps", "url": "/c/c9"},
            {"kind": "web", "url": "https://example.com/", "title": "Example", "snippet": "An"},
            {
                "kind": "file",
                "title": "atlas.pdf",
                "ref": 1,
                "file_id": "f1",
                "filename": "atlas.pdf",
                "page": 3,
                "section": "Europe",
                "chunk_id": 7,
                "snippet": "Paris is the capital",
                "mode": "retrieved",
                "char_start": 10,
                "char_end": 30,
            },
            {
                "kind": "file",
                "title": "scan.pdf",
                "ref": None,
                "file_id": "f2",
                "filename": "scan.pdf",
                "page": None,
                "section": None,
                "chunk_id": None,
                "snippet": "",
                "mode": "pending",
                "status": "parsing",
                "detail": "Still reading page 2 of 9.",
            },
        ]
    ),
    MemoryUpdated(
        memories=[{"kind": "memory", "id": "m1", "title": "Likes maps", "action": "added"}]
    ),
    ContextNotice(dropped_messages=4, summarized=True, message="Older messages were summarized."),
    ReasoningDelta(text="The capital."),
    TextDelta(text='Paris "quoted" é\n'),
    ToolStart(id="call_1", name="run_python", arguments='{"code": "1"}'),
    ToolConfirm(id="call_2", name="fetch_url", arguments='{"url": "https://example.com/"}'),
    ToolResult(
        id="call_1",
        name="run_python",
        output="1",
        is_error=False,
        duration_ms=12.5,
        attachments=[ATTACHMENT],
    ),
    UsageEvent(usage=Usage(input_tokens=12, output_tokens=3)),
    ErrorEvent(code="rate_limited", message="Try again in a minute.", retryable=True),
    Done(finish_reason="stop", usage=Usage(input_tokens=12, output_tokens=3)),
]

# Only on a reattached stream whose missed events were dropped (``turns/events.py``).
RESYNC = Resync(
    seq=1,
    content="Par",
    reasoning="The capital.",
    steps=[ANSWER.steps[0]],
    sources=[{"kind": "memory", "id": "m1", "title": "Likes maps", "action": "added"}],
)


async def encoded(*, stored: bool, ids: list[int | None] | None = None) -> list[tuple[str, str]]:
    """The frames of one turn as the chat routes send them."""
    question = row("u1", "user", None, content="Capital of France?")
    start = {
        "user_message": turn_stream.message_out(question),
        "assistant_message": turn_stream.message_out(
            row("a1", "assistant", "u1", status="streaming")
        ),
    }
    final = turn_stream.Final(  # the encoder's own: the turn's last item
        message=ANSWER,
        finish_reason="stop",
        usage=Usage(input_tokens=12, output_tokens=3),
        title="Capital of France",
        siblings=["a0", "a1"],
    )

    async def items() -> AsyncIterator[tuple[int, Any]]:
        sequence: list[Any] = [RESYNC, *EVENTS]
        if stored:
            sequence += [final, TitleMade("c1", "Capital of France")]
        for seq, item in enumerate(sequence, 1):
            yield seq, item

    raw = b"".join([chunk async for chunk in turn_stream.turn_stream(start, items())])
    return frames(raw, ids)


def check(name: str, data: str) -> None:
    model = STREAM_EVENTS[name]
    sent = json.loads(data)
    parsed = model.model_validate_json(data, strict=True)
    assert parsed.model_dump(mode="json") == sent, f"{name}: the model changes the payload"
    # the frame as the document's union reads it
    frame = ChatStreamEvent.model_validate({"event": name, "data": sent})
    assert type(frame.root.data) is model


async def test_every_event_the_encoder_writes_matches_its_model() -> None:
    ids: list[int | None] = []
    sent = await encoded(stored=True, ids=ids)
    names = [name for name, _ in sent]
    # every frame has an id (start 0), increasing: a reader reattaches from the last one
    assert ids[0] == 0 and all(
        b is not None and a is not None and b > a for a, b in itertools.pairwise(ids)
    )
    assert names[0] == "start" and names[-2:] == ["done", "title"]
    assert set(names) == set(STREAM_EVENTS), "an event is sent but not declared, or the reverse"
    for name, data in sent:
        check(name, data)
    done = json.loads(dict(sent)["done"])
    assert done["message"]["steps"][0]["attachments"] == [ATTACHMENT]
    assert done["message"]["siblings"] == ["a0", "a1"]


async def test_done_without_a_stored_answer_matches_too() -> None:
    sent = await encoded(stored=False)
    assert sent[-1][0] == "done"
    done = json.loads(sent[-1][1])
    assert done["message"] is None and done["finish_reason"] == "stop"
    check("done", sent[-1][1])


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("tool_start", {"id": "c", "name": "t", "arguments": {"code": "1"}}),  # an object
        ("text", {"text": "a", "extra": 1}),
        ("usage", {"usage": {"input_tokens": 1}}),
        ("done", {"finish_reason": "stop", "usage": None}),
    ],
)
def test_a_drifted_payload_is_caught(name: str, payload: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        try:
            check(name, json.dumps(payload))
        except ValueError as exc:  # pydantic's ValidationError
            raise AssertionError(str(exc)) from exc


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root: Path = tmp_path_factory.mktemp("openapi")
    settings = load_settings(
        data_dir=root / "data",
        database_url=f"sqlite+aiosqlite:///{root / 'unused.db'}",
        local_model_enabled=False,
        providers=[],
    )
    return create_app(settings).openapi()


def test_the_chat_routes_declare_the_stream_events(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for path in CHAT_ROUTES:
        content = openapi["paths"][path]["post"]["responses"]["200"]["content"]
        assert content == {
            "text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatStreamEvent"}}
        }, path
    reattach = "/api/conversations/{conversation_id}/messages/{message_id}/events"
    content = openapi["paths"][reattach]["get"]["responses"]["200"]["content"]
    assert content == {
        "text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatStreamEvent"}}
    }
    union = schemas["ChatStreamEvent"]
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == set(STREAM_EVENTS)
    for name, ref in mapping.items():
        frame = schemas[ref.removeprefix("#/components/schemas/")]
        assert frame["properties"]["event"]["const"] == name
        payload = frame["properties"]["data"]["$ref"].removeprefix("#/components/schemas/")
        assert payload == STREAM_EVENTS[name].__name__
    assert schemas["ToolStartEvent"]["properties"]["arguments"]["type"] == "string"


def test_every_reference_in_the_document_resolves(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                refs.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(openapi)
    missing = sorted({r for r in refs if r.removeprefix("#/components/schemas/") not in schemas})
    assert not missing, missing
