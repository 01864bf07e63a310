"""Shared benchmark plumbing: tables, percentiles, processes, Parley servers.

Everything talks to 127.0.0.1 only. Processes started here are tracked by pid
and stopped by pid (SIGINT, then SIGKILL), never by name.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ numbers


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # nan
            return "n/a"
        text = f"{value:,.{digits}f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


# ------------------------------------------------------------------ tables


@dataclass
class Row:
    metric: str
    parley: str
    baseline: str = "-"
    target: str = "-"
    ok: bool | None = None  # None: informational

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: ""}[self.ok]


@dataclass
class Table:
    """One benchmark's result table plus the raw numbers for the JSON file."""

    name: str
    title: str
    baseline_label: str = "baseline"
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        metric: str,
        parley: str,
        baseline: str = "-",
        target: str = "-",
        ok: bool | None = None,
    ) -> None:
        self.rows.append(Row(metric, parley, baseline, target, ok))

    def render(self) -> str:
        head = ("metric", "Parley", self.baseline_label, "target", "pass?")
        cells = [head] + [(r.metric, r.parley, r.baseline, r.target, r.verdict) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(5)]

        def line(c: Sequence[str]) -> str:
            left = c[0].ljust(widths[0])
            mid = [c[i].rjust(widths[i]) for i in (1, 2, 3)]
            return " | ".join([left, *mid, c[4].ljust(widths[4])]).rstrip()

        out = [f"== {self.title} ==", line(head), "-+-".join("-" * w for w in widths)]
        out += [line(c) for c in cells[1:]]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "baseline_label": self.baseline_label,
            "rows": [
                {
                    "metric": r.metric,
                    "parley": r.parley,
                    "baseline": r.baseline,
                    "target": r.target,
                    "pass": r.ok,
                }
                for r in self.rows
            ],
            "notes": self.notes,
            "raw": self.raw,
        }


