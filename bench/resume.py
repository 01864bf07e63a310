"""resume: reattaching to an answer mid-stream, and what keeping its events costs.

Processes: the scripted upstream and two Parley servers (``bench/_server.py``, one
worker each, SQLite in a temp dir, automatic memory off): one as shipped (every
turn's events kept, ``parley.turns.events.MemoryTurnEvents``), one with
``PARLEY_STREAM_REPLAY_EVENTS=0`` (nothing kept: the turn's one reader takes each
event as it comes, ``LiveTurnEvents``, the relay as it was before the buffer).

Phases:
1. Reconnect: answers paced like a model (50 tokens/s) stream to a reader that
   stays on; every ~250 ms a second reader reattaches with ``Last-Event-ID`` ten
   events behind the first one and the time until it has every event the first one
   had when it asked is measured; the same from the start (a page reload: no
   ``Last-Event-ID``, ``start`` rebuilt from the database, every event so far).
   Baseline: ``GET /api/conversations/{id}`` in the same loop (what a reloaded page
   read before: the stored, up to a second old, message).
2. Per-token cost: the native route (``POST /api/conversations/{id}/messages``,
   2,000 tokens as fast as the upstream sends them) on both servers, alternating;
   the server's CPU seconds (``/proc``) per token relayed, with the buffer vs without.
3. In-process: one publish and one read per token through ``TurnLog`` vs the
   ``Mailbox`` and relay generator used before (and ``TurnLog`` at 10x the tokens:
   O(1) per token).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import client as cl
from bench.common import (
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
from bench.reattach import (
    BEHIND,
    PACED_RATE,
    PACED_TOKENS,
    PARLEY_MODEL,
    LiveAnswer,
    follow_answer,
    pace_upstream,
    server_env,
    timed_reattach,
)
from parley.messages import TextDelta

TOKENS = 2000


@dataclass(frozen=True)
class Params:
    paced_turns: int  # answers streaming at once during the reconnect phase
    cost_rounds: int
    cost_streams: int
    micro_tokens: int


FULL = Params(8, 10, 4, 200_000)
QUICK = Params(4, 4, 4, 50_000)


# ------------------------------------------------------------------ phase 1


@dataclass
class Reconnects:
    missed_ms: list[float] = field(default_factory=list)
    reload_ms: list[float] = field(default_factory=list)
    stored_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _one_turn(parley: Proc, headers: dict[str, str], out: Reconnects) -> None:
    async with httpx.AsyncClient(
        base_url=parley.url, headers=headers, timeout=60, trust_env=False
    ) as http:

        async def tick(live: LiveAnswer) -> None:
            url = live.events_url(parley.url)
            for header, sink in (
                ({"Last-Event-ID": str(live.latest - BEHIND)}, out.missed_ms),
                ({}, out.reload_ms),
            ):
                target = live.latest
                ms = await timed_reattach(http, url, header, target)
                if ms is not None:
                    sink.append(ms)
                elif not live.finished.is_set():
                    out.errors.append(f"reattach ended before event {target}")
            start = time.perf_counter()
            (await http.get(f"/api/conversations/{live.conversation}")).raise_for_status()
            out.stored_ms.append((time.perf_counter() - start) * 1000)

        await follow_answer(http, parley.url, tick)


async def reconnect_phase(
    parley: Proc, upstream: Proc, key: str, p: Params, table: Table
) -> Reconnects:
    out = Reconnects()
    await pace_upstream(upstream, p.paced_turns)
    headers = {"Authorization": f"Bearer {key}"}
    results = await asyncio.gather(
        *(_one_turn(parley, headers, out) for _ in range(p.paced_turns)), return_exceptions=True
    )
    out.errors += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    n = len(out.missed_ms)
    for q, target in ((50, None), (95, 50.0)):
        value = pct(out.missed_ms, q)
        table.add(
            f"reattach, {BEHIND} events missed: until all received p{q}",
            fmt(value, "ms", 1),
            fmt(pct(out.stored_ms, q), "ms", 1),
            f"<= {target:g} ms" if target else "-",
            (n > 0 and value <= target) if target else None,
        )
    table.add(
        "reattach from the start (reload) p50 / p95",
        f"{pct(out.reload_ms, 50):.1f} / {pct(out.reload_ms, 95):.1f} ms",
        f"{pct(out.stored_ms, 50):.1f} / {pct(out.stored_ms, 95):.1f} ms",
        "(info)",
    )
    table.add(
        "reattach samples (errors)",
        f"{n} ({len(out.errors)})",
        f"{len(out.stored_ms)}",
        "0 errors",
        n > 0 and not out.errors,
    )
    return out


# ------------------------------------------------------------------ phase 2


async def cost_phase(on: cl.Target, off: cl.Target, p: Params, table: Table) -> list[str]:
    """Rounds of the same load on both servers, the order alternating; the verdict is
    the median of each round's ratio (a load spike from outside hits one round, not
    the result), the pooled CPU per token is shown beside it."""
    cpu = {"on": 0.0, "off": 0.0}
    tokens = {"on": 0, "off": 0}
    ratios: list[float] = []
    errors: list[str] = []
    for i in range(p.cost_rounds):
        order = [("on", on), ("off", off)] if i % 2 == 0 else [("off", off), ("on", on)]
        per_round: dict[str, float] = {}
        for name, target in order:
            m = await cl.measure_load(target, p.cost_streams, min(4, p.cost_streams))
            cpu[name] += m.cpu
            ok_tokens = len(m.load.ok) * TOKENS
            tokens[name] += ok_tokens
            per_round[name] = m.cpu / ok_tokens if ok_tokens else float("nan")
            errors += m.load.errors
        ratios.append(per_round["on"] / per_round["off"])
    per = {k: cpu[k] / tokens[k] * 1e6 if tokens[k] else float("nan") for k in cpu}
    ratio = statistics.median(ratios)
    table.add(
        "native route: server CPU per token (pooled)",
        fmt(per["on"], "µs", 2),
        fmt(per["off"], "µs", 2),
        "-",
    )
    table.add(
        f"  with the buffer / without (median of {len(ratios)} rounds)",
        f"{(ratio - 1) * 100:+.1f} %",
        "-",
        "<= +10 %",
        ratio <= 1.10,
    )
    table.raw.update(cpu_s=cpu, tokens=tokens, cost_ratios=ratios)
    return errors


# ------------------------------------------------------------------ phase 3


async def _through_log(n: int) -> float:
    from parley.turns.events import MemoryTurnEvents

    events = MemoryTurnEvents(max_events=10_000, linger_s=0)
    log = events.open("m", "c")
    reader = events.subscribe("m")
    assert reader is not None

    async def consume() -> int:
        count = 0
        async for _ in reader[1]:
            count += 1
        return count

    task = asyncio.create_task(consume())
    start = time.perf_counter()
    for i in range(n):
        log.publish(TextDelta(" tok"))
        if i % 8 == 7:  # tokens come a few per network read
            await asyncio.sleep(0)
    events.close("m")
    count = await task
    assert count == n
    return (time.perf_counter() - start) / n * 1e9


async def _through_mailbox(n: int) -> float:
    from parley.engine.mailbox import Mailbox

    box: Mailbox[TextDelta | None] = Mailbox()

    async def relay() -> AsyncIterator[TextDelta]:  # TurnService._relay before the buffer
        while True:
            item = await box.get()
            if item is None:
                return
            yield item

    async def consume() -> int:
        count = 0
        async for _ in relay():
            count += 1
        return count

    task = asyncio.create_task(consume())
    start = time.perf_counter()
    for i in range(n):
        box.put_nowait(TextDelta(" tok"))
        if i % 8 == 7:
            await asyncio.sleep(0)
    box.put_nowait(None)
    count = await task
    assert count == n
    return (time.perf_counter() - start) / n * 1e9


def micro_phase(p: Params, table: Table) -> None:
    n = p.micro_tokens
    log_ns: list[float] = []
    box_ns: list[float] = []
    big_ns: list[float] = []
    for i in range(5):
        pair = [_through_log, _through_mailbox] if i % 2 == 0 else [_through_mailbox, _through_log]
        for fn in pair:
            (log_ns if fn is _through_log else box_ns).append(asyncio.run(fn(n)))
        big_ns.append(asyncio.run(_through_log(n * 10)))
    log_med, box_med = statistics.median(log_ns), statistics.median(box_ns)
    table.add(
        "in-process publish + read per token (TurnLog | Mailbox)",
        fmt(log_med, "ns", 0),
        fmt(box_med, "ns", 0),
        "(info)",
    )
    table.add(
        f"  TurnLog at {n * 10:,} tokens vs {n:,} (O(1) per token)",
        fmt(statistics.median(big_ns), "ns", 0),
        fmt(log_med, "ns", 0),
        "<= 1.5x",
        statistics.median(big_ns) <= 1.5 * log_med,
    )
    table.raw.update(micro_log_ns=log_ns, micro_mailbox_ns=box_ns, micro_log_10x_ns=big_ns)


# ------------------------------------------------------------------ run


def _native(proc: Proc, key: str) -> cl.Target:
    auth = {"Authorization": f"Bearer {key}"}

    async def new_conversation(client: httpx.AsyncClient) -> str:
        r = await client.post(
            f"{proc.url}/api/conversations", json={"model": PARLEY_MODEL}, headers=auth
        )
        r.raise_for_status()
        return f"{proc.url}/api/conversations/{r.json()['id']}/messages"

    return cl.Target(
        "native",
        "",
        {"content": "Write a long answer, please."},
        auth,
        cpu=proc.cpu,
        token=cl.NATIVE_TOKEN,
        prepare=new_conversation,
    )


def run(quick: bool = False) -> Table:
    p = QUICK if quick else FULL
    table = Table(
        "resume",
        "resume: reattaching mid-answer; the event buffer's cost",
        "baseline",
    )
    work = temp_dir("resume")
    procs: list[Proc] = []
    try:
        upstream = start_upstream(work, TOKENS)
        procs.append(upstream)
        env = server_env(upstream)
        dirs = [Path(work / "on"), Path(work / "off")]
        for d in dirs:
            d.mkdir()
        parley = start_parley(dirs[0], env=env)
        procs.append(parley)
        bare = start_parley(dirs[1], env={**env, "PARLEY_STREAM_REPLAY_EVENTS": "0"})
        procs.append(bare)
        key, bare_key = create_api_key(parley.url), create_api_key(bare.url)

        async def measure() -> None:
            # Parley on a CPU of its own, the rest on the other (as relay's TTFT rows):
            # on 2 shared cores a latency is otherwise mostly who the OS lets run.
            with own_core(parley.pid, [upstream.pid, bare.pid, os.getpid()]) as pinned:
                rec = await reconnect_phase(parley, upstream, key, p, table)
            if pinned:
                table.notes.append("reattach rows: Parley pinned to one CPU, the rest to the other")
            # Both servers on one CPU, the upstream and this client on the other: the
            # two measure against the same core and neither against our own load.
            with own_core(parley.pid, [upstream.pid, os.getpid()]) as pinned:
                if pinned:
                    os.sched_setaffinity(bare.pid, os.sched_getaffinity(parley.pid))
                errors = await cost_phase(_native(parley, key), _native(bare, bare_key), p, table)
            table.add("errors (per-token phase)", fmt(len(errors)), "-", "0", not errors)
            if rec.errors or errors:
                table.notes.append(f"first error: {(rec.errors + errors)[0]}")
            table.raw.update(
                reattach_missed_ms=rec.missed_ms,
                reattach_reload_ms=rec.reload_ms,
                stored_message_ms=rec.stored_ms,
            )

        asyncio.run(measure())
    finally:
        for proc in reversed(procs):
            proc.stop()
    micro_phase(p, table)
    table.notes.append(
        f"reattach: {p.paced_turns} answers at once, {PACED_TOKENS} tokens at {PACED_RATE}/s; "
        f"a reader {BEHIND} events behind asks with Last-Event-ID and is timed until it has "
        "every event the live reader had; baseline = GET /api/conversations/{id} (the "
        "stored message, what a reload read before)"
    )
    table.notes.append(
        f"per-token: {TOKENS}-token answers on the native route, {p.cost_rounds} alternating "
        f"rounds of {p.cost_streams} streams per server, both servers on one CPU; baseline = "
        "a server with PARLEY_STREAM_REPLAY_EVENTS=0 (no buffer); server CPU from /proc"
    )
    return table
