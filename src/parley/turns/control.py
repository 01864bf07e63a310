"""Stop signals for running generations, and for everything a revoked owner runs.

A stop request may reach a different worker than the one streaming, so with
``redis_url`` set the signal travels over Redis pub/sub; without it (one
process) an in-memory registry is enough. Both expose the same calls.

A generation is tracked under its conversation id and under its *owners*
(``owner("user", id)``, ``owner("key", id)``): disabling or deleting an account,
or revoking an API key, is one ``stop`` of the owner's key, and every
generation it owns stops on whichever worker runs it. Listeners
(``add_listener``) hear every signal that reaches this worker, so a revocation
can also end work that is not a generation (code kernels, background jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

from parley.turns.pubsub import RedisSubscription

CHANNEL_PREFIX = "parley:stop:"
_OWNER_MARK = "owner:"

Listener = Callable[[str], None]


def owner(kind: Literal["user", "key"], ident: str) -> str:
    """The key that stops everything a user, or one API key, is running."""
    return f"{_OWNER_MARK}{kind}:{ident}"


def owner_of(key: str) -> tuple[str, str] | None:
    """``(kind, id)`` when ``key`` was made by ``owner``, else None (a conversation)."""
    if not key.startswith(_OWNER_MARK):
        return None
    kind, _, ident = key.removeprefix(_OWNER_MARK).partition(":")
    return kind, ident


class StopSignal(asyncio.Event):
    """Set when a stop arrives; ``revoked`` says it came for an owner, not the
    conversation (then nothing more may run on the owner's behalf)."""

    revoked = False


class GenerationControl(Protocol):
    def track(
        self, conversation_id: str, *owners: str
    ) -> contextlib.AbstractContextManager[StopSignal]:
        """Register a running generation; the signal is set when a stop for the
        conversation or for one of its ``owners`` arrives."""
        ...

    async def stop(self, key: str) -> None:
        """Stop every generation tracked under ``key`` (a conversation id or an
        ``owner(...)``), on any worker, and tell every worker's listeners."""
        ...

    def add_listener(self, listener: Listener) -> None: ...

    async def aclose(self) -> None: ...


class LocalControl:
    def __init__(self) -> None:
        self._running: dict[str, set[StopSignal]] = {}
        self._listeners: list[Listener] = []

    @contextlib.contextmanager
    def track(self, conversation_id: str, *owners: str) -> Iterator[StopSignal]:
        event = StopSignal()
        keys = (conversation_id, *owners)
        for key in keys:
            self._running.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            for key in keys:
                events = self._running.get(key)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._running[key]

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def signal_local(self, key: str) -> None:
        revoked = owner_of(key) is not None
        for event in self._running.get(key, ()):
            event.revoked = event.revoked or revoked
            event.set()
        for listener in self._listeners:
            listener(key)

    async def stop(self, key: str) -> None:
        self.signal_local(key)

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

    async def stop(self, key: str) -> None:
        self.signal_local(key)
        await self._sub.publish(CHANNEL_PREFIX + key, b"stop")

    async def aclose(self) -> None:
        await self._sub.aclose()


async def make_control(redis_url: str | None) -> GenerationControl:
    if not redis_url:
        return LocalControl()
    control = RedisControl(redis_url)
    await control.start()
    return control
