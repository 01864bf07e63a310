"""Stop signals for running generations.

A stop request may reach a different worker than the one streaming, so with
``redis_url`` set the signal travels over Redis pub/sub; without it (one
process) an in-memory registry is enough. Both expose the same three calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol

log = logging.getLogger(__name__)

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
    """Local registry plus a Redis subscription that relays other workers' stops."""

    def __init__(self, url: str) -> None:
        super().__init__()
        from redis import asyncio as aioredis

        self._redis = aioredis.from_url(url)
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.psubscribe(CHANNEL_PREFIX + "*")
        self._listener = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: object) -> None:
        async for message in pubsub.listen():  # type: ignore[attr-defined]
            if message.get("type") != "pmessage":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            self.signal_local(channel.removeprefix(CHANNEL_PREFIX))

    async def stop(self, conversation_id: str) -> None:
        self.signal_local(conversation_id)
        await self._redis.publish(CHANNEL_PREFIX + conversation_id, b"stop")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self._redis.aclose()


async def make_control(redis_url: str | None) -> GenerationControl:
    if not redis_url:
        return LocalControl()
    control = RedisControl(redis_url)
    await control.start()
    return control
