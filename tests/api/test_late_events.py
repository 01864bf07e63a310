"""Events that come after ``done`` (issue 12 item 9): a memory that automatic
extraction learned reaches the open answer as a late ``memory_updated``.

The turn's stream stays open after ``done`` until the model-made title and the
after-turn hooks have finished (never longer than ``AFTER_TURN_HOLD_S``); what a
hook hands back is published on the turn's log, so the request's own reader and a
reader reattaching with ``Last-Event-ID`` both get it. A turn that learned nothing,
or that failed, ends as before. Real HTTP server, both backends; the chat and memory
models are the scripted ones.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

from apihelpers import Client, Frame, parse_frames, parse_sse
from parley.errors import ProviderUnavailable
from parley.memory.feature import MemoryFeature
from parley.memory.testing import HashingEmbedder
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel
from parley.turns.events import LogHold, MemoryTurnEvents

EXTRACTION_DELAY_S = 0.6  # the memory model thinks a while: the answer is done first


@pytest.fixture
def extraction() -> list[dict[str, Any]]:
    """Operations the memory model returns to the next extraction request."""
    return []


@pytest.fixture
def chat() -> ScriptedModel:
    return ScriptedModel(default="Lisbon is lovely, and bees like lavender.")


@pytest.fixture
def scripted_models(
    chat: ScriptedModel, extraction: list[dict[str, Any]]
) -> dict[str, ScriptedModel]:
    def memory(request: ChatRequest) -> Reply:
        if request.response_format is None:
            return Reply(text="Summary.")
        ops = list(extraction)
        extraction.clear()
        return Reply(data={"memories": ops}, chunk_size=1000, delay_s=EXTRACTION_DELAY_S)

    return {
        "chat": chat,
        "memory": ScriptedModel(default=memory),
        "titles": ScriptedModel(default="Lisbon bees"),
    }


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {
        "default_model": "scripted/chat",
        "memory_model": "scripted/memory",
        "title_model": "scripted/titles",
        "memory_recall_floor": 0.0,
    }


@pytest.fixture
def features() -> list[Any]:
    return [lambda s: MemoryFeature(s, embedder=HashingEmbedder())]


async def frames_of(response: httpx.Response, on_frame: Any = None) -> list[Frame]:
    """Every frame of an SSE response as it comes; ``on_frame(frame)`` for each."""
    frames: list[Frame] = []
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        *blocks, buffer = buffer.split("\n\n")
        for block in blocks:
            for frame in parse_frames(block):
                frames.append(frame)
                if on_frame is not None:
                    on_frame(frame)
    return frames


def names(frames: list[Frame]) -> list[str]:
    return [name for _, name, _ in frames]


async def test_a_learned_memory_reaches_the_open_stream_and_a_reader_that_reattaches(
    live: tuple[str, str], extraction: list[dict[str, Any]]
) -> None:
    extraction.append({"action": "add", "fact": "I keep bees", "memory": 0})
    base, key = live
    root = base.removesuffix("/v1")
    async with httpx.AsyncClient(
        base_url=root, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        conv = (await http.post("/api/conversations", json={})).json()["id"]
        came: dict[str, float] = {}
        reattached: list[asyncio.Task[list[Frame]]] = []

        async def reattach(answer: str, after: int) -> list[Frame]:
            url = f"/api/conversations/{conv}/messages/{answer}/events"
            async with http.stream("GET", url, headers={"Last-Event-ID": str(after)}) as r:
                assert r.status_code == 200
                return await frames_of(r)

        def noted(frame: Frame) -> None:
            seq, name, data = frame
            came.setdefault(name, time.monotonic())
            if name == "done":  # the page reloads just after the answer finished
                assert seq is not None
                reattached.append(asyncio.create_task(reattach(data["message"]["id"], seq)))

        async with http.stream(
            "POST",
            f"/api/conversations/{conv}/messages",
            json={"content": "I live in Lisbon and I keep bees. What flowers do bees like?"},
        ) as response:
            frames = await frames_of(response, noted)
        ended = time.monotonic()
        again = await reattached[0]
        stored = (await http.get(f"/api/conversations/{conv}")).json()["messages"][-1]

    # The answer was done (and the composer free) first; the memory came later, on
    # the same stream, which then ended.
    seen = names(frames)
    assert seen.index("done") < seen.index("memory_updated")
    assert came["memory_updated"] - came["done"] >= EXTRACTION_DELAY_S * 0.8
    assert ended - came["memory_updated"] < 2.0
    [late] = [data for _, name, data in frames if name == "memory_updated"]
    assert late["url"] == "/settings/memory"
    assert [(m["title"], m["action"]) for m in late["memories"]] == [("I keep bees.", "added")]
    done = next(data for _, name, data in frames if name == "done")
    assert [s.get("action") for s in done["message"]["sources"]] == []  # not known yet
    # The model's title came too: the log closed only once both were done.
    assert {"conversation_id": conv, "title": "Lisbon bees"} in [
        data for _, name, data in frames if name == "title"
    ]
    ids = [seq for seq, _, _ in frames]
    assert all(a is not None and b is not None and b > a for a, b in itertools.pairwise(ids))

    # A reader that came back after `done` gets what followed it, the memory included,
    # with the same ids, then the stored answer (now listing the change) as `done`.
    after_done = [f for f in frames if f[0] is not None and f[0] > ids[seen.index("done")]]
    assert again[:-1] == after_done
    assert again[-1][1] == "done"
    assert [(s["title"], s.get("action")) for s in again[-1][2]["message"]["sources"]] == [
        ("I keep bees.", "added")
    ]
    # A reload shows the same chip: the change is kept on the stored answer.
    assert [(s["title"], s.get("action")) for s in stored["sources"]] == [("I keep bees.", "added")]


async def test_extraction_that_changes_nothing_sends_nothing_and_the_stream_ends_promptly(
    client: Client, user: dict[str, Any], extraction: list[dict[str, Any]]
) -> None:
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    asked = time.monotonic()
    response = await client.post(
        f"/api/conversations/{conv}/messages", json={"content": "I live in Lisbon, any tips?"}
    )
    took = time.monotonic() - asked
    events = parse_sse(response.text)
    assert "memory_updated" not in [name for name, _ in events]
    assert [name for name, _ in events][-1] in ("done", "title")
    # the extraction's own think time, not a hold's time limit
    assert took < EXTRACTION_DELAY_S + 5.0
    memories = (await client.get("/api/memories")).json()["items"]
    assert memories == []


async def test_a_failed_turn_ends_as_before_and_learns_nothing(
    client: Client,
    user: dict[str, Any],
    chat: ScriptedModel,
    extraction: list[dict[str, Any]],
) -> None:
    extraction.append({"action": "add", "fact": "I keep bees", "memory": 0})
    chat.enqueue(Reply(error=ProviderUnavailable("connection refused")))
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    asked = time.monotonic()
    response = await client.post(
        f"/api/conversations/{conv}/messages", json={"content": "I live in Lisbon and I keep bees"}
    )
    events = parse_sse(response.text)
    assert time.monotonic() - asked < EXTRACTION_DELAY_S  # no extraction held it open
    seen = [name for name, _ in events]
    assert "memory_updated" not in seen
    assert dict(events)["done"]["message"]["status"] == "failed"
    assert extraction  # the memory model was never asked
    assert (await client.get("/api/memories")).json()["items"] == []


async def test_a_hold_closes_the_log_when_every_holder_is_done_or_at_its_time_limit() -> None:
    events = MemoryTurnEvents(max_events=10, linger_s=60)
    both = events.open("m1", "c1")
    hold = LogHold(lambda: events.close("m1"), 2, 30.0)
    once = hold.releaser()
    once()
    once()  # counted once
    assert not both.closed  # the other holder still works
    hold.release()
    assert both.closed
    hold.release()  # a late release changes nothing

    stuck = events.open("m2", "c1")
    LogHold(lambda: events.close("m2"), 1, 0.05)  # a hook that never returns
    await asyncio.sleep(0.2)
    assert stuck.closed

    nothing = events.open("m3", "c1")
    LogHold(lambda: events.close("m3"), 0, 30.0)  # nothing to wait for
    assert nothing.closed
    events.clear()
