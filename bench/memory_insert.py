"""memory_insert: what saving one memory costs at 1,000 and 10,000 memories.

``MemoryService.remember`` (embedding the fact, finding what it duplicates or
changes through the user's write index, the insert, the commit) against the way
it worked before, measured in the same run and interleaved (insert by insert, on
two databases seeded alike) so a busy machine slows both the same: load every
memory of the user, compare the new fact with each (words and cosine), insert.

In-process on SQLite (temp dir). The embedder is all-MiniLM-L6-v2 when installed
(else the hashing one); its time is in both columns and shown alone.

    .venv/bin/python -m bench.memory_insert [--sizes 1000,10000] [--inserts 100] [--hashing]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Table, pct
from bench.memory_eval import distractors
from parley.config import load_settings
from parley.embeddings import Embedder
from parley.memory.feature import default_embedder
from parley.memory.service import MemoryService
from parley.memory.store import MemoryStore
from parley.memory.testing import HashingEmbedder
from parley.memory.text import content_words, jaccard
from parley.storage.db import Database
from parley.storage.tables import User, new_id

TARGET_MS = 20.0


async def _seeded(
    path: Path, facts: list[str], vectors: Any, model: str | None
) -> tuple[Database, str]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    user_id = new_id()
    async with db.session() as session:
        session.add(User(id=user_id, email=f"{user_id}@example.com", name="B", password_hash="x"))
        await session.commit()
    async with db.session() as session:
        store = MemoryStore(session, user_id)
        for n, fact in enumerate(facts):
            extra: dict[str, Any] = {}
            if vectors is not None:
                extra = {"embedding": vectors[n].tobytes(), "embedding_model": model}
            await store.create(fact + ".", **extra)
        await session.commit()
    return db, user_id


async def scan_insert(service: MemoryService, user_id: str, text: str) -> None:
    """The write path before the index: every row loaded and compared."""
    found = await service.embed([text])
    vector = None if found is None else found[0]
    async with service.db.session() as session:
        store = MemoryStore(session, user_id)
        rows = (await store.list(limit=10_000))[0]
        words = content_words(text)
        best = 0.0
        for row in rows:
            cosine = 0.0
            if vector is not None and row.embedding and row.embedding_model == service.model_name:
                stored = np.frombuffer(row.embedding, dtype=np.float32)
                if stored.shape[0] == vector.shape[0]:
                    cosine = float(stored @ vector)
            best = max(best, jaccard(words, content_words(row.text)), cosine)
        extra: dict[str, Any] = {}
        if vector is not None:
            extra = {"embedding": vector.tobytes(), "embedding_model": service.model_name}
        await store.create(text, **extra)
        await session.commit()


async def measure(size: int, inserts: int, embedder: Embedder) -> dict[str, list[float]]:
    facts = distractors(size + inserts + 1)
    seed, new = facts[:size], facts[size:]
    vectors = None
    for start in range(0, size, 256):
        batch = await embedder.embed([f + "." for f in seed[start : start + 256]])
        vectors = batch if vectors is None else np.concatenate([vectors, batch])
    times: dict[str, list[float]] = {"index": [], "scan": [], "embed": []}
    with tempfile.TemporaryDirectory(prefix="parley-insert-") as tmp:
        db_new, user_new = await _seeded(Path(tmp) / "new.db", seed, vectors, embedder.name)
        db_old, user_old = await _seeded(Path(tmp) / "old.db", seed, vectors, embedder.name)
        indexed = MemoryService(db_new, embedder)
        scanned = MemoryService(db_old, embedder)
        await indexed.remember(user_new, new[-1] + ".", source="auto")  # builds the index
        await scan_insert(scanned, user_old, new[-1] + ".")
        for fact in new[:inserts]:
            start = time.perf_counter()
            await indexed.remember(user_new, fact + ".", source="auto")
            times["index"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await scan_insert(scanned, user_old, fact + ".")
            times["scan"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await embedder.embed([fact])
            times["embed"].append((time.perf_counter() - start) * 1000)
        await db_new.dispose()
        await db_old.dispose()
    return times


async def main(sizes: list[int], inserts: int, hashing: bool = False) -> None:
    embedder: Embedder = (
        HashingEmbedder()
        if hashing
        else default_embedder(load_settings(local_model_enabled=False)) or HashingEmbedder()
    )
    table = Table("memory_insert", f"Saving one memory ({embedder.name}, SQLite)", "before: scan")
    for size in sizes:
        times = await measure(size, inserts, embedder)
        table.add(
            f"insert at {size:,} memories",
            f"p50 {pct(times['index'], 50):.1f} / p95 {pct(times['index'], 95):.1f} ms",
            f"p50 {pct(times['scan'], 50):.1f} / p95 {pct(times['scan'], 95):.1f} ms",
            f"p95 < {TARGET_MS:.0f} ms" if size >= 10_000 else "-",
            pct(times["index"], 95) < TARGET_MS if size >= 10_000 else None,
        )
        table.add(
            "  of which embedding the fact",
            f"p50 {pct(times['embed'], 50):.1f} / p95 {pct(times['embed'], 95):.1f} ms",
        )
    table.notes.append(f"{inserts} inserts per size, interleaved with the scan baseline")
    table.notes.append(
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(table.render())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--inserts", type=int, default=100)
    parser.add_argument("--hashing", action="store_true", help="the hashing embedder (fast)")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.inserts, args.hashing))
