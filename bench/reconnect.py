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
import re
import time
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

PARLEY_MODEL = "openai/scripted-model"
PACED_TOKENS = 300
PACED_RATE = 50
BEHIND = 10
PG_ADMIN = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("PARLEY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
_ID = re.compile(rb"^id: (\d+)$", re.M)


@dataclass
class Samples:
    other_ms: list[float] = field(default_factory=list)  # reattach on worker B
    same_ms: list[float] = field(default_factory=list)  # reattach on worker A
    errors: list[str] = field(default_factory=list)


async def _read_until(response: httpx.Response, target: int) -> bool:
    """Read until the event ``target`` (or a ``done``: the whole stored answer, which
    is how a stream that followed the stored answer ends)."""
    buffer = b""
    async for chunk in response.aiter_raw():
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            found = _ID.search(block)
            if (found and int(found.group(1)) >= target) or b"event: done" in block:
                return True
    return False


async def _one_turn(a: str, b: str, headers: dict[str, str], out: Samples) -> None:
    async with httpx.AsyncClient(headers=headers, timeout=60, trust_env=False) as http:
        r = await http.post(f"{a}/api/conversations", json={"model": PARLEY_MODEL})
        r.raise_for_status()
        conv = r.json()["id"]
        latest = 0
        answer: str | None = None
        finished = asyncio.Event()

        async def first_reader() -> None:
            nonlocal latest, answer
            buffer = b""
            async with http.stream(
                "POST", f"{a}/api/conversations/{conv}/messages", json={"content": "Go on."}
            ) as response:
                async for chunk in response.aiter_raw():
                    buffer += chunk
                    *blocks, buffer = buffer.split(b"\n\n")
                    for block in blocks:
                        found = _ID.search(block)
                        if found:
                            latest = max(latest, int(found.group(1)))
                        if answer is None and b"event: start" in block:
                            got = re.search(rb'"assistant_message":\{"id":"([^"]+)"', block)
                            answer = got.group(1).decode() if got else None
            finished.set()

        reader = asyncio.create_task(first_reader())
        try:
            while not finished.is_set():
                await asyncio.sleep(0.25)
                if answer is None or latest <= BEHIND + 2 or finished.is_set():
                    continue
                for base, sink in ((b, out.other_ms), (a, out.same_ms)):
                    url = f"{base}/api/conversations/{conv}/messages/{answer}/events"
                    target = latest
                    start = time.perf_counter()
                    async with http.stream(
                        "GET", url, headers={"Last-Event-ID": str(latest - BEHIND)}
                    ) as response:
                        got = await _read_until(response, target)
                    if got:
                        sink.append((time.perf_counter() - start) * 1000)
                    elif not finished.is_set():
                        out.errors.append(f"reattach on {base} ended before event {target}")
        finally:
            await reader


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
        env = {
            "PARLEY_DATABASE_URL": url,
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": "sk-bench",
            "PARLEY_MEMORY_AUTO": "false",
            "PARLEY_TITLE_MODEL": "none",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
        }
        if redis:
            env["PARLEY_REDIS_URL"] = redis
        for worker in ("a", "b"):
            procs.append(start_parley(temp_dir(f"reconnect-{worker}"), env=env))
        a, b = procs[0].url, procs[1].url
        key = create_api_key(a)
        root = upstream.url.rsplit("/v1", 1)[0]
        script = [{"tokens": PACED_TOKENS, "rate": PACED_RATE}] * turns
        async with httpx.AsyncClient(trust_env=False) as http:
            (await http.post(f"{root}/_script", json=script)).raise_for_status()
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
