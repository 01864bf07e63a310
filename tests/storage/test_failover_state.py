"""The breaker and fallback lists in the database, as two workers share them:
concurrent failures all count, one caller gets a half-open circuit's probe, a
success closes it, and an admin's list round-trips."""

from __future__ import annotations

import asyncio

from parley.storage.db import Database
from parley.storage.failover import (
    DatabaseBreaker,
    clear_fallbacks,
    set_fallbacks,
    stored_fallbacks,
)


async def test_two_workers_share_one_circuit(db: Database, database_url: str) -> None:
    other_db = Database(database_url)  # a second worker: its own engine and pool
    try:
        one = DatabaseBreaker(db, threshold=4, cooldown_s=1.0)
        two = DatabaseBreaker(other_db, threshold=4, cooldown_s=1.0)
        assert await one.allow("p") and await two.allow("p")
        # failures reported at once from both workers all count (no lost update)
        await asyncio.gather(one.failed("p"), two.failed("p"), one.failed("p"))
        [state] = await one.states()
        assert (state.state, state.failures) == ("closed", 3)
        await two.failed("p")
        [state] = await two.states()
        assert (state.state, state.failures) == ("open", 4) and state.retry_at is not None
        assert not await one.allow("p") and not await two.allow("p")

        await asyncio.sleep(1.05)
        granted = await asyncio.gather(*(b.allow("p") for b in (one, two, one, two)))
        assert sorted(granted) == [False, False, False, True]  # one probe, on either worker
        assert (await one.states())[0].state == "half_open"

        await one.failed("p")  # the probe failed: open for another cooldown
        assert (await two.states())[0].state == "open" and not await two.allow("p")
        await asyncio.sleep(1.05)
        assert await two.allow("p")
        await two.succeeded("p")
        assert await one.states() == []  # closed and clean: nothing to show
        assert await one.allow("p")

        await one.failed("q")
        assert [s.provider for s in await two.states()] == ["q"]
        await one.reset("q")
        assert await two.states() == []
    finally:
        await other_db.dispose()


async def test_fallback_lists_round_trip(db: Database) -> None:
    async with db.session() as session:
        await set_fallbacks(session, "a/m", ["b/m", "c/m"])
        await set_fallbacks(session, "b/m", [])
        await session.commit()
    async with db.session() as session:
        assert await stored_fallbacks(session) == {"a/m": ["b/m", "c/m"], "b/m": []}
        await set_fallbacks(session, "a/m", ["c/m"])
        await clear_fallbacks(session, "b/m")
        await session.commit()
    async with db.session() as session:
        assert await stored_fallbacks(session) == {"a/m": ["c/m"]}
