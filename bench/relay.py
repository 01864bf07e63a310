"""relay: Parley's streaming overhead against the scripted upstream.

Processes: the scripted upstream (``python -m parley.providers.testing``,
2,000 tokens per answer as fast as it can), and Parley (``bench/_server.py``:
one uvicorn worker, uvloop + httptools, SQLite in a temp dir, the local model
off, the upstream configured through ``OPENAI_BASE_URL``/``OPENAI_API_KEY``).
The client (this process) streams from both with the same httpx code.

Phases:
1. TTFT: sequential streams alternating direct / Parley ``/v1/chat/completions``;
   overhead = Parley's percentile minus the direct percentile. Measured twice:
   with Parley on a CPU of its own (``common.own_core``; the target rows) and with
   the three processes sharing the cores (info).
2. CPU throughput: streams at concurrency 8; upstream chunks relayed divided by the
   CPU seconds the Parley process consumed (``/proc/<pid>/stat``).
3. Concurrency: N streams at once against the one worker; errors, wall
   chunks/s, and event-loop lag measured inside Parley (sleep(10 ms) overshoot).
4. The native SSE route (``POST /api/conversations/{id}/messages``, which also
   persists the turn): TTFT and CPU throughput, reported separately.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from bench import client as cl
from bench.common import (
    Lag,
    Proc,
    Table,
    create_api_key,
    fmt,
    own_core,
    pct,
    start_parley,
    start_upstream,
    temp_dir,
)

TOKENS = 2000
MODEL = "scripted-model"
PARLEY_MODEL = "openai/scripted-model"
PACED_TOKENS = 200
PACED_RATE = 50


@dataclass(frozen=True)
class Params:
    ttft_rounds: int
    cpu_streams: int
    cpu_concurrency: int
    concurrent: int
    native_rounds: int
    native_streams: int


FULL = Params(200, 48, 8, 500, 60, 24)
QUICK = Params(40, 16, 8, 100, 15, 8)


def targets(upstream: Proc, parley: Proc, key: str) -> dict[str, cl.Target]:
    auth = {"Authorization": f"Bearer {key}"}

    async def new_conversation(client: cl.httpx.AsyncClient) -> str:
        r = await client.post(
            f"{parley.url}/api/conversations", json={"model": PARLEY_MODEL}, headers=auth
        )
        r.raise_for_status()
        return f"{parley.url}/api/conversations/{r.json()['id']}/messages"

    return {
        "direct": cl.Target(
            "direct",
            f"{upstream.url}/chat/completions",
            cl.chat_body(MODEL),
            {"Authorization": "Bearer sk-bench"},
            cpu=upstream.cpu,
        ),
        "parley": cl.Target(
            "parley",
            f"{parley.url}/v1/chat/completions",
            cl.chat_body(PARLEY_MODEL),
            auth,
            cpu=parley.cpu,
        ),
        "native": cl.Target(
            "native",
            "",
            {"content": "Write a long answer, please."},
            auth,
            cpu=parley.cpu,
            token=cl.NATIVE_TOKEN,
            prepare=new_conversation,
        ),
    }


def ttft_ms(results: list[cl.StreamResult]) -> list[float]:
    return [r.ttft * 1000 for r in results if r.error is None]


def p50_p99(values: list[float]) -> str:
    return f"{pct(values, 50):,.0f} / {pct(values, 99):,.0f} ms"


def errors_of(results: list[cl.StreamResult]) -> list[str]:
    return [r.error for r in results if r.error is not None]


def add_ttft_rows(
    table: Table, label: str, ours: list[float], base: list[float], targets_ms: tuple[float, float]
) -> None:
    for q, target in zip((50, 99), targets_ms, strict=True):
        a, b = pct(ours, q), pct(base, q)
        table.add(f"{label} TTFT p{q}", fmt(a, "ms", 2), fmt(b, "ms", 2))
        over = a - b
        table.add(
            f"{label} TTFT overhead p{q}",
            fmt(over, "ms", 2),
            "-",
            f"<= {target:g} ms" if target else "(info)",
            (over <= target) if target else None,
        )


async def measure(
    t: dict[str, cl.Target],
    lag: Lag,
    p: Params,
    table: Table,
    pinning: Callable[[], AbstractContextManager[bool]],
) -> None:
    direct, parley, native = t["direct"], t["parley"], t["native"]
    async with cl.make_client() as client:
        probe = await native.one(client)
        if probe.error:  # a broken route must not stall the whole suite
            table.notes.append(f"native route failed, its phases skipped: {probe.error}")
        await cl.alternate(client, [direct, parley] + ([] if probe.error else [native]), 5)
        idle_start = time.monotonic()
        await asyncio.sleep(2)
        idle_lag = lag.window(idle_start, time.monotonic())

        # Unpinned first: once unpinned again, the OS leaves processes where they were.
        shared = await cl.alternate(client, [direct, parley], p.ttft_rounds)
        with pinning() as pinned:
            seq = await cl.alternate(client, [direct, parley], p.ttft_rounds)
        errs = errors_of(seq["parley"]) + errors_of(seq["direct"])
        errs += errors_of(shared["parley"]) + errors_of(shared["direct"])
        where = " (own core)" if pinned else ""
        add_ttft_rows(table, f"/v1{where}", ttft_ms(seq["parley"]), ttft_ms(seq["direct"]), (5, 25))
        if pinned:
            add_ttft_rows(
                table,
                "/v1 (cores shared)",
                ttft_ms(shared["parley"]),
                ttft_ms(shared["direct"]),
                (0, 0),
            )
        whole = [r.total * 1000 for r in seq["parley"] if r.error is None]
        whole_d = [r.total * 1000 for r in seq["direct"] if r.error is None]
        table.add(
            f"/v1 one {TOKENS}-token stream p50",
            fmt(pct(whole, 50), "ms"),
            fmt(pct(whole_d, 50), "ms"),
        )

        ours = await cl.measure_load(parley, p.cpu_streams, p.cpu_concurrency)
        base = await cl.measure_load(direct, p.cpu_streams, p.cpu_concurrency)
        table.add(
            "/v1 chunks per CPU-second (server)",
            fmt(ours.tokens_per_cpu_s(TOKENS), "", 0),
            fmt(base.tokens_per_cpu_s(TOKENS), "", 0),
            ">= 10,000",
            ours.tokens_per_cpu_s(TOKENS) >= 10_000 and not ours.load.errors,
        )
        table.add(
            f"/v1 wall chunks/s (concurrency {p.cpu_concurrency})",
            fmt(ours.load.tokens_per_s(TOKENS), "", 0),
            fmt(base.load.tokens_per_s(TOKENS), "", 0),
        )
        errs += ours.load.errors + base.load.errors

        start = time.monotonic()
        many = await cl.measure_load(parley, p.concurrent, p.concurrent)
        lags = lag.window(start, time.monotonic())
        many_d = await cl.measure_load(direct, p.concurrent, p.concurrent)
        n = p.concurrent
        table.add(
            f"/v1 {n} concurrent streams: errors",
            fmt(len(many.load.errors)),
            fmt(len(many_d.load.errors)),
            "0",
            not many.load.errors,
        )
        table.add(
            f"/v1 {n} concurrent: wall chunks/s",
            fmt(many.load.tokens_per_s(TOKENS), "", 0),
            fmt(many_d.load.tokens_per_s(TOKENS), "", 0),
        )
        table.add(
            f"/v1 {n} concurrent: chunks per CPU-second",
            fmt(many.tokens_per_cpu_s(TOKENS), "", 0),
            fmt(many_d.tokens_per_cpu_s(TOKENS), "", 0),
        )
        for q in (50, 99):
            table.add(
                f"loop lag p{q} ({n} streams | idle)",
                fmt(pct(lags, q), "ms", 2),
                fmt(pct(idle_lag, q), "ms", 2),
                "<= 20 ms" if q == 99 else "-",
                (bool(lags) and pct(lags, 99) <= 20) if q == 99 else None,
            )
        table.add(
            f"loop lag max ({n} streams | idle)",
            fmt(max(lags, default=float("nan")), "ms", 1),
            fmt(max(idle_lag, default=float("nan")), "ms", 1),
        )
        table.add(
            f"/v1 {n} concurrent: TTFT p50 / p99",
            p50_p99(ttft_ms(many.load.results)),
            p50_p99(ttft_ms(many_d.load.results)),
        )
        paced_lags, paced = await paced_phase(client, t, lag, n, table)
        errs += paced.load.errors + many_d.load.errors

        if not probe.error:
            errs += await native_phase(client, direct, native, base, p, table)
        else:
            errs.append(f"native: {probe.error}")
        table.add("errors in other phases", fmt(len(errs)), "-", "0", not errs)
        if errs:
            table.notes.append(f"first error: {errs[0]}")
        table.raw.update(
            ttft_parley_ms=ttft_ms(seq["parley"]),
            ttft_direct_ms=ttft_ms(seq["direct"]),
            lag_concurrent_ms=lags,
            lag_idle_ms=idle_lag,
            cpu_parley_s=ours.cpu,
            lag_paced_ms=paced_lags,
            concurrent_errors=many.load.errors[:20],
        )


async def native_phase(
    client: cl.httpx.AsyncClient,
    direct: cl.Target,
    native: cl.Target,
    base: cl.Measured,
    p: Params,
    table: Table,
) -> list[str]:
    """TTFT and CPU throughput of the web app's route; returns its errors."""
    nat = await cl.alternate(client, [direct, native], p.native_rounds)
    add_ttft_rows(table, "native", ttft_ms(nat["native"]), ttft_ms(nat["direct"]), (0, 0))
    nat_load = await cl.measure_load(native, p.native_streams, p.cpu_concurrency)
    table.add(
        "native chunks per CPU-second (server)",
        fmt(nat_load.tokens_per_cpu_s(TOKENS), "", 0),
        fmt(base.tokens_per_cpu_s(TOKENS), "", 0),
        "(info)",
    )
    table.add(
        f"native wall chunks/s (concurrency {p.cpu_concurrency})",
        fmt(nat_load.load.tokens_per_s(TOKENS), "", 0),
        fmt(base.load.tokens_per_s(TOKENS), "", 0),
    )
    table.raw.update(ttft_native_ms=ttft_ms(nat["native"]), cpu_native_s=nat_load.cpu)
    return errors_of(nat["native"]) + nat_load.load.errors


