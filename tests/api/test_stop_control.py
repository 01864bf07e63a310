"""Stop signals between workers over Redis, and Redis being away."""

from __future__ import annotations

import asyncio
import os

from parley.turns.control import RedisControl

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE = "redis://127.0.0.1:1/0"


async def _until(condition: object, what: str) -> None:
    for _ in range(500):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting: {what}")


async def test_a_stop_on_one_worker_reaches_another() -> None:
    streaming, asked = RedisControl(REDIS_URL), RedisControl(REDIS_URL)
    await streaming.start()
    await asked.start()
    try:
        await _until(lambda: streaming.listening and asked.listening, "both subscribed")
        with streaming.track("conv-a") as stopped, streaming.track("conv-b") as other:
            await asked.stop("conv-a")
            await asyncio.wait_for(stopped.wait(), 10)
            assert not other.is_set()
    finally:
        await streaming.aclose()
        await asked.aclose()


async def test_unreachable_redis_is_not_fatal() -> None:
    """The server still starts; stops reach this worker's own generations."""
    control = RedisControl(UNREACHABLE)
    await control.start()
    try:
        assert not control.listening
        with control.track("conv") as stopped:
            await control.stop("conv")  # the publish fails quietly
            assert stopped.is_set()
    finally:
        await control.aclose()
