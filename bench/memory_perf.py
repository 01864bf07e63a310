"""memory_perf: what memory costs a turn, and proof that summaries never block one.

In-process app on SQLite (temp dir), scripted models (no network):

1. Recall at 1,000 memories: the memory ``ContextSource`` exactly as a turn
   calls it (explicit-request check, version query, ranking, rendering), over
   200 questions; keyword-only, hashing embedder, and all-MiniLM-L6-v2 (which
   adds embedding the question: shown separately too).
2. Turn overhead: server-side time to first token (``ttft_ms``, which covers
   context gathering) of turns with the memory feature and 1,000 memories vs
   turns with no feature at all, interleaved.
3. Summaries: a conversation past the summary trigger with a summary model that
   takes 1.5 s; time to first token of turns sent while the summary is being
   computed vs the same turns with summaries off.
4. Recall at size (``--size``, or alone with ``--size-only``): the memory
   ``ContextSource`` at 1,000 and 10,000 memories with all-MiniLM-L6-v2
   (question embedding included), idle and then beside one busy-loop process
   per core, for the ranking before issue 13 (``legacy``) and the current one,
   in the same run.

    .venv/bin/python -m bench.memory_perf [--size | --size-only]
"""

from __future__ import annotations

import contextlib
import os

# One BLAS thread: MiniLM's small matrices gain nothing from more, and on a busy
# machine OpenBLAS's spinning threads turn a 6 ms question embedding into ~700 ms.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.common import Table, pct
from bench.memory_eval import distractors
from bench.memory_recall import add_user, distractor_pool, memory_app
from parley.api.app import create_app
from parley.config import load_settings
from parley.embeddings import Embedder, LocalEmbedder
from parley.memory.context import MemoryContext
from parley.memory.feature import MemoryFeature, default_embedder
from parley.memory.recall import Scope
from parley.memory.store import MemoryStore
from parley.memory.testing import HashingEmbedder
from parley.providers.base import ModelInfo
from parley.providers.scripted import Reply, ScriptedModel, ScriptedProvider
from parley.storage.db import Database
from parley.turns import TurnService
from parley.turns.hooks import TurnInfo

N_MEMORIES = 1000
TARGET_MS = 20.0
SIZE_TARGETS_MS = {1000: 20.0, 10000: 40.0}
QUESTIONS = [
    "Where do I live these days?",
    "Any dinner ideas for tonight?",
    "What should I pack for my trip to Oslo?",
    "Tell me about my friend Hugo",
    "How should I prepare for my race this week?",
    "Which stamps are rare?",
    "Remind me what my cousin studies",
    "What is the weather like in Lima in June?",
]


def _settings(tmp: str, **extra: Any) -> Any:
    return load_settings(
        data_dir=Path(tmp),
        local_model_enabled=False,
        providers=[],
        default_model="scripted/chat",
        memory_model="scripted/memory",
        flush_interval_s=1.0,
        **extra,
    )


async def _client(app: Any) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    await client.post(
        "/api/auth/signup", json={"email": "p@example.com", "password": "correct horse"}
    )
    client.headers["X-CSRF-Token"] = client.cookies.get("parley_csrf") or ""
    return client


def _facts(n: int) -> list[str]:
    """``n`` distinct facts: ``distractors`` and, past what its templates can make,
    the recall evaluation's memories with a year or a place added."""
    facts = distractors(min(n, 1500))
    if len(facts) < n:
        pool = [t.rstrip(".") for t in distractor_pool()]
        places = [
            "Oslo",
            "Lima",
            "Hanoi",
            "Quito",
            "Porto",
            "Tunis",
            "Riga",
            "Cusco",
            "Bergen",
            "Dakar",
            "Perth",
            "Sapporo",
        ]
        i = 0
        while len(facts) < n:
            base = pool[i % len(pool)]
            facts.append(f"{base} in {places[(i // len(pool)) % 12]} since {1950 + i % 73}")
            i += 1
    return facts[:n]


_VECTORS: dict[tuple[str | None, str], Any] = {}


