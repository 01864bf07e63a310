"""The relay benchmark's many-streams phase with a budget and a rate limit on every
request (part of ``python -m bench budgets``).

The same processes as ``bench/relay.py`` (the scripted upstream, 2,000 tokens per
answer; Parley in ``bench/_server.py``, one worker, SQLite), the same load
generator: N streams at once on ``/v1/chat/completions``; then the same with
Parley on PostgreSQL. The run alternates two
modes on one Parley process: **no limits**, and **limits**, the five of
``bench/budgets.py`` (the instance's monthly budget, the user's daily budget, the
key's weekly budget, requests and tokens per minute on the key), far from being
reached, so every request reserves against five counters before its call and
settles after it. The relay benchmark's targets must still hold with limits: no
errors, and an event loop that lags at most 20 ms at p99 while the streams run.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from bench import client as cl
from bench.common import Lag, Proc, Table, fmt, pct, start_parley, start_upstream, temp_dir

TOKENS = 2000
MODEL = "openai/scripted-model"
LIMITS = (
    ("instance", "cost", "month", 1e9),
    ("user", "cost", "day", 1e9),
    ("key", "cost", "week", 1e9),
    ("key", "requests", "minute", 1e9),
    ("key", "tokens", "minute", 1e12),
)


class Admin:
    """The first account (an admin) over HTTP: its API key, and the limits it sets."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, trust_env=False)
        body = {"email": "relay@example.com", "password": "bench-password-123", "name": "b"}
        r = self.http.post("/api/auth/signup", json=body)
        r.raise_for_status()
        self.user_id = r.json()["user"]["id"]
        self.http.headers["X-CSRF-Token"] = self.http.cookies.get("parley_csrf") or ""
        r = self.http.post("/api/keys", json={"name": "bench"})
        r.raise_for_status()
        self.key, self.key_id = r.json()["key"], r.json()["id"]

    def add_limits(self) -> list[str]:
        ids = []
        for scope, kind, period, amount in LIMITS:
            who = {"instance": "", "user": self.user_id, "key": self.key_id}[scope]
            body = {"scope": scope, "scope_id": who, "kind": kind, "period": period}
            r = self.http.post("/api/admin/budgets", json={**body, "amount": amount})
            r.raise_for_status()
            ids.append(r.json()["id"])
        return ids

    def remove(self, ids: list[str]) -> None:
        for budget_id in ids:
            self.http.delete(f"/api/admin/budgets/{budget_id}").raise_for_status()


async def _phase(target: cl.Target, lag: Lag, n: int) -> dict[str, float]:
    start = time.monotonic()
    got = await cl.measure_load(target, n, n)
    lags = lag.window(start, time.monotonic())
    ttft = [r.ttft * 1000 for r in got.load.results if r.error is None]
    errors = got.load.errors
    return {
        "errors": float(len(errors)),
        "chunks_s": got.load.tokens_per_s(TOKENS),
        "chunks_cpu_s": got.tokens_per_cpu_s(TOKENS),
        "ttft_p50": pct(ttft, 50),
        "ttft_p99": pct(ttft, 99),
        "lag_p99": pct(lags, 99) if lags else float("nan"),
        "first_error": errors[0] if errors else "",  # type: ignore[dict-item]
    }


def _mean(runs: list[dict[str, float]], key: str) -> float:
    return sum(r[key] for r in runs) / len(runs)


def relay_with_limits(quick: bool, table: Table) -> None:
    """Add the many-streams rows (with limits | without) to ``table``: SQLite (as
    ``bench/relay.py``), then PostgreSQL when it is there."""
    _relay_on(quick, table, "SQLite", None)
    from bench.budgets import _drop_pg, _pg_database

    try:
        url, name = _pg_database()
    except Exception as exc:  # reported, not hidden
        table.notes.append(f"relay on PostgreSQL skipped: {type(exc).__name__}: {exc}")
        return
    try:
        _relay_on(quick, table, "PostgreSQL", url)
    finally:
        _drop_pg(name)


def _relay_on(quick: bool, table: Table, backend: str, database_url: str | None) -> None:
    n, rounds = (100, 1) if quick else (500, 2)
    work = temp_dir("budget-relay")
    procs: list[Proc] = []
    runs: dict[str, list[dict[str, float]]] = {"none": [], "limits": []}
    try:
        upstream = start_upstream(work, TOKENS)
        procs.append(upstream)
        lag_file = work / "lag.json"
        env = {
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": "sk-bench",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
            "PARLEY_TITLE_MODEL": "none",
        }
        if database_url is not None:
            env["PARLEY_DATABASE_URL"] = database_url
        parley = start_parley(work, env=env, lag_file=lag_file)
        procs.append(parley)
        admin = Admin(parley.url)
        # priced, so the budgets count money (the scripted model has no list price)
        admin.http.put(
            "/api/admin/prices",
            json={"model": MODEL, "input_price": 1, "cached_input_price": 0, "output_price": 2},
        ).raise_for_status()
        target = cl.Target(
            "parley",
            f"{parley.url}/v1/chat/completions",
            cl.chat_body(MODEL),
            {"Authorization": f"Bearer {admin.key}"},
            cpu=parley.cpu,
        )
        lag = Lag(parley, lag_file)

        async def measure() -> None:
            async with cl.make_client() as client:
                await cl.alternate(client, [target], 5)  # warm-up
            for i in range(rounds):
                for mode in ("none", "limits") if i % 2 == 0 else ("limits", "none"):
                    ids = admin.add_limits() if mode == "limits" else []
                    runs[mode].append(await _phase(target, lag, n))
                    admin.remove(ids)
                    await asyncio.sleep(1)  # the last settles land before the next phase

        asyncio.run(measure())
    finally:
        for proc in reversed(procs):
            proc.stop()
    ours, base = runs["limits"], runs["none"]
    label = f"relay {n} concurrent streams ({backend})"
    errors = sum(r["errors"] for r in ours)
    table.add(
        f"{label}: errors (limits | none)",
        fmt(errors),
        fmt(sum(r["errors"] for r in base)),
        "0",
        errors == 0,
    )
    lag_worst = max(r["lag_p99"] for r in ours)
    table.add(
        f"{label}: loop lag p99 (worst run)",
        fmt(lag_worst, "ms", 2),
        fmt(max(r["lag_p99"] for r in base), "ms", 2),
        "<= 20 ms",
        lag_worst <= 20,
    )
    for key, name, digits in (
        ("chunks_s", "wall chunks/s", 0),
        ("chunks_cpu_s", "chunks per CPU-second", 0),
        ("ttft_p50", "TTFT p50", 1),
        ("ttft_p99", "TTFT p99", 1),
    ):
        unit = "ms" if key.startswith("ttft") else ""
        table.add(
            f"{label}: {name}",
            fmt(_mean(ours, key), unit, digits),
            fmt(_mean(base, key), unit, digits),
        )
    first = next((r["first_error"] for r in ours + base if r["first_error"]), "")
    if first:
        table.notes.append(f"relay: first error: {first}")
    if backend == "SQLite":
        table.notes.append(
            f"relay rows: {rounds} alternating run(s) per mode of {n} streams at once, "
            f"{TOKENS} tokens each, one Parley worker (SQLite as bench/relay.py, then "
            "PostgreSQL); 'limits': the five limits above on every request; means over "
            f"runs. CPU count {os.cpu_count()}."
        )
    table.raw[f"relay-{backend}"] = runs
