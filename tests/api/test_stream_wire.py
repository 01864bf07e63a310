"""An event read back from another worker's Redis stream is framed byte for byte
as the worker running the turn frames it (``parley.turns.streams`` wire format
through ``parley.api.turn_stream``), so a reader cannot tell where it reattached."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from parley.api.turn_stream import turn_stream
from parley.messages import (
    ContextNotice,
    Done,
    ErrorEvent,
    MemoryUpdated,
    ReasoningDelta,
    SourcesEvent,
    TextDelta,
    ToolConfirm,
    ToolResult,
    ToolStart,
    Usage,
    UsageEvent,
)
from parley.turns.events import Resync, TitleMade
from parley.turns.streams import Relayed, from_wire, to_wire

WEB = {"kind": "web", "url": "https://example.com/a", "title": "A", "snippet": "é ✓", "ref": 1}
CHART = {
    "id": "f1",
    "filename": "chart.png",
    "media_type": "image/png",
    "kind": "image",
    "size": 12,
    "url": "/api/files/f1",
}
ITEMS: list[Any] = [
    TextDelta('Hello "world"\n'),
    ReasoningDelta("thinking…"),
    ToolStart("c1", "web_search", '{"q": "bees"}', offset=5),
    ToolConfirm("c2", "send_mail", "{}"),
    ToolResult("c1", "web_search", "found", False, 12.5, [CHART]),  # type: ignore[list-item]
    SourcesEvent([WEB]),  # type: ignore[list-item]
    MemoryUpdated([]),
    UsageEvent(Usage(10, 20, 3)),
    ContextNotice(2, True, "Older messages were summarized."),
    ErrorEvent("provider_error", "The model failed.", True),
    TitleMade("conv1", "Bees"),
    Resync(7, "so far", "why", [], [WEB]),  # type: ignore[list-item]
]


async def _items(pairs: list[tuple[int, Any]]) -> AsyncIterator[tuple[int, Any]]:
    for pair in pairs:
        yield pair


async def _frames(pairs: list[tuple[int, Any]]) -> list[bytes]:
    return [chunk async for chunk in turn_stream(None, _items(pairs))]


def _across_redis(item: Any) -> Any:
    return from_wire(json.loads(json.dumps(to_wire(item))))


async def test_every_event_is_framed_the_same_after_crossing_redis() -> None:
    here = [(seq, item) for seq, item in enumerate(ITEMS, start=1)]
    there = [(seq, _across_redis(item)) for seq, item in here]
    assert any(isinstance(item, Relayed) for _, item in there)
    local, remote = await _frames(here), await _frames(there)
    # the last frame is the `done` the stream ends with (no stored message here)
    assert len(local) == len(ITEMS) + 1
    assert remote == local


def test_done_crosses_with_its_usage() -> None:
    done = _across_redis(Done("stop", Usage(5, 6, 1)))
    assert isinstance(done, Done)
    assert (done.finish_reason, done.usage) == ("stop", Usage(5, 6, 1))
