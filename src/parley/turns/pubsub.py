"""A Redis pub/sub subscription that outlives Redis going away.

Workers tell each other "look now" over Redis (stop this generation, this tool
call was decided); the database or the local process keeps the truth, so a
lost message only costs latency. Hence Redis is never fatal here: a failed
subscribe at start, or a connection dropped later, is logged and retried every
``RESUBSCRIBE_S`` while the rest of Parley carries on, and a failed publish
returns False instead of raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RESUBSCRIBE_S = 2.0


class RedisSubscription:
    """Subscribes to ``channels`` (exact names) or ``patterns`` (glob) and calls
    ``on_message(channel, data)`` for each message, in the event loop."""

    def __init__(
        self,
        url: str,
        on_message: Callable[[str, bytes], None],
        *,
        channels: tuple[str, ...] = (),
        patterns: tuple[str, ...] = (),
        purpose: str,
    ) -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.from_url(url)
        self._on_message = on_message
        self._channels, self._patterns = channels, patterns
        self._purpose = purpose
        self._listener: asyncio.Task[None] | None = None
        self.listening = False  # messages are arriving (else callers rely on their fallback)

    async def start(self) -> None:
        """Subscribe now if Redis answers; keep trying in the background if not."""
        pubsub = None
        try:
            pubsub = await self._subscribe()
        except Exception as exc:
            log.warning(
                "%s: Redis unavailable, retrying in the background (%s)", self._purpose, exc
            )
        self._listener = asyncio.create_task(self._listen_forever(pubsub))

    async def publish(self, channel: str, data: bytes | str) -> bool:
        try:
            await self._redis.publish(channel, data)
        except Exception as exc:
            log.warning("%s: could not publish to Redis (%s)", self._purpose, exc)
            return False
        return True

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def _subscribe(self) -> Any:
        pubsub = self._redis.pubsub()
        try:
            if self._channels:
                await pubsub.subscribe(*self._channels)
            if self._patterns:
                await pubsub.psubscribe(*self._patterns)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self.listening = True
        return pubsub

    async def _listen_forever(self, pubsub: Any) -> None:
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                async for message in pubsub.listen():
                    if message.get("type") in ("message", "pmessage"):
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        data = message.get("data")
                        self._on_message(channel, data if isinstance(data, bytes) else b"")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: Redis subscription lost (%s)", self._purpose, exc)
            finally:
                self.listening = False
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
            await asyncio.sleep(RESUBSCRIBE_S)
