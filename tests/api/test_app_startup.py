"""What a server process does once at start."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from sqlalchemy.pool import QueuePool

from apihelpers import MakeApp, make_client, signup
from parley.gc_policy import NO_AUTOMATIC_FULL, ServerGC
from parley.net.safe_fetch import GuardedTransport
from parley.net.urls import AddressPolicy
from parley.storage.db import SQLITE_POOL_SIZE, Database


async def test_a_server_process_freezes_its_start_up_objects(make_app: MakeApp) -> None:
    """Full collections then skip modules, routes and models (no ~100 ms pauses)."""
    gc.unfreeze()
    try:
        async with make_app(server_process=True):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # tests build many apps: let this one be collected
    async with make_app():
        assert gc.get_freeze_count() == 0


def test_guarded_transports_share_one_tls_context() -> None:
    first, second = GuardedTransport(AddressPolicy()), GuardedTransport(AddressPolicy())
    assert first._pool._ssl_context is second._pool._ssl_context


async def test_a_server_process_runs_full_collections_on_its_own_clock(make_app: MakeApp) -> None:
    """Automatic full collections are off while serving (they paused every stream for
    50-150 ms under load); the policy's task runs them instead; defaults come back."""
    before = gc.get_threshold()
    try:
        async with make_app(server_process=True):
            assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL
            assert gc.get_threshold()[:2] == before[:2]  # young collections unchanged
    finally:
        gc.unfreeze()
    assert gc.get_threshold() == before

    collector = ServerGC(full_every_s=0.01, check_every_s=0.01)
    collector.start()
    try:
        for _ in range(200):
            if collector.full_collections >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await collector.stop()
        gc.unfreeze()
    assert collector.full_collections >= 2
    assert gc.get_threshold() == before


async def test_the_sqlite_pool_opens_its_connections_ahead_of_a_burst(settings: Any) -> None:
    """Each aiosqlite connection is a thread whose start blocks the loop: a server
    opens them while idle and keeps every one (no overflow to close and reopen)."""
    db = Database(settings.resolved_database_url)
    try:
        pool = db.engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        if not settings.is_sqlite:  # asyncpg connections are no threads: nothing to warm
            await db.warm(5)
            assert pool.checkedin() == 0
            return
        assert pool.size() == SQLITE_POOL_SIZE and pool._max_overflow == 0
        await db.warm(5)
        assert pool.checkedin() == 5
        connections = [await db.engine.connect() for _ in range(5)]
        assert pool.checkedin() == 0 and pool.checkedout() == 5  # the warm ones reused
        for conn in connections:
            await conn.close()
        assert pool.checkedin() == 5
    finally:
        await db.dispose()


async def test_memory_growth_brings_the_next_full_collection_forward() -> None:
    readings = iter([100 << 20, 110 << 20, 400 << 20] + [400 << 20] * 1000)
    collector = ServerGC(full_every_s=3600, check_every_s=0.01, rss=lambda: next(readings))
    collector.start()
    try:
        for _ in range(200):
            if collector.full_collections:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # no further growth: no further collection
    finally:
        await collector.stop()
        gc.unfreeze()
    assert collector.full_collections == 1  # 110 MB: not enough; 400 MB: collect once


async def test_a_new_server_says_where_to_go_until_someone_signs_up(
    make_app: MakeApp, make_settings: Any, capsys: Any
) -> None:
    """``make run`` ends with this line: the address and what the first account is."""
    settings = make_settings(host="0.0.0.0", port=8099)  # listening on every interface
    line = (
        "Parley is running: open http://127.0.0.1:8099 and create the first account "
        "(it becomes the administrator)"
    )
    async with make_app(settings, server_process=True) as app:
        assert line in capsys.readouterr().out
        async with make_client(app) as client:
            await signup(client)
    async with make_app(settings, server_process=True):
        assert "Parley is running" not in capsys.readouterr().out
