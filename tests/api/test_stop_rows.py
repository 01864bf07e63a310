"""Stops between workers through the database (``stop_requests``, polled), alone
and beside Redis: a stop reaches the other worker, once."""

from __future__ import annotations

import asyncio
import os

from parley.storage.db import Database
from parley.turns.control import LocalControl, RedisControl

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE = "redis://127.0.0.1:1/0"


async def _until(condition: object, what: str) -> None:
    for _ in range(1000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting: {what}")


async def test_a_stop_row_reaches_another_worker_without_redis(db: Database) -> None:
    streaming, asked = LocalControl(db), LocalControl(db)
    await streaming.start()
    await asked.start()
    heard: list[str] = []
    streaming.add_listener(heard.append)
    try:
        with streaming.track("conv-a", "owner:user:u1") as stopped, streaming.track("b") as other:
            await asked.stop("conv-a")
            await asyncio.wait_for(stopped.wait(), 30)
            assert not other.is_set() and not stopped.revoked
            await asked.stop("owner:user:u1")  # a revocation travels the same way
            await _until(lambda: "owner:user:u1" in heard, "the revocation polled")
            assert stopped.revoked
        assert heard == ["conv-a", "owner:user:u1"]  # each once
    finally:
        await streaming.aclose()
        await asked.aclose()


async def test_a_stop_heard_over_redis_and_polled_acts_once(db: Database) -> None:
    streaming, asked = RedisControl(REDIS_URL, db), RedisControl(REDIS_URL, db)
    await streaming.start()
    await asked.start()
    heard: list[str] = []
    streaming.add_listener(heard.append)
    try:
        await _until(lambda: streaming.listening and asked.listening, "both subscribed")
        with streaming.track("conv-once") as stopped:
            await asked.stop("conv-once")
            await asyncio.wait_for(stopped.wait(), 30)
        # the row is read too at the next poll; it was heard already
        await _until(lambda: streaming._last_row >= max(asked._seen), "the row polled")
        assert heard == ["conv-once"]
    finally:
        await streaming.aclose()
        await asked.aclose()


async def test_with_redis_away_the_row_still_stops(db: Database) -> None:
    streaming, asked = RedisControl(UNREACHABLE, db), RedisControl(UNREACHABLE, db)
    await streaming.start()
    await asked.start()
    try:
        with streaming.track("conv-r") as stopped:
            await asked.stop("conv-r")
            await asyncio.wait_for(stopped.wait(), 30)
    finally:
        await streaming.aclose()
        await asked.aclose()


async def test_parley_users_disable_reaches_running_servers_through_the_database(
    db: Database, database_url: str
) -> None:
    """``parley users disable`` (the CLI's revocation) writes the row with its change;
    a server polling the shared database stops the user's answers (PostgreSQL; on
    SQLite, one process, nothing is written)."""
    from parley.cli import _revoke_on_servers
    from parley.config import load_settings
    from parley.storage.signals import newest_stop

    server = LocalControl(db)
    await server.start()
    settings = load_settings(database_url=database_url, redis_url=None)
    try:
        with server.track("conv-x", "owner:user:u9") as stopped:
            async with db.session() as session:
                await _revoke_on_servers(settings, "u9", session)
                await session.commit()
            if settings.is_sqlite:
                async with db.session() as session:
                    assert await newest_stop(session) == 0
                return
            await asyncio.wait_for(stopped.wait(), 30)
            assert stopped.revoked
    finally:
        await server.aclose()