async def _vectors(feature: MemoryFeature, facts: list[str]) -> Any:
    """The facts' vectors; past 1,500 facts, each generated one ("<pool fact> in
    <place> since <year>") reuses its pool fact's vector (what recall costs
    depends on how many vectors there are, not on what they say; embedding
    10,000 texts on a busy 2-core machine took most of a 20-minute run)."""
    model = feature.service.model_name
    missing = [
        f
        for f in dict.fromkeys(f.split(" in ")[0] if i >= 1500 else f for i, f in enumerate(facts))
        if (model, f) not in _VECTORS
    ]
    for start in range(0, len(missing), 256):
        batch = missing[start : start + 256]
        found = await feature.service.embed(batch)
        if found is None:
            return None
        _VECTORS.update({(model, f): found[n] for n, f in enumerate(batch)})
    return [_VECTORS[(model, f.split(" in ")[0] if i >= 1500 else f)] for i, f in enumerate(facts)]


async def _seed(app: Any, user_id: str, feature: MemoryFeature, n: int) -> None:
    facts = _facts(n)
    vectors = await _vectors(feature, facts)
    async with app.state.services.require(Database).session() as session:
        store = MemoryStore(session, user_id)
        for i, fact in enumerate(facts):
            extra: dict[str, Any] = {}
            if vectors is not None:
                extra = {
                    "embedding": vectors[i].tobytes(),
                    "embedding_model": feature.service.model_name,
                }
            await store.create(fact + ".", **extra)
        await session.commit()


async def _turn(client: httpx.AsyncClient, conv: str, text: str) -> float:
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": text})
    done = [line for line in r.text.splitlines() if line.startswith("data: ")][-2:]
    import json

    for line in done:
        data = json.loads(line[6:])
        message = data.get("message")
        if message and message.get("ttft_ms") is not None:
            return float(message["ttft_ms"])
    raise RuntimeError(f"no ttft in {r.text[-300:]}")


async def recall_latency(
    embedder: Embedder | None,
) -> tuple[list[float], list[float], list[float]]:
    """ms per ContextSource.gather at N_MEMORIES, per question embedding, and per
    recall given the question's vector (the ranking work alone)."""
    with tempfile.TemporaryDirectory(prefix="parley-memperf-") as tmp:
        app = create_app(
            _settings(tmp),
            extra_providers=[ScriptedProvider("scripted", {"chat": ScriptedModel(default="ok")})],
            features=[lambda s: MemoryFeature(s, embedder=embedder)],
        )
        async with app.router.lifespan_context(app):
            feature: MemoryFeature = app.state.features["memory"]
            client = await _client(app)
            user = (await client.get("/api/auth/me")).json()["user"]
            await _seed(app, user["id"], feature, N_MEMORIES)
            source = MemoryContext(feature.service, embed_timeout_s=None)
            info = TurnInfo(user["id"], "c", "u", "a", "", ModelInfo("scripted", "chat"))
            for q in QUESTIONS:  # warm up: snapshot load, model load
                await source.gather(_with(info, q), 600)
            times: list[float] = []
            embeds: list[float] = []
            ranked: list[float] = []
            scope = Scope()
            for i in range(200):
                q = QUESTIONS[i % len(QUESTIONS)] + f" ({i})"
                started = time.perf_counter()
                blocks = await source.gather(_with(info, q), 600)
                times.append((time.perf_counter() - started) * 1000)
                assert blocks, "recall returned nothing"
                if embedder is not None:
                    started = time.perf_counter()
                    vector = (await embedder.embed([q]))[0]
                    embeds.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    await feature.service.recall(user["id"], q, scope, 8, query_vector=vector)
                    ranked.append((time.perf_counter() - started) * 1000)
            await client.aclose()
    return times, embeds, ranked


def _with(info: TurnInfo, query: str) -> TurnInfo:
    return TurnInfo(info.user_id, info.conversation_id, "u", "a", query, info.model)


async def turn_overhead(
    embedder: Embedder | None, turns: int = 40
) -> tuple[list[float], list[float]]:
    """(ttft ms with memory + 1,000 memories, ttft ms without any feature), interleaved."""
    results: list[list[float]] = [[], []]
    with tempfile.TemporaryDirectory(prefix="parley-memturn-") as tmp:
        apps = []
        for n, features in enumerate(([lambda s: MemoryFeature(s, embedder=embedder)], [])):
            models = {
                "chat": ScriptedModel(default="A short answer."),
                "memory": ScriptedModel(default={"memories": []}),
            }
            app = create_app(
                _settings(f"{tmp}/{n}", memory_auto=False),
                extra_providers=[ScriptedProvider("scripted", models)],
                features=features,
            )
            apps.append(app)
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            clients = [await _client(app) for app in apps]
            user = (await clients[0].get("/api/auth/me")).json()["user"]
            await _seed(apps[0], user["id"], apps[0].state.features["memory"], N_MEMORIES)
            convs = [(await c.post("/api/conversations", json={})).json()["id"] for c in clients]
            for i in range(turns + 4):
                for n in (0, 1):
                    ttft = await _turn(clients[n], convs[n], QUESTIONS[i % len(QUESTIONS)])
                    if i >= 4:  # warm-up turns
                        results[n].append(ttft)
            for c in clients:
                await c.aclose()
    return results[0], results[1]


