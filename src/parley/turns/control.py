"""Stop signals for running generations.

A stop request may reach a different worker than the one streaming, so with
``redis_url`` set the signal travels over Redis pub/sub; without it (one
process) an in-memory registry is enough. Both expose the same three calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Protocol

from parley.turns.pubsub import RedisSubscription

CHANNEL_PREFIX = "parley:stop:"


class GenerationControl(Protocol):
    def track(self, conversation_id: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        """Register a running generation; the event is set when a stop arrives."""
        ...

    async def stop(self, conversation_id: str) -> None:
        """Ask every generation of the conversation, on any worker, to stop."""
        ...

    async def aclose(self) -> None: ...


class LocalControl:
    def __init__(self) -> None:
        self._running: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def track(self, conversation_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._running.setdefault(conversation_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._running.get(conversation_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._running[conversation_id]

    def signal_local(self, conversation_id: str) -> None:
        for event in self._running.get(conversation_id, ()):
            event.set()

    async def stop(self, conversation_id: str) -> None:
        self.signal_local(conversation_id)

    async def aclose(self) -> None:
        return None


class RedisControl(LocalControl):
    """Local registry plus a Redis subscription that relays other workers' stops.

    Redis being away is not fatal (``parley.turns.pubsub``): stops still reach
    generations in this worker, and the subscription comes back by itself.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._sub = RedisSubscription(
            url,
            lambda channel, _: self.signal_local(channel.removeprefix(CHANNEL_PREFIX)),
            patterns=(CHANNEL_PREFIX + "*",),
            purpose="stop signals",
        )

    @property
    def listening(self) -> bool:
        return self._sub.listening

    async def start(self) -> None:
        await self._sub.start()

    async def stop(self, conversation_id: str) -> None:
        self.signal_local(conversation_id)
        await self._sub.publish(CHANNEL_PREFIX + conversation_id, b"stop")

    async def aclose(self) -> None:
        await self._sub.aclose()


async def make_control(redis_url: str | None) -> GenerationControl:
    if not redis_url:
        return LocalControl()
    control = RedisControl(redis_url)
    await control.start()
    return control
