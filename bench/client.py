"""The one load generator every target is measured with (httpx, async).

Per stream it records time to first token (the first body block that carries
a non-empty text delta), total time, SSE events and bytes. Counting is done on
raw bytes (no JSON parsing), so the client's own cost is small and identical
for Parley, the direct upstream and LiteLLM.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

# A text token: OpenAI chunk with non-empty content, or Parley's native `text` event.
OPENAI_TOKEN = re.compile(rb'"content":"[^"]')
NATIVE_TOKEN = re.compile(rb"event: text\n")


@dataclass(slots=True)
class StreamResult:
    ttft: float = float("nan")  # seconds
    total: float = float("nan")
    events: int = 0
    nbytes: int = 0
    error: str | None = None


_SSL = None


def make_client(connections: int = 4, timeout: float = 30) -> httpx.AsyncClient:
    """An httpx client for 127.0.0.1 (one shared SSL context: it is never used,
    but building one per client costs milliseconds)."""
    global _SSL
    if _SSL is None:
        _SSL = ssl.create_default_context()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(timeout), trust_env=False, verify=_SSL
    )


async def stream(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    token: re.Pattern[bytes] = OPENAI_TOKEN,
    deadline: float = 120,
) -> StreamResult:
    """POST ``body`` and read the whole SSE response (at most ``deadline`` s)."""
    result = StreamResult()
    start = time.perf_counter()
    last = b""
    try:
        async with (
            asyncio.timeout(deadline),
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                text = (await response.aread())[:200].decode(errors="replace")
                result.error = f"HTTP {response.status_code}: {text}"
                return result
            async for block in response.aiter_raw():
                if result.ttft != result.ttft and token.search(block):
                    result.ttft = time.perf_counter() - start
                result.events += (last + block).count(b"\n\n")
                result.nbytes += len(block)
                last = block[-1:]
        result.total = time.perf_counter() - start
        if result.ttft != result.ttft:
            result.error = "no token received"
    except (httpx.HTTPError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    except TimeoutError:
        result.error = f"stream not finished after {deadline:g} s"
    return result


@dataclass(slots=True)
class LoadResult:
    results: list[StreamResult]
    wall: float  # seconds

    @property
    def ok(self) -> list[StreamResult]:
        return [r for r in self.results if r.error is None]

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.results if r.error is not None]

    @property
    def events(self) -> int:
        return sum(r.events for r in self.results)

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall if self.wall else float("nan")

    def tokens_per_s(self, per_stream: int) -> float:
        """Upstream chunks relayed per second: each finished stream carried them all
        (Parley joins the chunks of one network read into one event, so it sends
        fewer events than it relays chunks)."""
        return len(self.ok) * per_stream / self.wall if self.wall else float("nan")


async def load(
    one: Callable[[httpx.AsyncClient], Awaitable[StreamResult]], total: int, concurrency: int
) -> LoadResult:
    """``total`` streams from ``concurrency`` virtual users, each with its own
    client (one httpx pool shared by hundreds of streams costs the client more
    than the server: its pool bookkeeping grows with the number of connections)."""
    clients = [make_client(1) for _ in range(concurrency)]
    shares = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]

    async def user(client: httpx.AsyncClient, count: int) -> list[StreamResult]:
        return [await one(client) for _ in range(count)]

    try:
        start = time.perf_counter()
        done = await asyncio.gather(*(user(c, n) for c, n in zip(clients, shares, strict=True)))
        wall = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return LoadResult([r for results in done for r in results], wall)


def chat_body(model: str, stream_: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Write a long answer, please."}],
        "stream": stream_,
        **extra,
    }


# ------------------------------------------------------------------ targets


@dataclass
class Target:
    """Something to stream from: Parley, the upstream directly, or a peer."""

    name: str
    url: str  # full POST URL
    body: dict[str, Any]
    headers: dict[str, str]
    cpu: Callable[[], float] | None = None  # CPU seconds of the serving process(es)
    token: re.Pattern[bytes] = OPENAI_TOKEN
    prepare: Callable[[httpx.AsyncClient], Awaitable[str]] | None = None  # per-stream URL

    async def one(self, client: httpx.AsyncClient) -> StreamResult:
        try:
            url = await self.prepare(client) if self.prepare else self.url
        except (httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            return StreamResult(error=f"prepare: {type(exc).__name__}: {exc}")
        return await stream(client, url, self.body, self.headers, self.token)


async def alternate(
    client: httpx.AsyncClient, targets: list[Target], rounds: int
) -> dict[str, list[StreamResult]]:
    """Sequential streams, one target after the other, the order rotating each
    round, so drift in the machine's load hits every target alike."""
    out: dict[str, list[StreamResult]] = {t.name: [] for t in targets}
    for i in range(rounds):
        shift = i % len(targets)
        for target in targets[shift:] + targets[:shift]:
            out[target.name].append(await target.one(client))
    return out


@dataclass
class Measured:
    load: LoadResult
    cpu: float  # CPU seconds the target's server used during the load

    @property
    def events_per_cpu_s(self) -> float:
        return self.load.events / self.cpu if self.cpu > 0 else float("nan")

    def tokens_per_cpu_s(self, per_stream: int) -> float:
        return len(self.load.ok) * per_stream / self.cpu if self.cpu > 0 else float("nan")


async def measure_load(target: Target, total: int, concurrency: int) -> Measured:
    cpu0 = target.cpu() if target.cpu else 0.0
    result = await load(target.one, total, concurrency)
    cpu1 = target.cpu() if target.cpu else 0.0
    return Measured(result, cpu1 - cpu0)
