"""A worker process killed with ``kill -9`` while it holds a job: its lease runs
out and another worker runs the job to the end."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from parley.jobs.queue import Claimed
from parley.jobs.runner import Jobs
from parley.jobs.tables import Job
from parley.storage import Database

HERE = Path(__file__).resolve().parent


async def test_the_job_of_a_killed_worker_is_run_by_another(db: Database, tmp_path: Path) -> None:
    survivor = Jobs(db, lease_s=1.0, poll_s=0.05, worker="survivor")
    job_id = await survivor.enqueue("test.hang", {"payload": "x"})
    marker = tmp_path / "claimed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "hang_worker.py"), db.url.render_as_string(False), str(marker)],
        env=env,
    )
    try:
        for _ in range(600):
            if marker.exists() or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert marker.read_text() == f"{job_id} 1", "the doomed worker never claimed the job"
        async with db.session() as session:
            held = await session.get(Job, job_id)
            assert held is not None and (held.state, held.worker) == ("running", "doomed")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    done: list[tuple[str, int]] = []

    async def finish(job: Claimed) -> None:
        done.append((job.id, job.attempt))

    survivor.handle("test.hang", finish)
    survivor.start()
    try:
        await survivor.drain(["test.hang"], 30)
    finally:
        await survivor.stop()
    assert done == [(job_id, 2)]
    async with db.session() as session:
        row = await session.get(Job, job_id)
        assert row is not None
        assert (row.state, row.worker, row.attempts) == ("done", "survivor", 2)
