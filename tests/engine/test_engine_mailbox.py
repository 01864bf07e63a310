"""The per-token hand-off queue between tasks."""

from __future__ import annotations

import asyncio
import contextlib

from parley.engine.mailbox import Mailbox


async def test_items_arrive_in_order_and_get_waits_for_a_put() -> None:
    box: Mailbox[int] = Mailbox()
    box.put_nowait(1)
    box.put_nowait(2)
    assert [await box.get(), await box.get()] == [1, 2]
    assert box.empty()
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    box.put_nowait(3)
    assert await waiting == 3


async def test_a_cancelled_get_loses_nothing() -> None:
    box: Mailbox[str] = Mailbox()
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    box.put_nowait("kept")  # no stale waiter to wake
    assert await box.get() == "kept"


async def test_a_consumer_drains_a_burst_without_sleeping() -> None:
    box: Mailbox[int] = Mailbox()
    for i in range(100):
        box.put_nowait(i)
    assert [await box.get() for _ in range(100)] == list(range(100))
