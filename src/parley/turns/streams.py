"""A turn's events for readers on any worker: Redis streams, or the stored answer.

``MemoryTurnEvents`` (``turns/events.py``) serves the readers of this worker's
turns. ``SharedTurnEvents`` adds the readers that reach another worker (a load
balancer sends a reconnecting page anywhere):

- **With Redis** (``redis_url``) every item a turn publishes is also appended to
  the Redis stream ``parley:turn:<message_id>`` with its sequence number as the
  entry id (``0-<seq>``), trimmed to about ``max_events`` entries and expiring
  ``ttl_s`` after the last write (``linger_s`` once the turn ended, like the local
  log). A small hash ``parley:turn:<message_id>:meta`` says whose turn it is. The
  writes are batched: publishing stays a list append, and one background task
  sends whatever accumulated as one pipeline per event-loop turn. A reader on
  another worker ``XREAD``s from its ``Last-Event-ID``: the missed entries, then
  the live ones (``BLOCK``), until the end marker (entry ``1-0``).
- **Without Redis, or while it is away**, a reader on another worker follows the
  stored answer: the turn's periodic flush writes the content with the sequence
  number it includes (``messages.stream_seq``), and the reader polls the row every
  ``POLL_S`` and sends a ``resync`` (the answer so far, with that id) whenever it
  moved. Its ids stay those of the turn, so a later reconnect to the worker running
  it resumes exactly there.

Redis going away is never fatal. A failed write marks the turns of that batch as
having a gap and is retried after ``RETRY_S``; the first write after it is a
``resync`` entry (the recorder's snapshot as of the newest item) in place of what
was lost, so a reader crossing the gap gets the answer so far, not holes. A
reader whose ``XREAD`` fails, or that meets a gap without a ``resync``, goes on
by following the stored answer.

Items cross Redis as JSON ``{"t": kind, ...payload}``: what the HTTP layer frames,
except ``done`` (``Done``: held back until ``final``), and ``final`` (``Final``:
only the message id; the reader loads the stored row, as a reader of the same
worker gets it). The rest come back as ``Relayed`` (name and payload, framed as
they are).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from parley.messages import Done, TextDelta, Usage, UsageEvent
from parley.storage.conversations import ConversationStore, fail_stale_streaming
from parley.storage.db import Database
from parley.storage.tables import Message as MessageRow
from parley.storage.tables import utcnow
from parley.turns.events import MemoryTurnEvents, Resync, Snapshot, Subscription, TitleMade, TurnLog
from parley.turns.recorder import Final

log = logging.getLogger(__name__)

__all__ = ["Relayed", "SharedTurnEvents", "from_wire", "to_wire"]

PREFIX = "parley:turn:"
END_ID = "1-0"  # the end marker's entry id: after every ``0-<seq>``
POLL_S = 0.5  # a reader following the stored answer reads it this often
BLOCK_MS = 5_000  # a Redis reader's wait; after it, it checks the answer still streams
RETRY_S = 1.0  # after a failed write, the next attempt
# A stored answer silent this long is no longer followed: its worker died (a live
# turn writes its row every ``recorder.HEARTBEAT_S``). The reader that notices marks
# it failed (interrupted), so every reader ends with a clear error and its text.
STALE_S = 45.0


@dataclass(slots=True)
class Relayed:
    """An event read back from another worker: its frame's name and payload."""

    kind: str
    payload: dict[str, Any]


# ---------------------------------------------------------------- the wire


