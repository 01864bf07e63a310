"""responses: streaming through ``/v1/responses`` (``store: true``) against the
upstream called directly, with LiteLLM's ``/v1/responses`` beside it.

Same processes as ``relay`` (the scripted upstream, 2,000 tokens per answer; one
Parley worker; the client here) plus LiteLLM's proxy when it installs
(``bench/_peer_env``). A Parley response is a stored turn: the question and the
answer are written, memory and files are consulted (none here), the record is
kept. LiteLLM bridges Responses to Chat Completions and stores nothing.

Phases: TTFT (sequential, rotating direct -> Parley -> LiteLLM; overhead is the
percentile minus the direct one), CPU throughput (chunks relayed per CPU-second
of the server, concurrency 8), and N concurrent Responses streams on the one
worker (errors, event-loop lag measured inside Parley).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from bench import _peer_env
from bench import client as cl
from bench.common import (
    Lag,
    Proc,
    Table,
    create_api_key,
    fmt,
    pct,
    start_parley,
    start_upstream,
    temp_dir,
)
from bench.peer import MASTER_KEY, start_litellm
from bench.relay import MODEL, PARLEY_MODEL, TOKENS, ttft_ms

# A text delta of a Responses stream (Parley's and LiteLLM's frames alike).
RESPONSES_TOKEN = re.compile(rb'"type":\s?"response\.output_text\.delta"')


@dataclass(frozen=True)
class Params:
    rounds: int
    cpu_streams: int
    concurrency: int
    concurrent: int


FULL = Params(100, 32, 8, 500)
QUICK = Params(25, 12, 8, 100)


def _body(model: str) -> dict[str, object]:
    return {"model": model, "input": "Write a long answer, please.", "stream": True, "store": True}


def _row(table: Table, label: str, ours: float, base: float, target: str, ok: bool | None) -> None:
    table.add(label, fmt(ours, "ms", 2), fmt(base, "ms", 2), target, ok)


async def measure(
    t: dict[str, cl.Target], lag: Lag, p: Params, table: Table, lite: cl.Target | None
) -> None:
    direct, parley = t["direct"], t["parley"]
    order = [direct, parley] + ([lite] if lite else [])
    async with cl.make_client() as client:
        await cl.alternate(client, order, 5)
        seq = await cl.alternate(client, order, p.rounds)
    base = ttft_ms(seq["direct"])
    for q, target in ((50, 5.0), (99, 25.0)):
        b = pct(base, q)
        over = pct(ttft_ms(seq["parley"]), q) - b
        _row(table, f"TTFT p{q}", pct(ttft_ms(seq["parley"]), q), b, "-", None)
        table.add(
            f"TTFT overhead p{q}",
            fmt(over, "ms", 2),
            "-",
            f"<= {target:g} ms",
            over <= target,
        )
        if lite is not None:
            table.add(
                f"LiteLLM /v1/responses TTFT overhead p{q}",
                fmt(pct(ttft_ms(seq["litellm"]), q) - b, "ms", 2),
                "-",
                "(beside)",
            )
    ours = await cl.measure_load(parley, p.cpu_streams, p.concurrency)
    direct_load = await cl.measure_load(direct, p.cpu_streams, p.concurrency)
    per_cpu = ours.tokens_per_cpu_s(TOKENS)
    table.add(
        "chunks per CPU-second (server)",
        fmt(per_cpu, "", 0),
        fmt(direct_load.tokens_per_cpu_s(TOKENS), "", 0),
        ">= 10,000",
        per_cpu >= 10_000 and not ours.load.errors,
    )
    if lite is not None:
        theirs = await cl.measure_load(lite, p.cpu_streams, p.concurrency)
        table.add(
            "LiteLLM chunks per CPU-second",
            fmt(theirs.tokens_per_cpu_s(TOKENS), "", 0),
            "-",
            "(beside)",
        )
    n = p.concurrent
    start = time.monotonic()
    many = await cl.measure_load(parley, n, n)
    lags = lag.window(start, time.monotonic())
    table.add(
        f"{n} concurrent streams: errors",
        fmt(len(many.load.errors)),
        "-",
        "0",
        not many.load.errors,
    )
    table.add(
        f"{n} concurrent: loop lag p99",
        fmt(pct(lags, 99), "ms", 2),
        "-",
        "<= 20 ms",
        bool(lags) and pct(lags, 99) <= 20,
    )
    firsts = ttft_ms(many.load.results)
    table.add(
        f"{n} concurrent: TTFT p50 / p99", f"{pct(firsts, 50):,.0f} / {pct(firsts, 99):,.0f} ms"
    )
    mine = [r.error for r in seq["parley"] if r.error] + ours.load.errors + many.load.errors
    if mine:
        table.notes.append(f"first Parley errors ({len(mine)}): {mine[:2]}")
    if lite is not None and (theirs_errs := [r.error for r in seq["litellm"] if r.error]):
        table.notes.append(f"LiteLLM errors ({len(theirs_errs)}): {theirs_errs[:1]}")
    table.raw.update(
        {f"ttft_{k}_ms": ttft_ms(v) for k, v in seq.items()}
        | {"lag_concurrent_ms": lags, "cpu_parley_s": ours.cpu}
    )


def run(quick: bool = False) -> Table:
    p = QUICK if quick else FULL
    table = Table(
        "responses", "responses: /v1/responses (store: true) vs the upstream directly", "direct"
    )
    work = temp_dir("responses")
    procs: list[Proc] = []
    try:
        upstream = start_upstream(work, TOKENS)
        procs.append(upstream)
        lite_target: cl.Target | None = None
        try:
            exe = _peer_env.ensure_litellm()
            lite_proc = start_litellm(exe, work, upstream.url, provider="custom_openai")
            procs.append(lite_proc)
            lite_target = cl.Target(
                "litellm",
                f"{lite_proc.url}/v1/responses",
                _body(MODEL),
                {"Authorization": f"Bearer {MASTER_KEY}"},
                cpu=lite_proc.cpu,
                token=RESPONSES_TOKEN,
            )
            table.notes.append(f"LiteLLM {_peer_env.LITELLM_VERSION} beside Parley")
        except (_peer_env.PeerUnavailable, RuntimeError) as exc:
            table.notes.append(f"LiteLLM not measured: {str(exc)[-300:]}")
        lag_file = work / "lag.json"
        env = {
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": "sk-bench",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
            "PARLEY_TITLE_MODEL": "none",
            "PARLEY_MEMORY_AUTO": "false",  # extraction is a second model call per turn
        }
        parley = start_parley(work, env=env, lag_file=lag_file)
        procs.append(parley)
        key = create_api_key(parley.url)
        targets = {
            "direct": cl.Target(
                "direct",
                f"{upstream.url}/chat/completions",
                cl.chat_body(MODEL),
                {"Authorization": "Bearer sk-bench"},
                cpu=upstream.cpu,
            ),
            "parley": cl.Target(
                "parley",
                f"{parley.url}/v1/responses",
                _body(PARLEY_MODEL),
                {"Authorization": f"Bearer {key}"},
                cpu=parley.cpu,
                token=RESPONSES_TOKEN,
            ),
        }
        asyncio.run(measure(targets, Lag(parley, lag_file), p, table, lite_target))
    finally:
        for proc in reversed(procs):
            proc.stop()
    table.notes.append(
        f"{TOKENS} tokens per answer; chunks = upstream chunks relayed; TTFT from request "
        "sent to the first text delta; every Parley response is stored (a chat turn)"
    )
    return table