async def summary_blocking(turns: int = 6) -> tuple[list[float], list[float], float]:
    """ttft of turns sent while a 1.5 s summary runs vs with summaries off; summary time."""
    info = ModelInfo("scripted", "chat", context_window=1000, max_output_tokens=200)
    out: list[list[float]] = [[], []]
    summary_s = 0.0
    long_text = "otters float on their backs and hold paws while sleeping " * 10
    for n, summarize in enumerate((True, False)):
        with tempfile.TemporaryDirectory(prefix="parley-memsum-") as tmp:
            memory = ScriptedModel(default=Reply(text="A summary of the otter talk.", delay_s=0.3))
            chat = ScriptedModel(default="Noted.", info=info)
            app = create_app(
                _settings(tmp, summarize_history=summarize, memory_auto=False),
                extra_providers=[ScriptedProvider("scripted", {"chat": chat, "memory": memory})],
                features=[lambda s: MemoryFeature(s, embedder=None)],
            )
            async with app.router.lifespan_context(app):
                client = await _client(app)
                conv = (await client.post("/api/conversations", json={})).json()["id"]
                feature: MemoryFeature = app.state.features["memory"]
                for i in range(turns):
                    out[n].append(await _turn(client, conv, f"turn {i}: {long_text}"))
                if summarize:
                    while app.state.services.require(TurnService)._tasks:
                        await asyncio.wait(
                            set(app.state.services.require(TurnService)._tasks), timeout=30
                        )
                    assert feature.summarizer is not None
                    summary_s = feature.summarizer.last_run_s
                    view = (await client.get(f"/api/conversations/{conv}")).json()
                    assert view["summary"], "the summary was never stored"
                await client.aclose()
    return out[0], out[1], summary_s


def _row(table: Table, label: str, values: Sequence[float], target: float | None = None) -> None:
    p95 = pct(values, 95)
    table.add(
        label,
        f"p50 {pct(values, 50):.1f} / p95 {p95:.1f} ms",
        target=f"p95 <= {target:.0f} ms" if target is not None else "-",
        ok=None if target is None else p95 <= target,
    )


