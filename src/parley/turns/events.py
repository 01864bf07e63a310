"""A running turn's events, kept so a client can reattach: replay, then the live tail.

Every item a turn produces (``TurnItem``: the engine's events, the ``Final``
record, the ``TitleMade`` and the after-turn hooks' events after it: the log
stays open for them, ``LogHold``) is *published* once, by the turn's background
task, into the turn's log under its assistant message id, and gets a sequence
number (1, 2, 3...: the SSE ``id:`` of the frame it becomes). Every reader, the
request that started the turn included, is a *subscriber* from a sequence number:
``subscribe(message_id, after=n)`` yields ``(seq, item)`` for every item after
``n`` still kept, then the live items as they come, and ends when the turn ends.
So a page that reloads, a second tab, or a reader whose network dropped gets the
events it missed (``Last-Event-ID``) and then the tail, exactly once each.

Bounds: a log keeps its newest ``max_events`` items; a subscriber asking for
items already dropped first gets a ``Resync`` (the answer so far, from the
turn's own state, as of the newest kept item) and then the items after it. A
finished turn's log stays ``linger_s`` seconds, then goes; after that (or on
another worker) ``subscribe`` answers None and the caller falls back to the
stored message. Per published item the cost is one list append and, only when
subscribers are waiting, waking them (no copy of what was kept); the list is
trimmed by halves, so an append stays O(1) amortized and a read by sequence
number is one index.

``TurnEvents`` is the protocol; ``MemoryTurnEvents`` keeps the logs in this
process (one worker); ``LiveTurnEvents`` keeps nothing (``stream_replay_events =
0``: the turn's own request reads it, nobody can reattach).
``SharedTurnEvents`` (``turns/streams.py``) mirrors the logs to Redis streams and
reattaches readers to turns running on other workers (``reattach``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from parley.messages import Source, ToolStep

__all__ = [
    "LiveTurnEvents",
    "LogHold",
    "MemoryTurnEvents",
    "Resync",
    "Subscription",
    "TitleMade",
    "TurnEvents",
    "TurnLog",
    "make_turn_events",
]


@dataclass(slots=True)
class TitleMade:
    """The conversation got an automatic title (published after ``Final``)."""

    conversation_id: str
    title: str


@dataclass(slots=True)
class Resync:
    """The answer so far, for a subscriber whose missed items were dropped: replace
    what it shows with this, then the items after ``seq`` follow."""

    seq: int
    content: str
    reasoning: str
    steps: list[ToolStep] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)


class Subscription(NamedTuple):
    """A reader's place in a turn: ``items`` yields ``(seq, item)`` until the turn ends."""

    conversation_id: str
    items: AsyncIterator[tuple[int, Any]]
    user_id: str = ""  # whose turn (a reader of another user gets nothing)


Snapshot = Callable[[int], Resync]
"""The turn's state as of sequence number ``seq`` (its recorder's text, steps...)."""