def _tokens(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def to_wire(item: Any) -> dict[str, Any]:
    """An item as it crosses Redis (JSON-ready)."""
    if isinstance(item, TextDelta):
        return {"t": "text", "text": item.text}
    if isinstance(item, Final):
        return {
            "t": "final",
            "message_id": item.message.id,
            "finish_reason": item.finish_reason,
            "usage": asdict(item.usage),
            "title": item.title,
        }
    if isinstance(item, Done):
        return {"t": "done", "finish_reason": item.finish_reason, "usage": asdict(item.usage)}
    if isinstance(item, UsageEvent):
        return {"t": "usage", "usage": _tokens(item.usage)}
    if isinstance(item, TitleMade):
        return {"t": "title", "conversation_id": item.conversation_id, "title": item.title}
    if isinstance(item, Resync):
        payload = asdict(item)
        del payload["seq"]
        return {"t": "resync", **payload}
    if isinstance(item, Relayed):
        return {"t": item.kind, **item.payload}
    payload = asdict(item)
    return {"t": payload.pop("type"), **payload}


def from_wire(data: dict[str, Any]) -> Any:
    """The item back (``final`` stays a dict: the reader loads the stored row)."""
    kind = data.pop("t")
    if kind == "text":
        return TextDelta(data["text"])
    if kind == "done":
        return Done(data["finish_reason"], Usage(**data["usage"]))
    if kind == "final":
        return {"t": "final", **data}
    return Relayed(kind, data)


def _key(message_id: str) -> str:
    return PREFIX + message_id


def _meta_key(message_id: str) -> str:
    return PREFIX + message_id + ":meta"


def _seq(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


# ---------------------------------------------------------------- writing


class _MirroredLog(TurnLog):
    """A turn's log whose items also go to Redis (through the writer's batch)."""

    __slots__ = ("_mirror",)

    def __init__(self, mirror: _Writer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mirror = mirror

    def publish(self, item: Any) -> int:
        seq = super().publish(item)
        self._mirror.push(self, seq, item)
        return seq


class _Writer:
    """Sends the items of every mirrored log to Redis, batched per event-loop turn."""

    def __init__(self, redis: Any, max_events: int, ttl_s: float, linger_s: float) -> None:
        self.redis = redis
        self.max_events = max_events
        self.ttl_s = max(1, int(ttl_s))
        self.linger_s = max(1, int(linger_s))
        self.pending: list[tuple[TurnLog, int, Any]] = []
        self.ended: list[TurnLog] = []
        self.fresh: set[str] = set()  # logs whose meta hash is not written yet
        self.gaps: set[str] = set()  # logs that lost writes (a ``resync`` goes first)
        self.healthy = True
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def opened(self, log: TurnLog) -> None:
        self.fresh.add(log.message_id)
        self._ensure_running()

    def push(self, log: TurnLog, seq: int, item: Any) -> None:
        self.pending.append((log, seq, item))
        self._wake.set()

    def end(self, log: TurnLog) -> None:
        self.ended.append(log)
        self._wake.set()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let the turn publish the rest of this loop turn
            pending, self.pending = self.pending, []
            ended, self.ended = self.ended, []
            if not pending and not ended:
                continue
            try:
                # An entry Redis already has (a write whose answer was lost) is refused
                # with an error reply: nothing to redo, so replies are not raised;
                # a connection that fails still raises.
                replies = await self._batch(pending, ended).execute(raise_on_error=False)
            except Exception as exc:
                if self.healthy:
                    log.warning(
                        "turn streams: Redis write failed, readers elsewhere follow "
                        "the stored answer until it is back (%s)",
                        exc,
                    )
                self.healthy = False
                for item_log, _, _ in pending:
                    self.gaps.add(item_log.message_id)
                for ended_log in ended:
                    self.gaps.add(ended_log.message_id)
                    self.ended.append(ended_log)  # the end marker is retried
                await asyncio.sleep(RETRY_S)
                self._wake.set()
                continue
            refused = [r for r in replies if isinstance(r, Exception)]
            if refused:
                log.info("turn streams: Redis refused %d writes (%s)", len(refused), refused[0])
            if not self.healthy:
                log.warning("turn streams: Redis writes work again")
            self.healthy = True
            for ended_log in ended:
                self.fresh.discard(ended_log.message_id)
                self.gaps.discard(ended_log.message_id)

    def _batch(self, pending: list[tuple[TurnLog, int, Any]], ended: list[TurnLog]) -> Any:
        """One pipeline: the meta hash of new logs, a ``resync`` for logs with a gap,
        the items, the expiry, the end markers. Built without awaiting, so a snapshot
        taken here covers exactly the items published so far."""
        pipe = self.redis.pipeline(transaction=False)
        touched: dict[str, TurnLog] = {}
        for item_log, _, _ in pending:
            touched.setdefault(item_log.message_id, item_log)
        for ended_log in ended:
            touched.setdefault(ended_log.message_id, ended_log)
        skip: dict[str, int] = {}
        for message_id, item_log in touched.items():
            key = _key(message_id)
            if message_id in self.fresh or message_id in self.gaps:
                meta = {"conversation_id": item_log.conversation_id, "user_id": item_log.user_id}
                pipe.hset(_meta_key(message_id), mapping=meta)
                self.fresh.discard(message_id)
            if message_id in self.gaps and item_log.snapshot is not None:
                head = item_log.last
                wire = to_wire(item_log.snapshot(head))
                pipe.xadd(key, {"d": json.dumps(wire)}, id=f"0-{head}")
                skip[message_id] = head
                self.gaps.discard(message_id)
        for item_log, seq, item in pending:
            if seq <= skip.get(item_log.message_id, 0):
                continue
            pipe.xadd(
                _key(item_log.message_id),
                {"d": json.dumps(to_wire(item))},
                id=f"0-{seq}",
                maxlen=self.max_events,
                approximate=True,
            )
        ending = {ended_log.message_id for ended_log in ended}
        for message_id in touched:
            ttl = self.linger_s if message_id in ending else self.ttl_s
            if message_id in ending:
                pipe.xadd(_key(message_id), {"d": "{}"}, id=END_ID)
            pipe.expire(_key(message_id), ttl)
            pipe.expire(_meta_key(message_id), ttl)
        return pipe

    async def aclose(self) -> None:
        if self._task is not None:
            if self.pending or self.ended:
                self._wake.set()
                await asyncio.sleep(0.05)  # a last batch, if Redis answers
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


# ---------------------------------------------------------------- the events


class SharedTurnEvents(MemoryTurnEvents):
    """This worker's logs in memory, mirrored to Redis when ``redis_url`` is set;
    ``reattach`` also finds turns running on other workers."""

    def __init__(
        self,
        db: Database,
        redis_url: str | None,
        *,
        max_events: int = 10_000,
        linger_s: float = 60.0,
        ttl_s: float = 3600.0,
    ) -> None:
        super().__init__(max_events=max_events, linger_s=linger_s)
        self.db = db
        self._redis: Any = None
        self._writer: _Writer | None = None
        if redis_url:
            from redis import asyncio as aioredis

            self._redis = aioredis.from_url(redis_url, socket_connect_timeout=2)
            self._writer = _Writer(self._redis, max_events, ttl_s, linger_s)

    @property
    def redis_healthy(self) -> bool:
        """Redis took the last write (always True without Redis)."""
        return self._writer is None or self._writer.healthy

    def open(
        self,
        message_id: str,
        conversation_id: str,
        snapshot: Snapshot | None = None,
        *,
        user_id: str = "",
    ) -> TurnLog:
        if self._writer is None:
            return super().open(message_id, conversation_id, snapshot, user_id=user_id)
        log_ = _MirroredLog(
            self._writer, message_id, conversation_id, self.max_events, snapshot, user_id
        )
        self._logs[message_id] = log_
        self._writer.opened(log_)
        return log_

    def close(self, message_id: str) -> None:
        log_ = self._logs.get(message_id)
        if log_ is not None and self._writer is not None and not log_.closed:
            self._writer.end(log_)
        super().close(message_id)

    async def reattach(self, message_id: str, after: int = 0) -> Subscription | None:
        """The turn's items after ``after`` wherever it runs: this worker's log, the
        Redis stream, or the stored answer followed while it streams (None when it
        is not streaming any more: the stored message is the answer)."""
        local = self.subscribe(message_id, after)
        if local is not None:
            return local
        if self._redis is not None:
            try:
                meta = await self._redis.hgetall(_meta_key(message_id))
            except Exception as exc:
                log.info("turn streams: Redis unreachable, following the stored answer (%s)", exc)
                meta = None
            if meta:
                user_id = meta.get(b"user_id", b"").decode()
                conversation_id = meta.get(b"conversation_id", b"").decode()
                items = self._from_redis(message_id, after, user_id)
                return Subscription(conversation_id, items, user_id)
        async with self.db.session() as session:
            row = await session.get(MessageRow, message_id)
            if row is None or row.status != "streaming":
                return None
            conversation_id, user_id = row.conversation_id, row.user_id
        return Subscription(
            conversation_id, self._from_database(message_id, after, user_id), user_id
        )

    async def _from_redis(
        self, message_id: str, after: int, user_id: str
    ) -> AsyncIterator[tuple[int, Any]]:
        cursor = after
        last_id = f"0-{after}"
        key = _key(message_id)
        while True:
            try:
                answer = await self._redis.xread({key: last_id}, count=1000, block=BLOCK_MS)
            except Exception as exc:
                log.info("turn streams: Redis read failed, following the stored answer (%s)", exc)
                break
            if not answer:
                if await self._finished(message_id, user_id):
                    return
                continue
            for entry_id, fields in answer[0][1]:
                ms, seq = _seq(entry_id)
                if ms >= 1:
                    return  # the end marker
                data = json.loads(fields[b"d"])
                if seq > cursor + 1 and data.get("t") != "resync":
                    # What the reader missed was trimmed (a long answer) or lost: the
                    # stored answer, when its last flush reaches the entries Redis
                    # still has, then on from there; else follow the stored answer.
                    log.info("turn streams: %s has a gap after %d", message_id, cursor)
                    stored = await self._stored_resync(message_id, user_id)
                    if stored is None or not (cursor < stored[0] and seq - 1 <= stored[0]):
                        async for pair in self._from_database(message_id, cursor, user_id):
                            yield pair
                        return
                    cursor = stored[0]
                    last_id = f"0-{cursor}"
                    yield stored
                    break  # read again after it
                item = from_wire(data)
                if isinstance(item, dict):  # final: the stored row
                    item = await self._final(message_id, user_id, item)
                    if item is None:
                        return
                cursor = seq
                last_id = f"0-{seq}"
                yield seq, item
        async for pair in self._from_database(message_id, cursor, user_id):
            yield pair

    async def _final(self, message_id: str, user_id: str, data: dict[str, Any]) -> Final | None:
        async with self.db.session() as session:
            store = ConversationStore(session, user_id)
            row = await store.get_message(message_id)
            if row is None:
                return None
            siblings = (await store.siblings_map([row])).get(row.id)
        return Final(row, data["finish_reason"], Usage(**data["usage"]), data["title"], siblings)

    async def _finished(self, message_id: str, user_id: str) -> bool:
        """The stored answer is done (or gone, or silent for ``STALE_S``: its worker
        died), so a reader waiting for more stops."""
        try:
            async with self.db.session() as session:
                row = await ConversationStore(session, user_id).get_message(message_id)
        except Exception:
            return False
        if row is not None and row.status == "streaming" and _stale(row):
            await self._give_up(message_id)
        return row is None or row.status != "streaming" or _stale(row)

    async def _give_up(self, message_id: str) -> None:
        """Mark an answer whose worker died as failed (interrupted), keeping its text,
        so the reader's final ``done`` says so (not a ``streaming`` left forever)."""
        try:
            async with self.db.session() as session:
                await fail_stale_streaming(
                    session, older_than=timedelta(seconds=STALE_S), message_id=message_id
                )
                await session.commit()
        except Exception as exc:
            log.warning("turn streams: could not mark a dead turn failed (%s)", exc)

    async def _stored_resync(self, message_id: str, user_id: str) -> tuple[int, Relayed] | None:
        """The stored answer as a ``resync`` with the id its text reaches, while it
        streams (None once it does not, or when it cannot be read)."""
        try:
            async with self.db.session() as session:
                row = await ConversationStore(session, user_id).get_message(message_id)
        except Exception as exc:
            log.warning("turn streams: could not read the answer (%s)", exc)
            return None
        if row is None or row.status != "streaming" or _stale(row):
            return None
        state = {
            "content": row.content,
            "reasoning": row.reasoning,
            "steps": row.steps,
            "sources": row.sources,
        }
        return row.stream_seq or 0, Relayed("resync", state)

    async def _from_database(
        self, message_id: str, after: int, user_id: str
    ) -> AsyncIterator[tuple[int, Any]]:
        """Follow the stored answer: a ``resync`` each time its flushed content moved
        past what the reader has; ends when it stops streaming (the caller then sends
        ``done`` from the stored message)."""
        cursor = after
        failures = 0
        while True:
            try:
                async with self.db.session() as session:
                    row = await ConversationStore(session, user_id).get_message(message_id)
            except Exception as exc:
                failures += 1
                log.warning("turn streams: could not read the answer (%s)", exc)
                if failures * POLL_S > STALE_S:
                    return
                await asyncio.sleep(POLL_S)
                continue
            failures = 0
            if row is not None and row.status == "streaming" and _stale(row):
                await self._give_up(message_id)
                return
            if row is None or row.status != "streaming":
                return
            seq = row.stream_seq or 0
            if seq > cursor:
                cursor = seq
                state = {
                    "content": row.content,
                    "reasoning": row.reasoning,
                    "steps": row.steps,
                    "sources": row.sources,
                }
                yield seq, Relayed("resync", state)
            await asyncio.sleep(POLL_S)

    async def ping(self) -> bool:
        """Redis answers (True without Redis: nothing to ask)."""
        if self._redis is None:
            return True
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), 2))
        except Exception:
            return False

    async def aclose(self) -> None:
        if self._writer is not None:
            await self._writer.aclose()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()


def _stale(row: MessageRow) -> bool:
    updated = row.updated_at
    return updated is not None and utcnow() - updated > timedelta(seconds=STALE_S)
