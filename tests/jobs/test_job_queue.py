"""The durable job queue on a real database (SQLite and PostgreSQL): enqueue once,
leases that run out, retries with backoff, dead letters, no job run twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from parley.jobs.queue import Claimed, JobQueue, backoff_s
from parley.jobs.runner import Jobs, Permanent
from parley.jobs.tables import Job
from parley.storage import Database
from parley.storage.tables import utcnow


async def _row(db: Database, job_id: str) -> Job:
    async with db.session() as session:
        row = await session.get(Job, job_id)
    assert row is not None
    return row


async def test_the_same_work_is_queued_once(db: Database) -> None:
    queue = JobQueue(db)
    first = await queue.enqueue("k", {"file_id": "f1"}, key="f1")
    assert first is not None
    assert await queue.enqueue("k", {"file_id": "f1"}, key="f1") is None
    assert await queue.enqueue("other", {}, key="f1") is not None  # keys are per kind
    claimed = await queue.claim(["k"], "w1", 10)
    assert await queue.complete(claimed[0])
    # once done, the same key may be queued again (new work)
    assert await queue.enqueue("k", {"file_id": "f1"}, key="f1") is not None


async def test_a_lease_that_runs_out_gives_the_job_to_another_worker(db: Database) -> None:
    queue = JobQueue(db, lease_s=0.3)
    job_id = await queue.enqueue("k", {"n": 1})
    [held] = await queue.claim(["k"], "dead-worker", 5)
    assert held.attempt == 1
    assert await queue.claim(["k"], "other", 5) == []  # leased: nobody else gets it
    await asyncio.sleep(0.5)
    [again] = await queue.claim(["k"], "other", 5)
    assert (again.id, again.attempt) == (job_id, 2)
    # the first worker woke up: its writes are fenced off
    assert await queue.complete(held) is False
    assert (await _row(db, job_id)).state == "running"
    assert await queue.complete(again) is True
    row = await _row(db, job_id)
    assert (row.state, row.worker, row.attempts) == ("done", "other", 2)


async def test_a_failure_is_retried_after_a_growing_backoff(db: Database) -> None:
    queue = JobQueue(db, backoff_base_s=10, backoff_max_s=100)
    job_id = await queue.enqueue("k", {}, max_attempts=3)
    [held] = await queue.claim(["k"], "w", 1)
    before = utcnow()
    assert await queue.fail(held, "boom") == "queued"
    row = await _row(db, job_id)
    assert row.state == "queued" and row.last_error == "boom"
    assert row.run_after >= before + timedelta(seconds=5)  # at least half of 10 s
    assert await queue.claim(["k"], "w", 1) == []  # not before its time
    assert backoff_s(2, 10, 100, jitter=0) == 20
    assert backoff_s(9, 10, 100, jitter=0) == 100


async def test_out_of_attempts_is_a_dead_letter_an_admin_can_retry(db: Database) -> None:
    jobs = Jobs(db, lease_s=5, poll_s=0.02, backoff_base_s=0.01, backoff_max_s=0.02)
    calls: Counter[str] = Counter()

    async def flaky(job: Claimed) -> None:
        calls[job.id] += 1
        if not job.payload.get("fixed"):
            raise RuntimeError(f"attempt {job.attempt} failed")

    jobs.handle("flaky", flaky, max_attempts=3)
    job_id = await jobs.enqueue("flaky", {})
    assert job_id is not None
    jobs.start()
    try:
        await jobs.drain(["flaky"], 20)
        row = await _row(db, job_id)
        assert (row.state, row.attempts, calls[job_id]) == ("dead", 3, 3)
        assert row.last_error == "RuntimeError: attempt 3 failed"
        assert (await jobs.queue.counts())["dead"] == 1
        # the admin fixes the cause and retries: it runs again, from attempt 1
        async with db.session() as session:
            stored = await session.get(Job, job_id)
            assert stored is not None
            stored.payload = {"fixed": True}
            await session.commit()
        retried = await jobs.queue.retry(job_id)
        assert retried is not None and retried.state == "queued" and retried.attempts == 0
        jobs.wake()
        await jobs.drain(["flaky"], 20)
        row = await _row(db, job_id)
        assert (row.state, row.attempts, calls[job_id]) == ("done", 1, 4)
        assert await jobs.queue.retry(job_id) is None  # a done job is not retried
    finally:
        await jobs.stop()


async def test_a_permanent_failure_is_dead_at_once_and_can_be_discarded(db: Database) -> None:
    jobs = Jobs(db, poll_s=0.02)
    seen: list[int] = []

    async def hopeless(job: Claimed) -> None:
        seen.append(job.attempt)
        raise Permanent("the file is gone")

    jobs.handle("hopeless", hopeless, max_attempts=5)
    job_id = await jobs.enqueue("hopeless", {})
    assert job_id is not None
    jobs.start()
    try:
        await jobs.drain(["hopeless"], 20)
    finally:
        await jobs.stop()
    row = await _row(db, job_id)
    assert (row.state, row.last_error, seen) == ("dead", "the file is gone", [1])
    assert await jobs.queue.discard(job_id)
    assert await jobs.queue.get(job_id) is None


async def test_four_concurrent_claimers_run_every_job_once(database_url: str) -> None:
    """Four runners, each with its own connection pool (as four worker processes on
    PostgreSQL), drain 400 jobs: each runs exactly once."""
    setup = Database(database_url)
    await setup.migrate()
    queue = JobQueue(setup)
    ids = set()
    for start in range(0, 400, 100):
        made = await asyncio.gather(
            *(queue.enqueue("n", {"i": i}) for i in range(start, start + 100))
        )
        ids.update(i for i in made if i is not None)
    assert len(ids) == 400
    runs: Counter[str] = Counter()
    workers: Counter[str] = Counter()
    databases = [Database(database_url) for _ in range(4)]
    runners = [Jobs(d, concurrency=8, poll_s=0.01, worker=f"w{n}") for n, d in enumerate(databases)]
    for runner in runners:

        async def record(job: Claimed) -> None:
            runs[job.id] += 1
            workers[job.worker] += 1
            await asyncio.sleep(0)

        runner.handle("n", record)
    for runner in runners:
        runner.start()
    try:
        await runners[0].drain(["n"], 120)
    finally:
        for runner in runners:
            await runner.stop()
        for d in databases:
            await d.dispose()
    assert set(runs) == ids
    assert [job for job, n in runs.items() if n > 1] == []
    assert (await queue.counts())["done"] == 400
    if setup.dialect == "postgresql":
        assert len(workers) == 4  # every claimer got a share
    await setup.dispose()


async def test_run_here_returns_the_result_and_leaves_a_failure_to_the_queue(
    db: Database,
) -> None:
    """A job run at once by the process that queued it (an after-turn hook wants its
    events): the result comes back; a failure stays queued for another attempt."""
    jobs = Jobs(db, poll_s=0.02, backoff_base_s=0.01, backoff_max_s=0.02)
    outcomes = iter(["fail", "ok"])

    async def extract(job: Claimed) -> str:
        if job.payload["mode"] == "flaky" and next(outcomes) == "fail":
            raise RuntimeError("model timed out")
        return f"learned from {job.payload['mode']} (attempt {job.attempt}, by {job.worker})"

    jobs.handle("extract", extract)
    assert await jobs.run_here("extract", {"mode": "calm"}, key="m1") == (
        f"learned from calm (attempt 1, by {jobs.worker})"
    )
    assert (await jobs.queue.counts())["done"] == 1
    assert await jobs.run_here("extract", {"mode": "flaky"}, key="m2") is None
    [waiting] = await jobs.queue.recent("queued")
    assert (waiting.attempts, waiting.last_error) == (1, "RuntimeError: model timed out")
    # the same work asked again while it waits is not run twice
    assert await jobs.run_here("extract", {"mode": "flaky"}, key="m2") is None
    jobs.start()  # another attempt, by the loop (another worker, had this one died)
    try:
        await jobs.drain(["extract"], 20)
    finally:
        await jobs.stop()
    assert jobs.ran["extract"] == 2
    assert (await jobs.queue.counts()) == {"queued": 0, "running": 0, "done": 2, "dead": 0}