class TurnLog:
    """One turn's items: ``items[i]`` has sequence number ``first + i``."""

    __slots__ = (
        "_handle",
        "_limit",
        "_waiters",
        "closed",
        "conversation_id",
        "first",
        "items",
        "max_events",
        "message_id",
        "snapshot",
        "user_id",
    )

    def __init__(
        self,
        message_id: str,
        conversation_id: str,
        max_events: int,
        snapshot: Snapshot | None,
        user_id: str = "",
    ) -> None:
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.user_id = user_id
        self.max_events = max(1, max_events)
        self._limit = 2 * self.max_events  # trimmed back to ``max_events`` when reached
        self.snapshot = snapshot
        self.items: list[Any] = []
        self.first = 1  # sequence number of items[0]
        self.closed = False
        self._waiters: list[asyncio.Future[None]] = []
        self._handle: asyncio.TimerHandle | None = None

    @property
    def last(self) -> int:
        """Sequence number of the newest item (0 before the first)."""
        return self.first + len(self.items) - 1

    def publish(self, item: Any) -> int:
        items = self.items
        items.append(item)
        n = len(items)
        if n >= self._limit:  # trim by halves: O(1) amortized
            drop = n - self.max_events
            del items[:drop]
            self.first += drop
            n -= drop
        if self._waiters:
            self._wake()
        return self.first + n - 1

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def oldest_kept(self) -> int:
        """The oldest sequence number a subscriber is promised (``max_events`` newest)."""
        return max(self.first, self.last - self.max_events + 1)

    async def follow(self, after: int) -> AsyncIterator[tuple[int, Any]]:
        """``(seq, item)`` after ``after``, then the live ones until the turn ends.

        A reader behind the kept items (it asked for dropped ones, or read so slowly
        that they were dropped meanwhile) gets a ``Resync`` as of the newest item and
        goes on after it; once the turn has ended (no snapshot any more) it gets what
        is kept, which ends with ``Final``: the whole stored answer."""
        cursor = after + 1
        items = self.items  # the same list for the log's life (trimmed in place)
        while True:
            index = cursor - self.first  # ``first`` moves when the list is trimmed
            if index < 0 or (cursor < self.oldest_kept() and index < len(items)):
                if self.snapshot is not None:
                    head = self.last
                    yield head, self.snapshot(head)
                    cursor = head + 1
                else:
                    cursor = self.oldest_kept()
                index = cursor - self.first
            while 0 <= index < len(items):
                yield cursor, items[index]
                cursor += 1
                index = cursor - self.first
            if index < 0:
                continue  # dropped while this reader was away
            if self.closed:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class LogHold:
    """Keeps a finished turn's log open for work that may still publish on it (the
    model-made title, the after-turn hooks' late events): ``close`` runs once every
    holder has released it, or after ``max_s`` whatever still runs (never forever)."""

    __slots__ = ("_close", "_left", "_timer", "ended")

    def __init__(self, close: Callable[[], None], holders: int, max_s: float) -> None:
        self._close = close
        self._left = holders
        self.ended = False
        self._timer: asyncio.TimerHandle | None = None
        if holders <= 0:
            self._end()
        else:
            self._timer = asyncio.get_running_loop().call_later(max_s, self._end)

    def release(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._end()

    def releaser(self) -> Callable[[], None]:
        """``release`` for one holder, counted once however often it is called (a
        task's own ``finally`` and its done-callback, for one cancelled unstarted)."""
        done = False

        def release_once() -> None:
            nonlocal done
            if not done:
                done = True
                self.release()

        return release_once

    def _end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.ended:
            self.ended = True
            self._close()


class TurnEvents(Protocol):
    """Where a turn's items are kept while it runs and a little after it ends."""

    def open(
        self,
        message_id: str,
        conversation_id: str,
        snapshot: Snapshot | None = None,
        *,
        user_id: str = "",
    ) -> TurnLog:
        """Start the log of the turn answering ``message_id`` (its assistant message)."""
        ...

    def close(self, message_id: str) -> None:
        """The turn ended (its last item was published); the log lingers, then goes."""
        ...

    def subscribe(self, message_id: str, after: int = 0) -> Subscription | None:
        """The items after ``after``, then the live tail (with the turn's conversation
        and user, for the caller to check), or None when no log of that turn is kept
        here (finished long ago, or another worker's)."""
        ...

    async def reattach(self, message_id: str, after: int = 0) -> Subscription | None:
        """``subscribe``, and where the events are shared, also a turn running on
        another worker."""
        ...

    def clear(self) -> None:
        """Shutting down: end every log (their readers finish) and forget them."""
        ...


class MemoryTurnEvents:
    """The logs of this process's turns, in memory (one worker)."""

    def __init__(self, *, max_events: int = 10_000, linger_s: float = 60.0) -> None:
        self.max_events = max_events
        self.linger_s = linger_s
        self._logs: dict[str, TurnLog] = {}

    def __len__(self) -> int:
        return len(self._logs)

    def open(
        self,
        message_id: str,
        conversation_id: str,
        snapshot: Snapshot | None = None,
        *,
        user_id: str = "",
    ) -> TurnLog:
        log = TurnLog(message_id, conversation_id, self.max_events, snapshot, user_id)
        self._logs[message_id] = log
        return log

    def close(self, message_id: str) -> None:
        log = self._logs.get(message_id)
        if log is None:
            return
        log.close()
        log.snapshot = None  # the turn's recorder is not kept alive by the log
        if self.linger_s <= 0:
            self._drop(message_id, log)
        else:
            log._handle = asyncio.get_running_loop().call_later(
                self.linger_s, self._drop, message_id, log
            )

    def _drop(self, message_id: str, log: TurnLog) -> None:
        if self._logs.get(message_id) is log:
            del self._logs[message_id]

    def get(self, message_id: str) -> TurnLog | None:
        return self._logs.get(message_id)

    def subscribe(self, message_id: str, after: int = 0) -> Subscription | None:
        log = self._logs.get(message_id)
        if log is None:
            return None
        return Subscription(log.conversation_id, log.follow(after), log.user_id)

    async def reattach(self, message_id: str, after: int = 0) -> Subscription | None:
        return self.subscribe(message_id, after)

    def clear(self) -> None:
        for log in self._logs.values():
            if log._handle is not None:
                log._handle.cancel()
            log.close()
        self._logs.clear()


class _LiveLog(TurnLog):
    """A turn's items for its one live reader, each dropped once read."""

    __slots__ = ("_next", "_queue")

    def __init__(self, message_id: str, conversation_id: str, user_id: str) -> None:
        super().__init__(message_id, conversation_id, 1, None, user_id)
        self._queue: deque[Any] = deque()
        self._next = 1

    def publish(self, item: Any) -> int:
        self._queue.append(item)
        seq = self._next
        self._next = seq + 1
        if self._waiters:
            self._wake()
        return seq

    async def follow(self, after: int) -> AsyncIterator[tuple[int, Any]]:
        queue = self._queue
        cursor = after
        while True:
            while queue:
                cursor += 1
                yield cursor, queue.popleft()
            if self.closed:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class LiveTurnEvents:
    """Keeps nothing (``stream_replay_events = 0``): the request that started a turn
    reads it live; a reader that comes back gets the stored message (``subscribe``
    answers None). The cost of the relay without the buffer, for comparison."""

    def __init__(self) -> None:
        self._logs: dict[str, _LiveLog] = {}
        self._unread: set[str] = set()  # logs whose one reader has not come yet

    def open(
        self,
        message_id: str,
        conversation_id: str,
        snapshot: Snapshot | None = None,
        *,
        user_id: str = "",
    ) -> TurnLog:
        log = self._logs[message_id] = _LiveLog(message_id, conversation_id, user_id)
        self._unread.add(message_id)
        return log

    def close(self, message_id: str) -> None:
        log = self._logs.pop(message_id, None)
        self._unread.discard(message_id)
        if log is not None:
            log.close()

    def subscribe(self, message_id: str, after: int = 0) -> Subscription | None:
        log = self._logs.get(message_id)
        if log is None or message_id not in self._unread:  # its one reader has it
            return None
        self._unread.discard(message_id)
        return Subscription(log.conversation_id, log.follow(after), log.user_id)

    async def reattach(self, message_id: str, after: int = 0) -> Subscription | None:
        return self.subscribe(message_id, after)

    def clear(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        self._unread.clear()


def make_turn_events(max_events: int, linger_s: float) -> TurnEvents:
    """The turn events of this worker: in memory, or live only when ``max_events`` is 0."""
    if max_events <= 0:
        return LiveTurnEvents()
    return MemoryTurnEvents(max_events=max_events, linger_s=linger_s)
