"""What ``resume`` and ``reconnect`` share: a live answer and a reader that reattaches.

Both benchmarks stream answers paced like a model from a scripted upstream to a
reader that stays on, and every ~250 ms time a second reader that reattaches to
the answer's events (``GET .../events``, with or without ``Last-Event-ID``) until
it has every event the first reader had. They differ only in where the second
reader asks (the same worker, another worker) and what it is compared with, so
the answer, the pacing and the timed reattach live here once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from bench.common import Proc

__all__ = [
    "BEHIND",
    "PACED_RATE",
    "PACED_TOKENS",
    "PARLEY_MODEL",
    "LiveAnswer",
    "follow_answer",
    "pace_upstream",
    "server_env",
    "timed_reattach",
]

PARLEY_MODEL = "openai/scripted-model"
PACED_TOKENS = 300
PACED_RATE = 50  # tokens per second: a model's pace, not the upstream's fastest
BEHIND = 10  # events the reattaching reader missed
TICK_S = 0.25  # how often a reattach is timed while the answer streams
_ID = re.compile(rb"^id: (\d+)$", re.M)
_ANSWER = re.compile(rb'"assistant_message":\{"id":"([^"]+)"')


def server_env(upstream: Proc) -> dict[str, str]:
    """A Parley server's environment for these runs: the scripted upstream, and no
    second model call (titles, memory) or local model beside the relay's work."""
    return {
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_API_KEY": "sk-bench",
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        "PARLEY_TITLE_MODEL": "none",
        "PARLEY_MEMORY_AUTO": "false",
    }


async def pace_upstream(upstream: Proc, answers: int) -> None:
    """Script the next ``answers`` answers of the upstream at ``PACED_RATE``."""
    root = upstream.url.rsplit("/v1", 1)[0]
    script = [{"tokens": PACED_TOKENS, "rate": PACED_RATE}] * answers
    async with httpx.AsyncClient(trust_env=False) as http:
        (await http.post(f"{root}/_script", json=script)).raise_for_status()


@dataclass
class LiveAnswer:
    """An answer streaming to its first reader: the events it has had so far."""

    conversation: str
    answer: str | None = None  # the assistant message's id, once ``start`` came
    latest: int = 0  # the highest event id the first reader has
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def events_url(self, base: str) -> str:
        return f"{base}/api/conversations/{self.conversation}/messages/{self.answer}/events"


async def follow_answer(
    http: httpx.AsyncClient, base: str, tick: Callable[[LiveAnswer], Awaitable[None]]
) -> None:
    """Start a conversation on ``base`` and an answer in it read to the end; every
    ``TICK_S`` while it streams (once more than ``BEHIND`` events came) call ``tick``."""
    r = await http.post(f"{base}/api/conversations", json={"model": PARLEY_MODEL})
    r.raise_for_status()
    live = LiveAnswer(r.json()["id"])

    async def first_reader() -> None:
        buffer = b""
        async with http.stream(
            "POST",
            f"{base}/api/conversations/{live.conversation}/messages",
            json={"content": "Go on."},
        ) as response:
            async for chunk in response.aiter_raw():
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    found = _ID.search(block)
                    if found:
                        live.latest = max(live.latest, int(found.group(1)))
                    if live.answer is None and b"event: start" in block:
                        got = _ANSWER.search(block)
                        live.answer = got.group(1).decode() if got else None
        live.finished.set()

    reader = asyncio.create_task(first_reader())
    try:
        while not live.finished.is_set():
            await asyncio.sleep(TICK_S)
            if live.answer is None or live.latest <= BEHIND + 2 or live.finished.is_set():
                continue
            await tick(live)
    finally:
        await reader


async def timed_reattach(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    target: int,
    *,
    done_counts: bool = False,
) -> float | None:
    """Milliseconds until a reader of ``url`` has event ``target`` (None: the stream
    ended first). ``done_counts``: a ``done`` event also counts (a reader that
    followed the stored answer gets the whole answer and ``done``, without ids)."""
    start = time.perf_counter()
    async with http.stream("GET", url, headers=headers) as response:
        got = await _read_until(response, target, done_counts)
    return (time.perf_counter() - start) * 1000 if got else None


async def _read_until(response: httpx.Response, target: int, done_counts: bool) -> bool:
    buffer = b""
    async for chunk in response.aiter_raw():
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            found = _ID.search(block)
            if (found and int(found.group(1)) >= target) or (
                done_counts and b"event: done" in block
            ):
                return True
    return False