class BusyLoops:
    """One pure-Python busy loop per core (the "loaded machine"), ended by pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyLoops:
        for _ in range(os.cpu_count() or 1):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(5)


SPEED_CONFIGS = ("before", "after")


async def recall_at_size(questions: int = 150) -> dict[str, list[float]]:
    """ms per ``ContextSource.gather`` for '<config> <size> <idle|loaded>'.

    ``before``: the question embedded by the numpy forward pass (what "auto" ran
    for questions until an ingestion had built ONNX Runtime's session), after the
    snapshot's version check; ``after``: the one-thread ONNX Runtime question
    session (``MiniLM.warm``), overlapped with the version check. Same ranking,
    same memories, same vectors, interleaved per size and load."""
    settings = load_settings(local_model_enabled=False)
    after = LocalEmbedder(runtime="auto")
    before = LocalEmbedder(runtime="numpy")
    if not after.available:
        raise SystemExit("all-MiniLM-L6-v2 is not installed (make install)")
    after.model.warm(wait=True)
    assert after.model.query_backend == "onnxruntime-1", after.model.query_backend
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="parley-memsize-") as tmp:
        settings = _settings(tmp)
        app = memory_app(settings, after)
        async with app.router.lifespan_context(app):
            feature: MemoryFeature = app.state.features["memory"]
            service = feature.service
            db = app.state.services.require(Database)
            users: dict[int, str] = {}
            for size in SIZE_TARGETS_MS:
                users[size] = await add_user(db, f"size{size}")
                await _seed(app, users[size], feature, size)
            source = MemoryContext(
                service,
                embed_timeout_s=None,
                min_similarity=settings.memory_recall_floor,
            )
            await service.topics()
            for load in ("idle", "loaded"):
                with BusyLoops() if load == "loaded" else contextlib.nullcontext():
                    for size, user_id in users.items():
                        info = TurnInfo(user_id, "c", "u", "a", "", ModelInfo("scripted", "chat"))
                        for q in QUESTIONS:  # warm-up: snapshot, both embedders
                            for label in SPEED_CONFIGS:
                                _speed_config(service, label, before, after)
                                await source.gather(_with(info, q), 600)
                        for i in range(questions):
                            q = QUESTIONS[i % len(QUESTIONS)] + f" ({i})"
                            for label in SPEED_CONFIGS:
                                _speed_config(service, label, before, after)
                                started = time.perf_counter()
                                await source.gather(_with(info, q), 600)
                                elapsed = (time.perf_counter() - started) * 1000
                                out.setdefault(f"{label} {size} {load}", []).append(elapsed)
    return out


def _speed_config(service: Any, label: str, before: Embedder, after: Embedder) -> None:
    service.embedder = before if label == "before" else after
    service.overlap_question = label == "after"


async def size_table() -> Table:
    table = Table(
        "memory_perf_size",
        "Recall at size (ContextSource.gather, all-MiniLM-L6-v2, question embedding included)",
        baseline_label="before (numpy question, then version check)",
    )
    times = await recall_at_size()
    for size, target in SIZE_TARGETS_MS.items():
        for load in ("idle", "loaded"):
            new, old = times[f"after {size} {load}"], times[f"before {size} {load}"]
            table.add(
                f"{size:,} memories, {load}",
                f"p50 {pct(new, 50):.1f} / p95 {pct(new, 95):.1f} ms",
                f"p50 {pct(old, 50):.1f} / p95 {pct(old, 95):.1f} ms",
                f"p95 <= {target:.0f} ms" if load == "loaded" else "-",
                ok=pct(new, 95) <= target if load == "loaded" else None,
            )
    table.notes.append(
        "after = one-thread ONNX Runtime question session, embedding overlapped with the "
        "snapshot's version check; before and after interleaved question by question"
    )
    table.notes.append(
        f"loaded = {os.cpu_count()} busy-loop processes (one per core) beside the benchmark; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other sessions share the machine)"
    )
    return table


async def main() -> None:
    parser = argparse.ArgumentParser(description="memory cost per turn")
    parser.add_argument("--size", action="store_true", help="also recall at 1,000 / 10,000")
    parser.add_argument("--size-only", action="store_true", help="only recall at size")
    args = parser.parse_args()
    if args.size or args.size_only:
        print((await size_table()).render())
        if args.size_only:
            return
    table = Table("memory_perf", f"Memory cost per turn ({N_MEMORIES} memories/user, SQLite)")
    minilm = default_embedder(load_settings(local_model_enabled=False))
    configs: list[tuple[str, Embedder | None]] = [
        ("keyword + recency", None),
        ("hashing embedder", HashingEmbedder()),
    ]
    if minilm is not None:
        configs.append((minilm.name, minilm))
    for label, embedder in configs:
        times, embeds, ranked = await recall_latency(embedder)
        is_model = embedder is minilm and minilm is not None
        _row(table, f"recall, {label}", times, TARGET_MS)
        if is_model:
            _row(table, "  embedding the question alone", embeds)
            _row(table, "  recall given the question's vector", ranked, TARGET_MS)
    turn_embedder: Embedder = minilm if minilm is not None else HashingEmbedder()
    with_memory, without = await turn_overhead(turn_embedder)
    _row(table, "ttft, no features", without)
    _row(table, f"ttft, memory + 1,000 memories ({turn_embedder.name})", with_memory)
    added = pct(with_memory, 95) - pct(without, 95)
    table.add(
        "added ttft (p95 difference)",
        f"{added:.1f} ms",
        target=f"<= {TARGET_MS:.0f} ms",
        ok=added <= TARGET_MS,
    )
    during, baseline, summary_s = await summary_blocking()
    _row(table, "ttft, summaries off", baseline)
    _row(table, "ttft, while summaries are computed", during)
    table.add("summary computation (background)", f"{summary_s * 1000:.0f} ms")
    delta = pct(during, 95) - pct(baseline, 95)
    table.add(
        "ttft change while summarizing (p95)",
        f"{delta:+.1f} ms",
        target="<= 20 ms",
        ok=delta <= TARGET_MS,
    )
    import os

    table.notes.append(
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    table.notes.append(
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} (with several BLAS "
        "threads on a busy 2-CPU machine one question embedding took ~700 ms instead of ~7)"
    )
    print(table.render())


if __name__ == "__main__":
    asyncio.run(main())
