"""Parley's server for benchmarks, with an event-loop lag probe inside it.

Builds ``create_app(load_settings())`` from the environment exactly like
``parley serve`` and runs it on uvicorn with uvloop and httptools, one worker.
Beside it, a task sleeps 10 ms in a loop and records how late each wake-up is
(the event-loop lag every request in this process also suffers). The samples,
``[[time.monotonic(), lag_ms], ...]``, are written to ``$BENCH_LAG_FILE`` on
SIGUSR1 and at exit, so the benchmark can cut out the window of one phase.

Run as a script: ``python bench/_server.py`` (port from ``PARLEY_PORT``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import uvicorn
import uvloop

from parley.api.app import create_app
from parley.config import load_settings

INTERVAL = 0.01


class LagProbe:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        clock = time.perf_counter  # uvloop's loop.time() has 1 ms resolution
        while True:
            start = clock()
            await asyncio.sleep(INTERVAL)
            late = (clock() - start - INTERVAL) * 1000
            self.samples.append((round(time.monotonic(), 4), round(max(late, 0.0), 3)))

    def dump(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"interval_ms": INTERVAL * 1000, "samples": self.samples}))
        tmp.replace(self.path)


async def main() -> None:
    settings = load_settings()
    lag_file = os.environ.get("BENCH_LAG_FILE")
    probe = LagProbe(Path(lag_file) if lag_file else None)
    config = uvicorn.Config(
        create_app(settings, server_process=True),
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop",
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, probe.dump)
    task = asyncio.create_task(probe.run())
    try:
        await server.serve()
    finally:
        task.cancel()
        probe.dump()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