async def paced_phase(
    client: cl.httpx.AsyncClient, t: dict[str, cl.Target], lag: Lag, n: int, table: Table
) -> tuple[list[float], cl.Measured]:
    """``n`` streams at once again, but each paced at a model-like PACED_RATE
    tokens/s (scripted through the upstream's ``POST /_script``)."""
    root = t["direct"].url.rsplit("/v1/", 1)[0]
    script = [{"tokens": PACED_TOKENS, "rate": PACED_RATE}] * n
    (await client.post(f"{root}/_script", json=script)).raise_for_status()
    start = time.monotonic()
    paced = await cl.measure_load(t["parley"], n, n)
    end = time.monotonic()
    lags = lag.window(start, end)
    label = f"{n} paced streams ({PACED_RATE} tok/s)"
    table.add(f"{label}: errors", fmt(len(paced.load.errors)), "-", "0", not paced.load.errors)
    table.add(
        f"{label}: loop lag p99",
        fmt(pct(lags, 99), "ms", 2),
        "-",
        "<= 20 ms",
        bool(lags) and pct(lags, 99) <= 20,
    )
    ttfts = ttft_ms(paced.load.results)
    # Once every stream has its first token, only relaying is left: the lag then,
    # apart from admitting the burst of n requests at once.
    settled = start + max(ttfts, default=0.0) / 1000
    steady = lag.window(settled, end)
    table.add(
        f"{label}: loop lag p99 once all started",
        fmt(pct(steady, 99), "ms", 2) if steady else "-",
        "-",
        "(info)",
    )
    table.add(f"{label}: TTFT p50 / p99", p50_p99(ttfts))
    table.add(f"{label}: Parley CPU", fmt(100 * paced.cpu / paced.load.wall, "%", 0))
    return lags, paced


