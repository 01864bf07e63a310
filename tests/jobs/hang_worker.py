"""A worker process for ``test_killed_worker``: claims one ``test.hang`` job, says
so in a marker file, then hangs until it is killed (``kill -9``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from parley.jobs.queue import Claimed
from parley.jobs.runner import Jobs
from parley.storage.db import Database


async def main(url: str, marker: Path) -> None:
    db = Database(url)
    jobs = Jobs(db, lease_s=1.0, poll_s=0.05, worker="doomed")

    async def hang(job: Claimed) -> None:
        marker.write_text(f"{job.id} {job.attempt}")
        await asyncio.Event().wait()

    jobs.handle("test.hang", hang)
    jobs.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
