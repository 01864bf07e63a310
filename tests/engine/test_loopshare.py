"""Time slices of the event loop (``parley.loopshare``).

The property that matters is structural: how many heavy steps run between two
wake-ups of an unrelated timer (the lag every other request would see). Steps
here busy-wait a fixed wall-clock time, so the counts do not depend on how fast
the machine is; a slower or busier machine (preempted mid-step) only makes fewer
steps fit in a slice. So the bounds are upper bounds, stated against the same
probe run without slices; the one check on a sub-millisecond deadline (a
stream's quantum) runs on a clock the test moves itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import uvloop

from parley import loopshare
from parley.loopshare import LoopShare

STEP_S = 0.001
STREAMS, ROUNDS = 40, 8


def busy(seconds: float = STEP_S) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def steps_between_ticks(
    use_share: bool, streams: int = STREAMS, rounds: int = ROUNDS
) -> list[int]:
    """Run ``streams`` tasks of ``rounds`` heavy steps each; return how many steps
    ran between consecutive wake-ups of a 0-delay timer chain (the lag probe)."""
    share = LoopShare(asyncio.get_running_loop())
    counts = [0]
    done = asyncio.Event()

    def tick() -> None:
        counts.append(0)
        if not done.is_set():
            asyncio.get_running_loop().call_later(0, tick)

    async def stream() -> None:
        for _ in range(rounds):
            if use_share:
                await share.take_slice()
            else:
                await asyncio.sleep(0)
            busy()
            counts[-1] += 1

    asyncio.get_running_loop().call_later(0, tick)
    await asyncio.gather(*(stream() for _ in range(streams)))
    done.set()
    return counts


async def test_without_slices_every_ready_stream_runs_in_one_iteration() -> None:
    counts = await steps_between_ticks(use_share=False)
    assert max(counts) >= STREAMS  # all streams between two timer wake-ups


def check_bounded(sliced: list[int], unsliced: list[int]) -> None:
    assert sum(sliced) == sum(unsliced) == STREAMS * ROUNDS  # nothing lost
    # Without slices the probe waits for every ready stream (40 steps); with them
    # for at most the first tick's grant (16) and the steps of the first slices.
    assert max(sliced) <= max(unsliced) // 2


async def test_slices_bound_the_steps_between_timer_wake_ups() -> None:
    unsliced = await steps_between_ticks(use_share=False)
    sliced = await steps_between_ticks(use_share=True)
    check_bounded(sliced, unsliced)
    # Once the grant has adapted to the slice, a typical wait is about one slice of
    # steps (SLICE_S / STEP_S = 4; fewer on a busy machine), a fifth of the unsliced one.
    settled = sorted(sliced[len(sliced) // 2 :])
    assert settled[len(settled) // 2] <= max(unsliced) // 5


def test_the_bound_holds_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        unsliced = runner.run(steps_between_ticks(use_share=False))
        sliced = runner.run(steps_between_ticks(use_share=True))
    check_bounded(sliced, unsliced)


async def test_a_slice_costs_no_suspension_while_the_slice_lasts() -> None:
    share = LoopShare(asyncio.get_running_loop(), slice_s=60)
    other_ran = False

    async def other() -> None:
        nonlocal other_ran
        other_ran = True

    task = asyncio.create_task(other())
    for _ in range(100):
        await share.take_slice()
    assert not other_ran  # never yielded to the loop
    await task


def hog(share: LoopShare) -> asyncio.Task[None]:
    """A task that opens a slice and uses it up: steps after it in the same loop
    iteration have to queue."""

    async def run() -> None:
        busy(0.02)  # whatever slice the share had is over
        await share.take_slice()  # opens a new one
        busy(0.02)  # and uses it up

    return asyncio.create_task(run())


async def test_queued_steps_resume_oldest_first_and_starts_go_ahead() -> None:
    share = LoopShare(asyncio.get_running_loop(), slice_s=0.01)
    order: list[str] = []

    async def step(name: str, start: bool = False) -> None:
        await share.take_slice(start=start)
        order.append(name)

    tasks = [hog(share)]
    tasks += [asyncio.create_task(step(f"more{i}")) for i in range(3)]
    tasks.append(asyncio.create_task(step("new", start=True)))
    await asyncio.sleep(0)
    assert share.waiting == 4 and not order
    await asyncio.gather(*tasks)
    assert order == ["new", "more0", "more1", "more2"]
    assert share.waiting == 0


async def test_a_quiet_loop_costs_no_wait() -> None:
    share = LoopShare(asyncio.get_running_loop(), slice_s=0.001)
    busy(0.002)  # the slice from construction is long gone, but nothing ran meanwhile
    other = asyncio.create_task(asyncio.sleep(0))
    await share.take_slice()
    assert not other.done()  # passed without yielding
    await other


async def test_a_cancelled_waiter_is_skipped() -> None:
    share = LoopShare(asyncio.get_running_loop(), slice_s=0.01)
    blocker = hog(share)
    waiting = asyncio.create_task(share.take_slice())
    await asyncio.sleep(0)
    assert share.waiting == 1
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await blocker
    await asyncio.wait_for(share.take_slice(), 30)  # the queue still moves
    assert share.waiting == 0


class Clock:
    """``perf_counter`` for ``parley.loopshare`` that moves only when told."""

    def __init__(self) -> None:
        self.now = time.perf_counter()

    def __call__(self) -> float:
        return self.now


async def test_a_stream_asks_for_a_slice_once_per_quantum(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(loopshare, "perf_counter", clock)
    slices = loopshare.Stream(LoopShare(asyncio.get_running_loop()))
    assert slices.due()
    await slices.take_slice()
    assert not slices.due()  # handles what it already read without asking again
    clock.now += loopshare.QUANTUM_S / 2
    assert not slices.due()
    clock.now += loopshare.QUANTUM_S
    assert slices.due()


async def test_each_loop_has_its_own_share() -> None:
    mine = loopshare.share()
    assert loopshare.share() is mine

    async def other() -> LoopShare:
        return loopshare.share()

    assert await asyncio.to_thread(asyncio.run, other()) is not mine