def run(quick: bool = False) -> Table:
    p = QUICK if quick else FULL
    table = Table("relay", "relay: streaming through Parley vs direct to the upstream", "direct")
    work = temp_dir("relay")
    procs: list[Proc] = []
    try:
        upstream = start_upstream(work, TOKENS)
        procs.append(upstream)
        lag_file = work / "lag.json"
        env = {
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": "sk-bench",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
            # a new chat's model-made title is a second model call: not relay work
            "PARLEY_TITLE_MODEL": "none",
        }
        parley = start_parley(work, env=env, lag_file=lag_file)
        procs.append(parley)
        key = create_api_key(parley.url)
        asyncio.run(
            measure(
                targets(upstream, parley, key),
                Lag(parley, lag_file),
                p,
                table,
                lambda: own_core(parley.pid, [upstream.pid, os.getpid()]),
            )
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
    table.notes.append(
        "TTFT (own core): Parley pinned to one CPU, the upstream and this client to the "
        "others, as a server with its own cores (the target rows); (cores shared): all "
        "three processes unpinned, so each waits for the others' CPU time (info)"
    )
    table.notes.append(
        f"{TOKENS} tokens per answer; chunks = upstream chunks relayed (Parley joins those "
        "of one network read into one SSE event); TTFT from request sent to the first "
        "non-empty text delta; baseline CPU column = the upstream process"
    )
    table.notes.append(
        "native = POST /api/conversations/{id}/messages (persists user + assistant messages; "
        "a new conversation per stream); its overhead has no target"
    )
    return table
