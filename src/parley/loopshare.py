"""Time slices of the event loop for work that would otherwise hog it.

An asyncio (or uvloop) iteration runs every callback that was ready when it
began before it looks at timers or sockets again. When 500 streams each have a
network read waiting, one iteration is all 500 relay steps back to back (about
100 ms here), and every other request, timer and stop signal in the process
waits that long: throughput is fine, latency is not.

Heavy steps (a network read of a relayed stream, admitting a request, sending
one upstream) first call ``await share.take_slice()``. While the loop's current
slice has time left this costs one clock read and no suspension. Once the slice is
used up, the step queues; a tick at the start of each loop iteration starts a
new slice and lets through as many queued steps as fit in it (new work first,
then the oldest waiting), learning how many fit from how long the last batch
took. The work done is the same; it is only cut
into short iterations, so the loop's lag stays near one slice however many
streams there are, and a step waits for a slice instead of piling onto the next
iteration. While steps are queued their sockets are not read, so TCP flow
control slows the senders.

State is per event loop and per process (it describes this loop's time, not
anything shared between workers); ``share()`` finds the running loop's.

"Slice" is this module's word on purpose: a chat turn is ``parley.turns``, the
model<->tool loop is ``parley.engine.loop``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from time import perf_counter

SLICE_S = 0.004
QUANTUM_S = 0.001
MIN_GRANT = 1
MAX_GRANT = 4096


class LoopShare:
    """Time slices of one event loop; see the module docstring.

    Two queues: steps that start something (admitting a request, a stream's
    first read) and steps that continue it. A tick serves starts first, with at
    most half its grant while continuing steps wait, so a burst of new requests
    gets its first tokens early without starving the streams already running.
    """

    __slots__ = (
        "__weakref__",
        "_grant",
        "_loop",
        "_mark",
        "_more",
        "_new",
        "_slice",
        "_tick_armed",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, slice_s: float = SLICE_S) -> None:
        self._loop = loop
        self._slice = slice_s
        self._new: deque[asyncio.Future[None]] = deque()
        self._more: deque[asyncio.Future[None]] = deque()
        self._mark = perf_counter()  # start of the current slice
        self._grant = 16.0  # queued steps let through per tick (adapted)
        self._tick_armed = False

    @property
    def waiting(self) -> int:
        return len(self._new) + len(self._more)

    async def take_slice(self, *, start: bool = False) -> None:
        """Return at once while the slice lasts; otherwise wait for a later one.

        ``start``: this step begins new work (see the class docstring).
        """
        if not (self._new or self._more):
            now = perf_counter()
            if now - self._mark < self._slice:
                return
            if not self._tick_armed:
                # No tick since the slice ran out: the loop has been quiet, so this
                # step opens a new slice, and the tick closes it at the next iteration.
                self._mark = now
                self._arm()
                return
        waiter = self._loop.create_future()
        (self._new if start else self._more).append(waiter)
        if not self._tick_armed:
            self._arm()
        await waiter  # a cancelled waiter is skipped by the tick

    def _arm(self) -> None:
        self._tick_armed = True
        # A zero delay still goes through the timer phase: the next iteration's start.
        self._loop.call_later(0, self._tick)

    def _tick(self) -> None:
        self._tick_armed = False
        now = self._mark = perf_counter()
        grant = int(self._grant)
        released = _release(self._new, max(1, grant // 2) if self._more else grant)
        released += _release(self._more, grant - released)
        released += _release(self._new, grant - released)
        if released:
            # Runs after the steps just released (and whatever was ready before them).
            self._loop.call_soon(self._measure, now, released)
        if released or self._new or self._more:
            self._arm()  # the chain of ticks ends at the first one with nothing to do

    def _measure(self, start: float, released: int) -> None:
        spent = perf_counter() - start
        fit = released * self._slice / spent if spent > 0 else MAX_GRANT
        # Move halfway toward what would have fit, so one odd iteration cannot swing it.
        self._grant = min(MAX_GRANT, max(MIN_GRANT, (self._grant + fit) / 2))


def _release(queue: deque[asyncio.Future[None]], count: int) -> int:
    """Wake up to ``count`` live waiters from the front of ``queue``."""
    released = 0
    while queue and released < count:
        waiter = queue.popleft()
        if not waiter.done():
            waiter.set_result(None)
            released += 1
    return released


class Stream:
    """One stream's share: it asks for a slice only after ``QUANTUM_S`` of its own
    (a relay step then handles everything it already read, up to a quantum,
    instead of queueing again for each HTTP chunk of one network read)."""

    __slots__ = ("_share", "_started", "_until")

    def __init__(self, share: LoopShare) -> None:
        self._share = share
        self._started = False
        self._until = 0.0

    def due(self) -> bool:
        return perf_counter() >= self._until

    async def take_slice(self) -> None:
        await self._share.take_slice(start=not self._started)
        self._started = True
        self._until = perf_counter() + QUANTUM_S


_shares: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopShare] = (
    weakref.WeakKeyDictionary()
)


def share() -> LoopShare:
    """The running loop's ``LoopShare`` (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _shares.get(loop)
    if found is None:
        found = _shares[loop] = LoopShare(loop)
    return found


async def take_slice(*, start: bool = False) -> None:
    """``share().take_slice()`` for the running loop."""
    await share().take_slice(start=start)


def stream() -> Stream:
    """Slice-taking for one stream on the running loop."""
    return Stream(share())