def save(tables: list[Table], quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    names = "-".join(t.name for t in tables)
    path = RESULTS / f"{stamp}-{names}{'-quick' if quick else ''}.json"
    meta = {"time": stamp, "quick": quick, "cpus": os.cpu_count(), "load": os.getloadavg()}
    path.write_text(json.dumps({"meta": meta, "tables": [t.to_json() for t in tables]}, indent=2))
    return path


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(p)
    return total


def message_row(
    msg_id: str, conv_id: str, user_id: str, parent: str | None, role: str, content: str, at: Any
) -> dict[str, Any]:
    """A complete message row for bulk-inserting seeded conversations."""
    return {
        "id": msg_id,
        "conversation_id": conv_id,
        "user_id": user_id,
        "parent_id": parent,
        "role": role,
        "content": content,
        "reasoning": "",
        "steps": [],
        "status": "complete",
        "input_tokens": 0,
        "output_tokens": 0,
        "cost": 0.0,
        "feedback": 0,
        "pinned": False,
        "created_at": at,
        "updated_at": at,
    }


def rss_mb(pid: int) -> float:
    raw = Path(f"/proc/{pid}/statm").read_text().split()
    return int(raw[1]) * PAGE / 1e6


def descendants_rss_mb(pid: int) -> float:
    """Resident memory of every process ``pid`` started (e.g. sandbox kernels)."""
    total = 0.0
    for p in descendants(pid):
        with contextlib.suppress(OSError, ValueError):
            total += rss_mb(p)
    return total


@dataclass
class Proc:
    """A child process started by a benchmark; ``stop()`` ends it by pid."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid)

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is not None:
            return
        kids = descendants(self.pid)
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        for kid in kids:  # workers a peer may have forked
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGKILL)

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _die_with_parent() -> None:
    """Child side: get SIGTERM if the benchmark process dies (no orphaned servers)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(name: str, cmd: list[str], env: dict[str, str], workdir: Path) -> Proc:
    log = workdir / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        cmd,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    handle.close()
    return Proc(name, popen, log)


def wait_http(
    proc: Proc, url: str, timeout: float = 60, headers: dict[str, str] | None = None
) -> float:
    """Poll ``url`` until it answers 200; returns the seconds it took."""
    start = time.perf_counter()
    with httpx.Client(timeout=2) as client:
        while True:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
            try:
                if client.get(url, headers=headers).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"{proc.name} not ready after {timeout}s:\n{proc.tail()}")
            time.sleep(0.01)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "OPENAI_"))}
    env.update({"PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "*"})
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(key, None)
    env.update(extra)
    return env


def temp_dir(prefix: str) -> Path:
    """A fresh temp dir, removed when the benchmark process exits."""
    path = Path(tempfile.mkdtemp(prefix=f"parley-bench-{prefix}-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def start_upstream(workdir: Path, tokens: int, name: str = "upstream") -> Proc:
    port = free_port()
    cmd = [PYTHON, "-m", "parley.providers.testing", "--port", str(port)]
    cmd += ["--default-tokens", str(tokens), "--models", "scripted-model"]
    proc = spawn(name, cmd, base_env(), workdir)
    proc.url = f"http://127.0.0.1:{port}/v1"
    wait_http(proc, f"{proc.url}/models")
    return proc


def start_parley(
    workdir: Path,
    *,
    env: dict[str, str],
    lag_file: Path | None = None,
    config_toml: str | None = None,
) -> Proc:
    """``bench/_server.py`` (create_app + uvicorn, uvloop, httptools) in its own process."""
    port = free_port()
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    extra = {
        "PARLEY_DATA_DIR": str(data),
        "PARLEY_PORT": str(port),
        "PARLEY_LOG_LEVEL": "warning",
        **env,
    }
    if config_toml is not None:
        cfg = workdir / "parley.toml"
        cfg.write_text(config_toml)
        extra["PARLEY_CONFIG"] = str(cfg)
    if lag_file is not None:
        extra["BENCH_LAG_FILE"] = str(lag_file)
    proc = spawn("parley", [PYTHON, str(BENCH / "_server.py")], base_env(**extra), workdir)
    proc.url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{proc.url}/api/health")
    return proc


def create_api_key(url: str, email: str = "bench@example.com") -> str:
    """Sign up (the first account) and create an API key over HTTP."""
    with httpx.Client(base_url=url, timeout=30) as client:
        password = "bench-password-123"
        body = {"email": email, "password": password, "name": "bench"}
        r = client.post("/api/auth/signup", json=body)
        if r.status_code >= 400:
            r = client.post("/api/auth/login", json={"email": email, "password": password})
        r.raise_for_status()
        csrf = client.cookies.get("parley_csrf") or ""
        r = client.post("/api/keys", json={"name": "bench"}, headers={"X-CSRF-Token": csrf})
        r.raise_for_status()
        return str(r.json()["key"])


@contextlib.contextmanager
def own_core(pid: int, others: Sequence[int]) -> Iterator[bool]:
    """Pin ``pid`` to the first CPU and ``others`` to the rest for the duration;
    yields False (and pins nothing) on a machine with a single CPU.

    On a 2-core machine the client, the upstream and Parley would otherwise take
    turns on two cores, and a latency measured then is mostly the OS's choice of
    who waits. A server normally has its cores to itself; the models and
    clients it serves run elsewhere.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield False
        return
    pids = [pid, *others]
    saved = {p: os.sched_getaffinity(p) for p in pids}
    try:
        os.sched_setaffinity(pid, {cpus[0]})
        for other in others:
            os.sched_setaffinity(other, set(cpus[1:]))
        yield True
    finally:
        for p, mask in saved.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(p, mask)


class Lag:
    """Reads the loop-lag samples ``_server.py`` dumps on SIGUSR1 / at exit."""

    def __init__(self, proc: Proc, path: Path) -> None:
        self.proc, self.path = proc, path

    def window(self, start: float, end: float) -> list[float]:
        """Lag samples (ms) taken between two ``time.monotonic()`` stamps."""
        before = self.path.stat().st_mtime_ns if self.path.exists() else 0
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.path.exists() and self.path.stat().st_mtime_ns != before:
                try:
                    data = json.loads(self.path.read_text())
                    break
                except ValueError:
                    pass
            time.sleep(0.05)
        else:
            return []
        return [lag for t, lag in data["samples"] if start <= t <= end]
