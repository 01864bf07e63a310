"""reconnect: a reader that reconnects to *another* worker, and how soon it has
what it missed.

Processes: the scripted upstream and two pairs of Parley workers
(``bench/_server.py``), each pair on its own fresh PostgreSQL database: one pair
with Redis (``PARLEY_REDIS_URL``: the turn's events go to a Redis stream,
``parley.turns.streams``), one without (a reader on the other worker follows the
stored answer, flushed every ``FLUSH_INTERVAL_S``).

Answers paced like a model (50 tokens/s) stream from worker A to a reader that
stays on; every ~250 ms a second reader asks worker B for the events after
``Last-Event-ID`` (ten events behind the first reader) and the time until it has
every event the first reader had when it asked is measured. Baseline, in the same
loop: the same reattach on worker A (the turn's own worker: its memory).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.common import (
    Proc,
    Table,
    create_api_key,
    fmt,
    pct,
    start_parley,
    start_upstream,
    temp_dir,
)
from bench.reattach import (
    BEHIND,
    PACED_RATE,
    PACED_TOKENS,
    LiveAnswer,
    follow_answer,
    pace_upstream,
    server_env,
    timed_reattach,
)

PG_ADMIN = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("PARLEY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")


@dataclass
class Samples:
    other_ms: list[float] = field(default_factory=list)  # reattach on worker B
    same_ms: list[float] = field(default_factory=list)  # reattach on worker A
    errors: list[str] = field(default_factory=list)


async def _one_turn(a: str, b: str, headers: dict[str, str], out: Samples) -> None:
    async with httpx.AsyncClient(headers=headers, timeout=60, trust_env=False) as http:

        async def tick(live: LiveAnswer) -> None:
            for base, sink in ((b, out.other_ms), (a, out.same_ms)):
                target = live.latest
                ms = await timed_reattach(
                    http,
                    live.events_url(base),
                    {"Last-Event-ID": str(live.latest - BEHIND)},
                    target,
                    done_counts=True,
                )
                if ms is not None:
                    sink.append(ms)
                elif not live.finished.is_set():
                    out.errors.append(f"reattach on {base} ended before event {target}")

        await follow_answer(http, a, tick)


async def _database(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _pair(upstream: Proc, redis: str | None, turns: int) -> Samples:
    name = f"parley_bench_reconnect_{uuid.uuid4().hex[:8]}"
    url = await _database(name)
    procs: list[Proc] = []
    try:
        env = {**server_env(upstream), "PARLEY_DATABASE_URL": url}
        if redis:
            env["PARLEY_REDIS_URL"] = redis
        for worker in ("a", "b"):
            procs.append(start_parley(temp_dir(f"reconnect-{worker}"), env=env))
        a, b = procs[0].url, procs[1].url
        key = create_api_key(a)
        await pace_upstream(upstream, turns)
        out = Samples()
        headers = {"Authorization": f"Bearer {key}"}
        results = await asyncio.gather(
            *(_one_turn(a, b, headers, out) for _ in range(turns)), return_exceptions=True
        )
        out.errors += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        return out
    finally:
        for proc in procs:
            proc.stop()
        await _drop(name)


async def _run(quick: bool) -> Table:
    turns = 4 if quick else 8
    table = Table(
        "reconnect",
        f"reconnect to another worker: {turns} answers at {PACED_RATE} tokens/s, "
        f"a reader {BEHIND} events behind",
        baseline_label="same worker",
    )
    upstream = start_upstream(temp_dir("reconnect-up"), PACED_TOKENS)
    try:
        with_redis = await _pair(upstream, REDIS, turns)
        without = await _pair(upstream, None, turns)
    finally:
        upstream.stop()
    for q, target in ((50, None), (95, 200.0)):
        value = pct(with_redis.other_ms, q)
        table.add(
            f"Redis: missed events delivered by the other worker p{q}",
            fmt(value, "ms", 1),
            fmt(pct(with_redis.same_ms, q), "ms", 1),
            f"<= {target:g} ms" if target else "-",
            (bool(with_redis.other_ms) and value <= target) if target else None,
        )
    for q in (50, 95):
        table.add(
            f"no Redis (stored answer followed): p{q}",
            fmt(pct(without.other_ms, q), "ms", 1),
            fmt(pct(without.same_ms, q), "ms", 1),
            "(info)",
        )
    table.add(
        "samples with Redis / without (errors)",
        f"{len(with_redis.other_ms)} / {len(without.other_ms)} "
        f"({len(with_redis.errors)} / {len(without.errors)})",
        f"{len(with_redis.same_ms)} / {len(without.same_ms)}",
        "0 errors",
        bool(with_redis.other_ms) and not with_redis.errors and not without.errors,
    )
    table.notes.append(
        "without Redis the other worker's reader waits for the periodic flush "
        "(FLUSH_INTERVAL_S, 1 s) and its own poll (0.5 s): a fallback, not the target"
    )
    for err in (with_redis.errors + without.errors)[:5]:
        table.notes.append(f"error: {err}")
    table.raw.update(
        redis_other_ms=with_redis.other_ms,
        redis_same_ms=with_redis.same_ms,
        db_other_ms=without.other_ms,
        db_same_ms=without.same_ms,
    )
    return table


def run(quick: bool = False) -> Table:
    return asyncio.run(_run(quick))
