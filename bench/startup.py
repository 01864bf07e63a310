"""startup: how fast ``parley serve`` is ready, and how much memory it holds idle.

Each run spawns the real CLI (``parley serve``, local model enabled as by
default, a fresh data dir so the run includes creating and migrating the
SQLite database) and polls ``GET /api/health`` every 10 ms; start-to-ready is
spawn to the first 200. RSS is read from ``/proc/<pid>/statm`` one second after
ready (the local model is not used, so it is not loaded). A second start on the
same data dir (already migrated) is timed too.

Baseline: a bare ASGI app on the same uvicorn (uvloop + httptools), the floor
any Python web server on this interpreter pays. Medians of a few runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import (
    PYTHON,
    Proc,
    Table,
    base_env,
    descendants_rss_mb,
    fmt,
    free_port,
    median,
    rss_mb,
    spawn,
    temp_dir,
    wait_http,
)

BARE_APP = """
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})

uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]),
            http="httptools", loop="uvloop", log_level="warning")
"""


def _measure(
    name: str, cmd: list[str], env: dict[str, str], work: Path, url: str, settle_s: float = 1.0
) -> tuple[float, float, float]:
    """Seconds to ready, the process's RSS and its children's (MB) ``settle_s`` later."""
    start = time.perf_counter()
    proc: Proc = spawn(name, cmd, env, work)
    try:
        wait_http(proc, url, timeout=60)
        ready = time.perf_counter() - start
        time.sleep(settle_s)
        return ready, rss_mb(proc.pid), descendants_rss_mb(proc.pid)
    finally:
        proc.stop()


def run(quick: bool = False) -> Table:
    runs = 3 if quick else 5
    table = Table("startup", "startup: parley serve, idle", "bare uvicorn app")
    work = temp_dir("startup")
    bare = work / "bare.py"
    bare.write_text(BARE_APP)
    parley_exe = str(Path(PYTHON).parent / "parley")
    cold, warm, mem, kids, base_ready, base_mem = [], [], [], [], [], []
    for i in range(runs):
        port = free_port()
        data = work / f"data{i}"
        env = base_env(PARLEY_DATA_DIR=str(data), PARLEY_LOG_LEVEL="warning")
        cmd = [parley_exe, "serve", "--port", str(port)]
        url = f"http://127.0.0.1:{port}/api/health"
        ready, rss, _ = _measure("parley", cmd, env, work, url)
        cold.append(ready)
        mem.append(rss)
        # the spare sandbox kernel imports pandas and matplotlib: give it time
        w_ready, _, w_kids = _measure("parley-warm", cmd, env, work, url, settle_s=8.0)
        warm.append(w_ready)
        kids.append(w_kids)
        port = free_port()
        b_ready, b_rss, _ = _measure(
            "bare", [PYTHON, str(bare), str(port)], base_env(), work, f"http://127.0.0.1:{port}/"
        )
        base_ready.append(b_ready)
        base_mem.append(b_rss)
    table.add(
        "idle RSS after /api/health (local model enabled, not loaded)",
        fmt(median(mem), "MB"),
        fmt(median(base_mem), "MB"),
        "<= 150 MB",
        median(mem) <= 150,
    )
    table.add(
        "  + its child processes (the spare sandbox kernel, own memory)",
        fmt(median(kids), "MB"),
        "-",
        "(info)",
    )
    table.add(
        "start-to-ready, new data dir (creates + migrates DB)",
        fmt(median(cold), "s", 2),
        fmt(median(base_ready), "s", 2),
        "<= 2 s",
        median(cold) <= 2,
    )
    table.add(
        "start-to-ready, existing data dir",
        fmt(median(warm), "s", 2),
        fmt(median(base_ready), "s", 2),
        "<= 2 s",
        median(warm) <= 2,
    )
    table.add(
        "start-to-ready, slowest run", fmt(max(cold + warm), "s", 2), fmt(max(base_ready), "s", 2)
    )
    table.notes.append(f"median of {runs} runs; spawn = the `parley serve` CLI, SQLite")
    table.raw.update(
        cold_s=cold,
        warm_s=warm,
        rss_mb=mem,
        children_rss_mb=kids,
        bare_s=base_ready,
        bare_rss_mb=base_mem,
    )
    return table
