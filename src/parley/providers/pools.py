"""Several SDK clients per provider, so no connection pool grows past a few dozen.

httpcore rescans every connection of its pool each time a request starts or a
response closes. With one pool per provider, 500 concurrent streams make each
of those scans walk 500 connections (about 1,000 method calls) on the event
loop: admitting a burst of streams then costs O(n^2) and stalls every other
stream for tens of milliseconds. Here each in-flight stream leases a shard (an
SDK client with its own pool) holding fewer than ``PER_SHARD`` streams; new
shards are made when all are full (cheap: they share one TLS context) and kept,
so their idle keep-alive connections serve the next burst.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx2

C = TypeVar("C")
T = TypeVar("T")

PER_SHARD = 32


@dataclass(slots=True, eq=False)
class Shard(Generic[C]):
    client: C
    active: int = 0


class Shards(Generic[C]):
    """``acquire()`` the least busy shard for one request, ``release()`` it after.

    ``make`` builds another client; without it (a client handed in by a test or
    an embedding app) every request uses the first one.
    """

    def __init__(
        self, first: C, make: Callable[[], C] | None = None, per_shard: int = PER_SHARD
    ) -> None:
        self._shards: list[Shard[C]] = [Shard(first)]
        self._make = make
        self._per_shard = per_shard

    @property
    def first(self) -> C:
        return self._shards[0].client

    def __len__(self) -> int:
        return len(self._shards)

    def acquire(self) -> Shard[C]:
        shard = min(self._shards, key=_load)
        if shard.active >= self._per_shard and self._make is not None:
            shard = Shard(self._make())
            self._shards.append(shard)
        shard.active += 1
        return shard

    @staticmethod
    def release(shard: Shard[C]) -> None:
        shard.active -= 1

    async def stream(self, run: Callable[[C], AsyncGenerator[T, None]]) -> AsyncIterator[T]:
        """Iterate ``run(client)`` on a leased shard. However the iteration ends
        (finished, failed, or closed early by the consumer), ``run``'s generator is
        closed at once (its upstream response with it) and the lease comes back."""
        shard = self.acquire()
        try:
            async with contextlib.aclosing(run(shard.client)) as items:
                async for item in items:
                    yield item
        finally:
            self.release(shard)

    async def aclose(self, close: Callable[[C], Awaitable[object]]) -> None:
        for shard in self._shards:
            await close(shard.client)


def http_options(tls: ssl.SSLContext, timeout_s: float) -> dict[str, Any]:
    """Keyword arguments for one shard's httpx client: the provider's single TLS
    context (building one costs ~30 ms) and keep-alive room for a full shard."""
    return {
        "verify": tls,
        "timeout": timeout_s,
        "limits": httpx2.Limits(max_keepalive_connections=PER_SHARD),
    }


def _load(shard: Shard[C]) -> int:
    return shard.active
