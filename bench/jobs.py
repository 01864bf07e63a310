"""``python -m bench jobs``: the durable job queue on PostgreSQL, four workers.

N jobs are enqueued in a fresh database; then four worker *processes* (each a
``parley.jobs.Jobs`` loop with its own connection pool, as ``parley worker``
runs it) claim and complete them with ``FOR UPDATE SKIP LOCKED`` until none
is left. Each worker reports the ids its handler ran: the table says how many
jobs ran more than once (the target is none) and the rate from the first claim
to the last completion. The baseline is one worker process, measured in the
same run on its own batch of jobs. The handler does nothing, so this is the
queue's own cost (claim, lease, completion: two transactions per job, claims
batched by the free slots).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
import uuid
from collections import Counter
from typing import Any

from bench.common import Table

PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_RATE = 200.0
WORKERS = 4
KIND = "bench.noop"


def _url(name: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _prepare(url: str, n: int) -> None:
    from parley.jobs.queue import JobQueue
    from parley.storage.db import Database

    db = Database(url)
    await db.migrate()
    queue = JobQueue(db)
    for start in range(0, n, 200):
        await asyncio.gather(
            *(queue.enqueue(KIND, {"n": i}) for i in range(start, min(n, start + 200)))
        )
    await db.dispose()


def _worker(url: str, ready: Any, go: Any, out: Any) -> None:
    async def main() -> None:
        from parley.jobs.queue import Claimed
        from parley.jobs.runner import Jobs
        from parley.storage.db import Database

        db = Database(url)
        jobs = Jobs(db, concurrency=16, poll_s=0.02, lease_s=30)
        ran: list[str] = []

        async def noop(job: Claimed) -> None:
            ran.append(job.id)

        jobs.handle(KIND, noop)
        await jobs.queue.pending()  # connect before the clock starts
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.005)
        jobs.start()
        while await jobs.queue.pending([KIND]):
            await asyncio.sleep(0.02)
        await jobs.stop()
        await db.dispose()
        out.put((ran, time.time()))

    asyncio.run(main())


def _measure(n: int, workers: int) -> dict[str, Any]:
    name = f"parley_bench_jobs_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = _url(name)
        asyncio.run(_prepare(url, n))
        ctx = mp.get_context("spawn")
        go, out = ctx.Event(), ctx.Queue()
        readies = [ctx.Event() for _ in range(workers)]
        procs = [ctx.Process(target=_worker, args=(url, r, go, out)) for r in readies]
        for p in procs:
            p.start()
        for r in readies:
            r.wait(60)
        started = time.time()
        go.set()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(30)
        finished = max(t for _, t in results)
        runs = Counter(job_id for ran, _ in results for job_id in ran)
        return {
            "jobs": n,
            "workers": workers,
            "seconds": finished - started,
            "rate": n / (finished - started),
            "ran": len(runs),
            "twice": sum(1 for c in runs.values() if c > 1),
            "per_worker": [len(ran) for ran, _ in results],
        }
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(quick: bool = False) -> Table:
    n = 1000 if quick else 4000
    baseline = _measure(n // 2, 1)
    four = _measure(n, WORKERS)
    table = Table("jobs", "Job queue on PostgreSQL: claimed and completed", "1 worker")
    table.add(
        f"jobs/s, {WORKERS} worker processes",
        f"{four['rate']:.0f}",
        f"{baseline['rate']:.0f}",
        f">= {TARGET_RATE:.0f}",
        four["rate"] >= TARGET_RATE,
    )
    table.add(
        "jobs run",
        str(four["ran"]),
        str(baseline["ran"]),
        f"= {n} / {n // 2}",
        four["ran"] == n and baseline["ran"] == n // 2,
    )
    table.add(
        "jobs run twice",
        str(four["twice"]),
        str(baseline["twice"]),
        "0",
        four["twice"] == 0 and baseline["twice"] == 0,
    )
    table.notes.append(f"jobs per worker: {four['per_worker']}")
    table.notes.append(
        f"{n} jobs in {four['seconds']:.2f} s ({WORKERS} workers); "
        f"{n // 2} in {baseline['seconds']:.2f} s (1 worker); handler does nothing"
    )
    table.raw.update({"four": four, "one": baseline})
    return table
