"""``parley worker``: a web server that runs no jobs (``jobs_in_server = false``)
queues an upload's ingestion; a separate worker process ingests it, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select

from apihelpers import Client
from parley.config import Settings
from parley.jobs.runner import Jobs
from parley.jobs.tables import Job
from parley.knowledge.feature import KnowledgeFeature

pytestmark = pytest.mark.slow

TEXT = "Tide tables for the northern harbour, printed each spring.\n\n" * 30


@pytest.fixture
def features() -> list[Any]:
    return [KnowledgeFeature]


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"jobs_in_server": False, "embedding_provider": "none"}


async def test_a_worker_process_ingests_what_the_server_queued(
    app: Any, client: Client, user: dict[str, Any], settings: Settings
) -> None:
    assert app.state.services.require(Jobs).running is False
    up = await client.post("/api/files", files={"file": ("tides.txt", TEXT.encode(), "text/plain")})
    assert up.status_code == 201, up.text
    file_id = up.json()["id"]
    await asyncio.sleep(0.5)
    assert (await client.get(f"/api/files/{file_id}")).json()["status"] == "queued"

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PARLEY_DATA_DIR": str(settings.data_dir),
        "PARLEY_DATABASE_URL": settings.resolved_database_url,
        "PARLEY_EMBEDDING_PROVIDER": "none",
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        "PARLEY_SANDBOX_ENABLED": "false",
        "PARLEY_JOBS_POLL_S": "0.1",
    }
    worker = subprocess.Popen(  # our own CLI
        [sys.executable, "-c", "from parley.cli import main; raise SystemExit(main())", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status: dict[str, Any] = {}
        for _ in range(1200):
            status = (await client.get(f"/api/files/{file_id}")).json()
            if status["status"] in ("ready", "failed") or worker.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert status["status"] == "ready", status
        assert status["chunk_count"] > 0
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, out.decode()[-3000:]
        assert b"Parley worker" in out
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    db = app.state.services.require(Jobs).queue.db
    async with db.session() as session:
        job = await session.scalar(select(Job).where(Job.kind == "knowledge.ingest"))
    assert job is not None and job.state == "done"
    assert job.worker is not None and f":{worker.pid}:" in job.worker  # the worker ran it
