"""litellm: Parley beside LiteLLM's proxy, same upstream, same client, same run.

LiteLLM (pinned version, its own venv under bench/.venvs, see ``_peer_env``)
runs as ``litellm --config <yaml>`` with one worker, a master key, and one model
pointing at the scripted upstream. Parley runs as in ``relay``. Sequential
streams rotate direct -> Parley -> LiteLLM so both proxies see the same machine
load; the overheads are percentiles minus the direct percentile.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from bench import _peer_env
from bench import client as cl
from bench.common import (
    Proc,
    Table,
    base_env,
    create_api_key,
    fmt,
    free_port,
    pct,
    spawn,
    start_parley,
    start_upstream,
    temp_dir,
    wait_http,
)
from bench.relay import MODEL, PARLEY_MODEL, TOKENS, ttft_ms

MASTER_KEY = "sk-litellm-bench"


@dataclass(frozen=True)
class Params:
    rounds: int
    cpu_streams: int
    concurrency: int
    concurrent: int


FULL = Params(40, 16, 8, 200)
QUICK = Params(25, 8, 8, 100)
CONCURRENT_TOKENS = 200  # shorter answers for the concurrency phase: LiteLLM is slow


def start_litellm(exe: Path, work: Path, upstream_url: str, provider: str = "openai") -> Proc:
    """LiteLLM's proxy over the scripted upstream; ``provider="custom_openai"`` makes
    its ``/v1/responses`` bridge to Chat Completions (``openai/`` would forward to
    the upstream's ``/responses``, which the scripted upstream does not serve)."""
    port = free_port()
    cfg = work / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: {provider}/{MODEL}\n"
        f"      api_base: {upstream_url}\n"
        "      api_key: sk-bench\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )
    env = base_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    env["PATH"] = f"{exe.parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn("litellm", [*cmd, "--num_workers", "1"], env, work)
    proc.url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{proc.url}/health/liveliness", timeout=120)
    return proc


def _better(ours: float, theirs: float, lower: bool) -> bool | None:
    if ours != ours or theirs != theirs:
        return None
    return ours <= theirs if lower else ours >= theirs


async def measure(t: dict[str, cl.Target], p: Params, table: Table) -> None:
    direct, parley, lite = t["direct"], t["parley"], t["litellm"]
    async with cl.make_client() as client:
        await cl.alternate(client, [direct, parley, lite], 5)
        seq = await cl.alternate(client, [direct, parley, lite], p.rounds)
    base = ttft_ms(seq["direct"])
    for q in (50, 99):
        b = pct(base, q)
        ours, theirs = pct(ttft_ms(seq["parley"]), q) - b, pct(ttft_ms(seq["litellm"]), q) - b
        table.add(
            f"TTFT overhead p{q} (direct p{q} {b:.2f} ms)",
            fmt(ours, "ms", 2),
            fmt(theirs, "ms", 2),
            "lower",
            _better(ours, theirs, True),
        )
    whole = {k: pct([r.total * 1000 for r in v if r.error is None], 50) for k, v in seq.items()}
    table.add(
        f"one {TOKENS}-token stream p50 (direct {whole['direct']:.1f} ms)",
        fmt(whole["parley"], "ms"),
        fmt(whole["litellm"], "ms"),
        "lower",
        _better(whole["parley"], whole["litellm"], True),
    )
    ours_l = await cl.measure_load(parley, p.cpu_streams, p.concurrency)
    lite_l = await cl.measure_load(lite, p.cpu_streams, p.concurrency)
    table.add(
        "chunks per CPU-second (server)",
        fmt(ours_l.tokens_per_cpu_s(TOKENS), "", 0),
        fmt(lite_l.tokens_per_cpu_s(TOKENS), "", 0),
        "higher",
        _better(ours_l.tokens_per_cpu_s(TOKENS), lite_l.tokens_per_cpu_s(TOKENS), False),
    )
    table.add(
        f"wall chunks/s (concurrency {p.concurrency})",
        fmt(ours_l.load.tokens_per_s(TOKENS), "", 0),
        fmt(lite_l.load.tokens_per_s(TOKENS), "", 0),
        "higher",
        _better(ours_l.load.tokens_per_s(TOKENS), lite_l.load.tokens_per_s(TOKENS), False),
    )
    n = p.concurrent
    root = direct.url.rsplit("/v1/", 1)[0]
    async with cl.make_client() as client:
        script = [{"tokens": CONCURRENT_TOKENS}] * n
        (await client.post(f"{root}/_script", json=script)).raise_for_status()
        ours_c = await cl.measure_load(parley, n, n)
        (await client.post(f"{root}/_script", json=script)).raise_for_status()
        lite_c = await cl.measure_load(lite, n, n)
    table.add(
        f"{n} concurrent {CONCURRENT_TOKENS}-token streams: errors",
        fmt(len(ours_c.load.errors)),
        fmt(len(lite_c.load.errors)),
        "0",
        not ours_c.load.errors,
    )
    table.add(
        f"{n} concurrent: wall chunks/s",
        fmt(ours_c.load.tokens_per_s(CONCURRENT_TOKENS), "", 0),
        fmt(lite_c.load.tokens_per_s(CONCURRENT_TOKENS), "", 0),
        "higher",
        _better(
            ours_c.load.tokens_per_s(CONCURRENT_TOKENS),
            lite_c.load.tokens_per_s(CONCURRENT_TOKENS),
            False,
        ),
    )
    tt_o, tt_l = ttft_ms(ours_c.load.results), ttft_ms(lite_c.load.results)
    table.add(
        f"{n} concurrent: TTFT p99",
        fmt(pct(tt_o, 99), "ms", 0),
        fmt(pct(tt_l, 99), "ms", 0),
        "lower",
        _better(pct(tt_o, 99), pct(tt_l, 99), True),
    )
    errs = [r.error for v in seq.values() for r in v if r.error] + lite_l.load.errors
    if errs or lite_c.load.errors:
        table.notes.append(f"LiteLLM/other errors: {(errs + lite_c.load.errors)[:2]}")
    table.raw.update(
        {f"ttft_{k}_ms": ttft_ms(v) for k, v in seq.items()}
        | {"cpu_parley_s": ours_l.cpu, "cpu_litellm_s": lite_l.cpu}
    )


def run(quick: bool = False) -> Table:
    p = QUICK if quick else FULL
    label = f"LiteLLM {_peer_env.LITELLM_VERSION}"
    table = Table("litellm", "litellm: Parley vs LiteLLM proxy (same upstream, same client)", label)
    try:
        exe = _peer_env.ensure_litellm()
    except _peer_env.PeerUnavailable as exc:
        table.add("LiteLLM install", "-", "unavailable", "installed", None)
        table.notes.append(str(exc))
        return table
    if note := _peer_env.install_note():
        table.notes.append(note)
    work = temp_dir("litellm")
    procs: list[Proc] = []
    try:
        upstream = start_upstream(work, TOKENS)
        procs.append(upstream)
        try:
            lite = start_litellm(exe, work, upstream.url)
        except RuntimeError as exc:
            table.add("LiteLLM start", "-", "failed", "running", None)
            table.notes.append(str(exc)[-400:])
            return table
        procs.append(lite)
        env = {
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": "sk-bench",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
            # a new chat's model-made title is a second model call: not relay work
            "PARLEY_TITLE_MODEL": "none",
        }
        parley = start_parley(work, env=env)
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
                f"{parley.url}/v1/chat/completions",
                cl.chat_body(PARLEY_MODEL),
                {"Authorization": f"Bearer {key}"},
                cpu=parley.cpu,
            ),
            "litellm": cl.Target(
                "litellm",
                f"{lite.url}/v1/chat/completions",
                cl.chat_body(MODEL),
                {"Authorization": f"Bearer {MASTER_KEY}"},
                cpu=lite.cpu,
            ),
        }
        asyncio.run(measure(targets, p, table))
    finally:
        for proc in reversed(procs):
            proc.stop()
    table.notes.append(
        f"{TOKENS} tokens per answer; LiteLLM with one worker and a master key (no database); "
        "Parley with an API key checked against SQLite; CPU = server process tree"
    )
    return table
