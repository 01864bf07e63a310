"""Code interpreter latency: sandbox cold start and warm round trips.

``.venv/bin/python -m bench.sandbox_perf [--quick]`` prints one table.

- cold start, no spare (``spares=0``): a new conversation's first ``run_python``
  call, from the call to its result (bubblewrap + ipykernel start, handshake,
  ``1+1``), each in a fresh conversation (the previous kernel is shut down first);
- cold start with a spare (the default ``PARLEY_SANDBOX_SPARE_KERNELS=1``): the
  same, with the spare ready (as when conversations are not seconds apart): what
  a user sees;
- cold start, spare still starting: the next new conversation right after one
  took the spare (the worst case: it waits for the replacement to finish);
- first chart in a new conversation with a spare (pandas + matplotlib already
  imported by its warm-up);
- warm ``1+1``: the next calls in the same conversation (the manager's whole
  path: file sync, snapshots of the working directory, execute, collect);
- warm raw kernel ``1+1``: ``Kernel.execute`` alone, to show the manager's share;
- first pandas + matplotlib chart in a warm kernel (imports and a PNG) and a
  repeated chart, for scale.

Targets: cold start (a new conversation, default settings: spare ready) <= 1 s
at p95, warm ``1+1`` <= 50 ms (p50).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.common import Table, fmt, pct
from parley.sandbox import Limits, SandboxConfig, SandboxManager
from parley.sandbox.feature import default_python
from parley.sandbox.outputs import Attachment, media_type_for

CHART = (
    "import pandas as pd, matplotlib.pyplot as plt\n"
    "pd.DataFrame({'x': range(50), 'y': [i * i for i in range(50)]}).plot(x='x', y='y')\n"
    "plt.show()"
)


class _Sink:
    async def save(
        self, user_id: str, conversation_id: str | None, filename: str, data: bytes
    ) -> Attachment:
        media, kind = media_type_for(filename, data[:16])
        return Attachment("bench", filename, media, kind, len(data))


KEYS = ("cold", "spare", "spare_busy", "spare_chart", "warm", "raw", "chart1", "chart")


async def _timed(manager: SandboxManager, conversation: str, code: str) -> float:
    started = time.perf_counter()
    result = await manager.run("bench", conversation, code)
    elapsed = (time.perf_counter() - started) * 1000
    assert result.execution is not None and not result.execution.error, result
    return elapsed


async def _measure_spares(
    config: SandboxConfig, runs: int, samples: dict[str, list[float]]
) -> None:
    manager = SandboxManager(replace(config, spares=1), _Sink())
    manager.start_reaper(interval_s=3600)
    try:
        for i in range(runs):
            await manager.spares_ready()
            samples["spare"].append(await _timed(manager, f"spare{i}", "1+1"))
            # at once: the replacement spare is still starting
            samples["spare_busy"].append(await _timed(manager, f"busy{i}", "1+1"))
            await manager.reap_idle(now=time.monotonic() + config.idle_s + 1)
        for i in range(max(2, runs // 3)):
            await manager.spares_ready()
            samples["spare_chart"].append(await _timed(manager, f"chart{i}", CHART))
            await manager.reap_idle(now=time.monotonic() + config.idle_s + 1)
    finally:
        await manager.close()


async def _measure(quick: bool) -> dict[str, list[float]]:
    config = SandboxConfig(bwrap="bwrap", python=default_python(), limits=Limits(), per_user=2)
    manager = SandboxManager(config, _Sink())
    reason = manager.unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    cold_runs, warm_runs = (5, 50) if quick else (15, 300)
    samples: dict[str, list[float]] = {k: [] for k in KEYS}
    try:
        for i in range(cold_runs):
            started = time.perf_counter()
            result = await manager.run("bench", f"cold{i}", "1+1")
            samples["cold"].append((time.perf_counter() - started) * 1000)
            assert result.execution is not None and "2" in result.execution.result, result
            await manager.reap_idle(now=time.monotonic() + config.idle_s + 1)
        await manager.run("bench", "warm", "1+1")
        for _ in range(warm_runs):
            started = time.perf_counter()
            await manager.run("bench", "warm", "1+1")
            samples["warm"].append((time.perf_counter() - started) * 1000)
        kernel = manager.kernel_for("bench", "warm")
        assert kernel is not None
        for _ in range(warm_runs):
            started = time.perf_counter()
            await kernel.execute("1+1", 10)
            samples["raw"].append((time.perf_counter() - started) * 1000)
        for key in ("chart1", "chart", "chart", "chart", "chart"):
            started = time.perf_counter()
            result = await manager.run("bench", "warm", CHART)
            samples[key].append((time.perf_counter() - started) * 1000)
            assert len(result.attachments) == 1, result
    finally:
        await manager.close()
    await _measure_spares(config, cold_runs, samples)
    return samples


def run(quick: bool = False) -> Table:
    samples = asyncio.run(_measure(quick))
    table = Table("sandbox_perf", "Code interpreter (bubblewrap + ipykernel)", "p95")
    targets = {"spare": 1000.0, "warm": 50.0}
    labels = {
        "cold": "cold start, no spare (1+1)",
        "spare": "cold start, spare ready (1+1)",
        "spare_busy": "cold start, spare still starting (1+1)",
        "spare_chart": "first chart, new conversation, spare ready",
        "warm": "warm round trip 1+1 (manager)",
        "raw": "warm round trip 1+1 (kernel only)",
        "chart1": "first pandas+matplotlib chart, no spare",
        "chart": "repeated chart (PNG out)",
    }
    for key, label in labels.items():
        values = samples[key]
        p50, p95 = pct(values, 50), pct(values, 95)
        target = targets.get(key)
        judged = p95 if key == "spare" else p50
        table.add(
            f"{label} p50 (n={len(values)})",
            fmt(p50, "ms"),
            fmt(p95, "ms"),
            f"<= {target:g} ms" + (" p95" if key == "spare" else "") if target else "-",
            (judged <= target) if target else None,
        )
    table.notes.append(f"host: {Path('/proc/cpuinfo').read_text().count('processor')} cores")
    table.raw = samples
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_perf", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    table = run(args.quick)
    print(table.render())
    return 0 if all(r.ok is not False for r in table.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
