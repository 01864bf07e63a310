"""Requests take a time slice of the event loop before any work is done for them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apihelpers import Client
from parley import loopshare
from parley.loopshare import LoopShare


class CountingShare(LoopShare):
    """A share whose slice is always used up: every request queues behind the tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, slice_s=0)
        self.starts: list[bool] = []

    async def take_slice(self, *, start: bool = False) -> None:
        self.starts.append(start)
        await super().take_slice(start=start)


async def test_every_request_waits_for_a_slice_and_still_completes(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = CountingShare(asyncio.get_running_loop())
    share._arm()  # a tick is due, so the first request cannot open a slice either
    monkeypatch.setattr(loopshare, "share", lambda: share)
    responses = await asyncio.gather(*(client.get("/api/health") for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert share.starts.count(True) >= 5  # one admission slice per request, as new work
    assert share.waiting == 0


async def test_the_slice_comes_before_the_other_middleware(app: Any) -> None:
    outermost = app.user_middleware[0]
    assert outermost.cls.__name__ == "ShareLoop"
