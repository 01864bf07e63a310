"""Reattaching to an answer mid-stream: every event has an id, and
``GET /api/conversations/{id}/messages/{message_id}/events`` with ``Last-Event-ID``
answers the events missed, then the live tail, ending like the original stream.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

from apihelpers import Client, Frame, make_client, signup
from apihelpers import parse_frames as parse
from parley.providers.scripted import Reply, ScriptedModel
from parley.turns.events import MemoryTurnEvents, Resync

WORDS = " ".join(f"w{i}" for i in range(120)) + " "


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


def text_of(frames: list[Frame]) -> str:
    return "".join(data["text"] for _, name, data in frames if name == "text")


class Reader:
    """Reads one SSE response as it arrives (a real HTTP server), noting when each
    frame came."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.times: list[float] = []
        self._buffer = ""

    async def read(self, response: httpx.Response, *, stop_after_texts: int = 0) -> None:
        async for chunk in response.aiter_text():
            self._buffer += chunk
            *blocks, self._buffer = self._buffer.split("\n\n")
            for block in blocks:
                self.frames += parse(block)
                self.times.append(time.monotonic())
            if stop_after_texts and sum(f[1] == "text" for f in self.frames) >= stop_after_texts:
                return  # hang up mid-answer


async def _conversation(http: httpx.AsyncClient) -> str:
    conv = (await http.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    return str(conv["id"])


async def test_reconnect_gets_exactly_the_missed_events_then_the_live_tail(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    scripted.enqueue(Reply(text=WORDS, chunk_size=1, delay_s=0.02))
    base, key = live
    root = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=root, headers=headers, timeout=30) as http:
        conv = await _conversation(http)
        first = Reader()
        async with http.stream(
            "POST", f"/api/conversations/{conv}/messages", json={"content": "count for me"}
        ) as response:
            await first.read(response, stop_after_texts=10)  # then the page "reloads"
        assert first.frames[0][:2] == (0, "start")
        answer_id = first.frames[0][2]["assistant_message"]["id"]
        texts = [f for f in first.frames if f[1] == "text"]
        last_seen = texts[5][0]  # the client kept the first six (a cut mid-read)
        assert last_seen is not None
        url = f"/api/conversations/{conv}/messages/{answer_id}/events"

        again = Reader()
        asked = time.monotonic()
        async with http.stream("GET", url, headers={"Last-Event-ID": str(last_seen)}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            await again.read(r)
        # the missed events came at once, the rest as the model wrote them
        assert again.times[0] - asked < 1.0
        assert again.times[-1] - again.times[0] > 0.5

        # the whole turn as a reader from the beginning sees it (the log lingers)
        async with http.stream("GET", url) as r:
            everything = Reader()
            await everything.read(r)

    ids = [f[0] for f in everything.frames]
    assert ids[0] == 0 and everything.frames[0][1] == "start"
    assert all(a is not None and b is not None and b > a for a, b in itertools.pairwise(ids))
    # exactly the events after Last-Event-ID, each once, in order, then the tail
    assert again.frames == [f for f in everything.frames if f[0] is not None and f[0] > last_seen]
    assert (
        text_of([f for f in first.frames if f[0] is not None and f[0] <= last_seen])
        + text_of(again.frames)
        == WORDS
    )
    names = [f[1] for f in again.frames]
    assert names[-2:] == ["done", "title"]
    done = again.frames[-2][2]
    assert done["message"]["status"] == "complete" and done["message"]["content"] == WORDS
    assert again.frames[-1][2] == {"conversation_id": conv, "title": "Count for me"}
    # the replayed start shows the answer as it began (its text comes in the events)
    assert everything.frames[0][2]["assistant_message"]["content"] == ""


async def test_a_second_reader_and_the_query_parameter(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """Another tab reads along from the start while the first still reads; an
    ``EventSource`` passes the id as ``?last_event_id=``."""
    scripted.enqueue(Reply(text=WORDS, chunk_size=2, delay_s=0.01))
    base, key = live
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base.removesuffix("/v1"), headers=headers, timeout=30
    ) as http:
        conv = await _conversation(http)
        first = Reader()

        async def post() -> None:
            async with http.stream(
                "POST", f"/api/conversations/{conv}/messages", json={"content": "go"}
            ) as response:
                await first.read(response)

        task = asyncio.create_task(post())
        while not any(f[1] == "text" for f in first.frames):
            await asyncio.sleep(0.01)
        answer_id = first.frames[0][2]["assistant_message"]["id"]
        url = f"/api/conversations/{conv}/messages/{answer_id}/events"
        tab = Reader()
        async with http.stream("GET", url, params={"last_event_id": 0}) as r:
            await tab.read(r)
        await task
    assert tab.frames == first.frames[1:]  # all but `start`, which it had
    assert text_of(tab.frames) == WORDS


async def test_a_finished_turn_answers_its_final_state(client: Client, user: Any) -> None:
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    r = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
    original = parse(r.text)
    answer = original[0][2]["assistant_message"]["id"]
    url = f"/api/conversations/{conv['id']}/messages/{answer}/events"
    # a reader that had every event still gets a `done` (never a hanging stream)
    last = original[-1][0]
    r = await client.get(url, headers={"Last-Event-ID": str(last)})
    frames = parse(r.text)
    assert [f[1] for f in frames] == ["done"]
    assert frames[0][2]["message"]["id"] == answer
    assert frames[0][2]["message"]["status"] == "complete"
    # a malformed id is refused, not guessed
    r = await client.get(url, headers={"Last-Event-ID": "soon"})
    assert r.status_code == 422 and r.json()["code"] == "bad_event_id"


@pytest.mark.parametrize(
    "overrides",
    [{"stream_replay_linger_s": 0}, {"stream_replay_events": 0}],  # gone, or never kept
    indirect=True,
    ids=["gone", "off"],
)
async def test_after_the_log_is_gone_the_stored_message_is_the_answer(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue("The whole answer.")
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    r = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
    answer = parse(r.text)[0][2]["assistant_message"]["id"]
    r = await client.get(
        f"/api/conversations/{conv['id']}/messages/{answer}/events",
        headers={"Last-Event-ID": "3"},
    )
    assert r.status_code == 200
    frames = parse(r.text)
    assert [(f[1], f[2]["message"]["content"]) for f in frames] == [("done", "The whole answer.")]
    assert frames[0][2]["finish_reason"] == "stop"
    assert frames[0][2]["usage"]["output_tokens"] > 0


async def test_another_user_gets_404(app: Any, client: Client, user: Any) -> None:
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    r = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
    answer = parse(r.text)[0][2]["assistant_message"]["id"]
    async with make_client(app) as other:
        await signup(other, "eve@example.com")
        mine = (await other.post("/api/conversations", json={})).json()
        for url in (
            f"/api/conversations/{conv['id']}/messages/{answer}/events",
            f"/api/conversations/{mine['id']}/messages/{answer}/events",  # own conversation
        ):
            r = await other.get(url, headers={"Last-Event-ID": "0"})
            assert r.status_code == 404, url
            assert "hi" not in r.text
    # the owner: a user message is not an answer to reattach to
    view = (await client.get(f"/api/conversations/{conv['id']}")).json()
    user_message = view["messages"][0]["id"]
    r = await client.get(f"/api/conversations/{conv['id']}/messages/{user_message}/events")
    assert r.status_code == 404


@pytest.mark.parametrize("overrides", [{"stream_replay_events": 8}], indirect=True)
async def test_a_bounded_log_drops_the_oldest_and_the_reader_resyncs(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """A reader further behind than the log keeps gets the answer so far (``resync``)
    and then the events after it: nothing lost, nothing twice."""
    scripted.enqueue(Reply(text=WORDS, chunk_size=1, delay_s=0.01))
    base, key = live
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base.removesuffix("/v1"), headers=headers, timeout=30
    ) as http:
        conv = await _conversation(http)
        first = Reader()
        async with http.stream(
            "POST", f"/api/conversations/{conv}/messages", json={"content": "go"}
        ) as response:
            await first.read(response, stop_after_texts=40)
        answer_id = first.frames[0][2]["assistant_message"]["id"]
        url = f"/api/conversations/{conv}/messages/{answer_id}/events"
        behind = Reader()
        async with http.stream("GET", url, headers={"Last-Event-ID": "2"}) as r:
            await behind.read(r)
        # after the end: what is kept ends with `done`, which holds the whole answer
        late = Reader()
        async with http.stream("GET", url, headers={"Last-Event-ID": "2"}) as r:
            await late.read(r)

    seq, name, data = behind.frames[0]
    assert name == "resync" and seq is not None and seq > 10
    assert WORDS.startswith(data["content"]) and len(data["content"]) > 0
    rest = behind.frames[1:]
    assert all(f[0] is not None and f[0] > seq for f in rest)
    assert data["content"] + text_of(rest) == WORDS
    assert rest[-2][1] == "done" and rest[-2][2]["message"]["content"] == WORDS

    assert len(late.frames) <= 8
    assert [f[1] for f in late.frames][-2:] == ["done", "title"]
    assert late.frames[-2][2]["message"]["content"] == WORDS


# ------------------------------------------------------------------ the log alone


async def test_the_log_replays_from_any_id_and_trims_by_halves() -> None:
    events = MemoryTurnEvents(max_events=4, linger_s=60)
    log = events.open("m1", "c1", snapshot=lambda seq: Resync(seq, f"upto{seq}", ""))
    for i in range(1, 8):
        assert log.publish(f"e{i}") == i
    assert len(log.items) <= 2 * 4  # never more than twice the bound

    async def read(after: int) -> list[tuple[int, Any]]:
        found = events.subscribe("m1", after)
        assert found is not None and found[0] == "c1"
        out = []
        async for item in found[1]:
            out.append(item)
            if item[0] == log.last:
                break
        return out

    assert await read(5) == [(6, "e6"), (7, "e7")]
    assert await read(4) == [(5, "e5"), (6, "e6"), (7, "e7")]  # the 4 newest are kept
    got = await read(1)  # behind the bound: the state so far, then nothing missed
    assert isinstance(got[0][1], Resync) and got[0][1].content == "upto7"
    assert got[1:] == []

    live = asyncio.create_task(read(7))
    await asyncio.sleep(0)
    log.publish("e8")
    assert await asyncio.wait_for(live, 1) == [(8, "e8")]
    events.close("m1")
    assert events.subscribe("m1") is not None  # lingers
    events.clear()
    assert events.subscribe("m1") is None


async def test_a_reader_that_falls_behind_while_reading_resyncs() -> None:
    """Items dropped while a reader was suspended (a slow client): it gets the state
    so far, never an item by a wrong index."""
    events = MemoryTurnEvents(max_events=3, linger_s=0)
    log = events.open("m1", "c1", snapshot=lambda seq: Resync(seq, f"upto{seq}", ""))
    for i in range(1, 3):
        log.publish(f"e{i}")
    found = events.subscribe("m1", 0)
    assert found is not None
    reader = found.items
    assert await reader.__anext__() == (1, "e1")
    for i in range(3, 20):  # published while the reader is away: trimmed past it
        log.publish(f"e{i}")
    seq, item = await reader.__anext__()
    assert isinstance(item, Resync) and (seq, item.content) == (19, "upto19")
    log.publish("e20")
    assert await reader.__anext__() == (20, "e20")
    events.close("m1")
    assert [x async for x in reader] == []
