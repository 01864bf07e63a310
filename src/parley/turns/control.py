"""Stop signals for running generations, and for everything a revoked owner runs.

A stop request may reach a different worker than the one streaming, so with
``redis_url`` set the signal travels over Redis pub/sub; with a shared database
(PostgreSQL) it is also written as a row every worker polls
(``parley.storage.signals``): every ``POLL_S`` without Redis or while Redis is
away, every ``FALLBACK_POLL_S`` while Redis delivers (in case a message was lost).
A signal heard both ways is acted on once (the row's id travels in the message).
With neither (one process on SQLite) an in-memory registry is enough. All expose
the same calls.

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
import logging
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

from parley.storage.db import Database
from parley.storage.signals import add_stop, newest_stop, stops_after
from parley.turns.pubsub import RedisSubscription

log = logging.getLogger(__name__)

POLL_S = 0.5  # stop rows read this often without Redis (or while it is away)
FALLBACK_POLL_S = 5.0  # ...and this often while Redis delivers

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

    def stop_all_local(self) -> None:
        """Shutting down: stop every generation this worker runs."""
        ...

    async def aclose(self) -> None: ...


class LocalControl:
    """The generations of this process; with ``db`` also the stops of other
    workers, polled from the database."""

    def __init__(self, db: Database | None = None) -> None:
        self._running: dict[str, set[StopSignal]] = {}
        self._listeners: list[Listener] = []
        self._db = db
        self._seen: set[int] = set()  # stop rows acted on (heard over Redis or polled)
        self._last_row = 0
        self._poller: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Other workers' stops arrive at once (over Redis)."""
        return False

    async def start(self) -> None:
        if self._db is None:
            return
        try:
            async with self._db.session() as session:
                self._last_row = await newest_stop(session)
        except Exception as exc:
            log.warning("stop signals: could not read the stop requests (%s)", exc)
        self._poller = asyncio.create_task(self._poll_forever())

    def _heard(self, row_id: int, key: str) -> None:
        """A stop row's signal, heard over Redis or polled: acted on once."""
        if row_id in self._seen or row_id <= self._last_row:  # the poll had it
            return
        self._seen.add(row_id)
        self.signal_local(key)

    async def _poll_forever(self) -> None:
        assert self._db is not None
        while True:
            await asyncio.sleep(FALLBACK_POLL_S if self.listening else POLL_S)
            try:
                async with self._db.session() as session:
                    rows = await stops_after(session, self._last_row)
            except Exception as exc:
                log.warning("stop signals: could not poll the stop requests (%s)", exc)
                continue
            for row_id, key in rows:
                if row_id not in self._seen:
                    self._seen.add(row_id)
                    self.signal_local(key)
                self._last_row = max(self._last_row, row_id)
            self._seen = {i for i in self._seen if i > self._last_row - 10_000}

    async def _record(self, key: str) -> int:
        """The stop as a row (0 without a database, or when it cannot be written)."""
        if self._db is None:
            return 0
        try:
            async with self._db.session() as session:
                row_id = await add_stop(session, key)
                await session.commit()
        except Exception as exc:
            log.warning("stop signals: could not record a stop (%s)", exc)
            return 0
        self._seen.add(row_id)
        return row_id

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

    def stop_all_local(self) -> None:
        for events in list(self._running.values()):
            for event in events:
                event.set()

    async def stop(self, key: str) -> None:
        self.signal_local(key)
        await self._record(key)

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None


class RedisControl(LocalControl):
    """Local registry plus a Redis subscription that relays other workers' stops
    (and, with ``db``, the polled rows for when Redis is away).

    Redis being away is not fatal (``parley.turns.pubsub``): stops still reach
    generations in this worker (and, with a database, in every worker within
    ``POLL_S``), and the subscription comes back by itself.
    """

    def __init__(self, url: str, db: Database | None = None) -> None:
        super().__init__(db)
        self._sub = RedisSubscription(
            url,
            self._on_message,
            patterns=(CHANNEL_PREFIX + "*",),
            purpose="stop signals",
        )

    def _on_message(self, channel: str, data: bytes) -> None:
        key = channel.removeprefix(CHANNEL_PREFIX)
        if data.isdigit() and int(data):
            self._heard(int(data), key)
        else:  # a stop that has no row (no database, or it could not be written)
            self.signal_local(key)

    @property
    def listening(self) -> bool:
        return self._sub.listening

    async def start(self) -> None:
        await super().start()
        await self._sub.start()

    async def stop(self, key: str) -> None:
        self.signal_local(key)
        row_id = await self._record(key)
        await self._sub.publish(CHANNEL_PREFIX + key, str(row_id).encode())

    async def aclose(self) -> None:
        await super().aclose()
        await self._sub.aclose()


async def make_control(redis_url: str | None, db: Database | None = None) -> GenerationControl:
    """The stop signals of this worker: over Redis when configured, through ``db``
    (a database several workers share) when given, in memory otherwise."""
    control = RedisControl(redis_url, db) if redis_url else LocalControl(db)
    await control.start()
    return control
