"""Files and knowledge speed: parsing, embedding, ingestion memory, hybrid search at 100k.

``.venv/bin/python -m bench.knowledge_perf [--quick]`` prints one table (and
writes bench/results/*-knowledge_perf.json).

- PDF parsing: a 200-page text PDF made with fpdf2, read with pypdfium2 and
  chunked through the ingestion path (``_Batches``): pages/s (target >= 50).
- Embedding: 256 passages of ~1,000 characters with the embedded MiniLM (numpy):
  passages/s (anchor: ~55 with a numpy forward pass, ~75 with torch).
- Memory: a whole 500-page PDF ingested by the real ``Ingestor`` (parse, write,
  embed) on SQLite; peak resident memory above the baseline (model already
  loaded), sampled every 20 ms. Bounded means it does not grow with the pages.
- Hybrid search at 100,000 passages of one user on SQLite (FTS5 + numpy matrix
  + RRF, ``Retriever.search``): p50/p95 over the evaluation's 108 questions, twice,
  with the query vector precomputed (target p95 <= 50 ms; word counts are exact and
  read at every query, never cached), plus the query embedding
  on its own. Dense search here is exact (no approximate index, recall 1.0). One
  BLAS thread, as ``parley serve`` runs. Passages are random text from stdlib
  docstring vocabulary with random unit vectors (same cost as real ones).
- The same search on PostgreSQL 15 with pgvector through the HNSW index of
  migration 0008 (bulk-loaded, then built once), the dense list alone through
  HNSW and through the exact scan, HNSW's recall@10 against the exact scan, and
  the numpy path on PostgreSQL, beside SQLite.

``--search-only`` skips the parsing, embedding and memory rows.
"""

from __future__ import annotations

import os

# As `parley serve` does (cli.py): one BLAS thread, so the numpy search is measured as served.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import PAGE, Table, fmt, pct, save

PG_ADMIN = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class _PeakRss:
    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.02)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _words() -> list[str]:
    from bench.knowledge_eval import _passages

    text = " ".join(t for _, _, t in _passages())
    return [w for w in re.findall(r"[A-Za-z]{3,}", text)]


def _pdf(pages: int, words: list[str], path: Path) -> None:
    from fpdf import FPDF

    rng = random.Random(7)
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    for number in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        pdf.set_xy(10, 10)
        body = " ".join(rng.choice(words) for _ in range(420))
        pdf.multi_cell(190, 4.2, f"Page {number + 1}. {body}")
    pdf.output(str(path))


async def _parse_speed(path: Path, pages: int) -> float:
    from parley.knowledge.ingest import _Batches, iter_batches
    from parley.knowledge.parsers import parse

    started = time.perf_counter()
    batches = _Batches(parse(path, "pdf", None), 1200)
    chunks = sum(len(b) for b in iter_batches(batches, 64))
    elapsed = time.perf_counter() - started
    assert chunks > pages
    return pages / elapsed


async def _embed_speed(words: list[str]) -> float:
    from parley.embeddings import LocalEmbedder

    rng = random.Random(3)
    texts = [" ".join(rng.choice(words) for _ in range(150))[:1000] for _ in range(256)]
    embedder = LocalEmbedder()
    await embedder.embed(texts[:4])  # load
    started = time.perf_counter()
    await embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


async def _ingest_memory(path: Path, tmp: Path) -> tuple[float, float, int]:
    from parley.config import load_settings
    from parley.embeddings import LocalEmbedder
    from parley.knowledge.blobs import BlobStore
    from parley.knowledge.index import VectorIndex
    from parley.knowledge.ingest import Ingestor
    from parley.knowledge.tables import KnowledgeFile
    from parley.storage.db import Database
    from parley.storage.tables import User

    settings = load_settings(data_dir=tmp / "data", providers=[])
    db = Database(settings.resolved_database_url)
    await db.migrate()
    blobs = BlobStore(tmp / "data" / "files")
    with path.open("rb") as fh:
        spooled, sha, size = blobs.spool(fh, 1 << 31)
    blobs.commit(spooled, sha)
    embedder = LocalEmbedder()
    await embedder.embed(["warm up"])
    async with db.session() as session:
        user = User(email="perf@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        row = KnowledgeFile(
            user_id=user.id,
            sha256=sha,
            filename="big.pdf",
            media_type="application/pdf",
            kind="pdf",
            size_bytes=size,
            status="queued",
        )
        session.add(row)
        await session.commit()
        file_id = row.id
    ingestor = Ingestor(db, blobs, embedder, VectorIndex(db), settings)
    baseline = _rss()
    started = time.perf_counter()
    with _PeakRss() as peak:
        await ingestor.process(file_id)
    elapsed = time.perf_counter() - started
    async with db.session() as session:
        done = await session.get(KnowledgeFile, file_id)
        assert done is not None and done.status == "ready", done and done.error
        chunks = done.chunk_count
    await db.dispose()
    return (peak.peak - baseline) / 1e6, elapsed, chunks


def chunk_row(file_id: str, user_id: str, ordinal: int, text: str, vector: Any) -> dict[str, Any]:
    """One ``knowledge_chunks`` row for a bulk insert (no page or section)."""
    from parley.knowledge.index import to_blob

    return {
        "file_id": file_id,
        "user_id": user_id,
        "ordinal": ordinal,
        "text": text,
        "page": None,
        "section": None,
        "char_start": 0,
        "char_end": len(text),
        "tokens": len(text) // 4,
        "embedding": to_blob(vector),
        "embed_model": "all-MiniLM-L6-v2",
    }


def file_row(user_id: str, i: int, passages: int = 0) -> Any:
    """A ready text file record (its passages are inserted in bulk)."""
    from parley.knowledge.tables import KnowledgeFile

    return KnowledgeFile(
        user_id=user_id,
        sha256="0" * 64,
        filename=f"f{i}.txt",
        media_type="text/plain",
        kind="text",
        size_bytes=0,
        status="ready",
        embed_model="all-MiniLM-L6-v2",
        chunk_count=passages,
        embedded_count=passages,
    )


async def _fill(db: Any, n: int, words: list[str], dim: int = 384) -> str:
    """n passages for one user over 100 files; random text and unit vectors."""
    from sqlalchemy import insert

    from parley.knowledge.tables import KnowledgeChunk
    from parley.storage.tables import User

    rng = np.random.default_rng(5)
    pick = random.Random(5)
    async with db.session() as session:
        user = User(email=f"{uuid.uuid4().hex}@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        files = []
        for i in range(100):
            row = file_row(user.id, i)
            session.add(row)
            files.append(row)
        await session.flush()
        file_ids = [f.id for f in files]
        await session.commit()
    for start in range(0, n, 5000):
        count = min(5000, n - start)
        vectors = rng.standard_normal((count, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = []
        for i in range(count):
            text = " ".join(pick.choice(words) for _ in range(140))
            file_id = file_ids[(start + i) % 100]
            rows.append(chunk_row(file_id, user.id, start + i, text, vectors[i]))
        async with db.session() as session:
            await session.execute(insert(KnowledgeChunk), rows)
            await session.commit()
    return str(user.id)


class _Precomputed:
    """The real embedder's vectors for the questions, computed once."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, vectors: dict[str, Any]) -> None:
        self.vectors = vectors

    async def embed(self, texts: list[str]) -> Any:
        return np.stack([self.vectors[t] for t in texts])


async def _search_latency(
    db: Any, user_id: str, questions: list[str], embedder: Any, backend: str | None = None
) -> tuple[float, float, float]:
    from parley.knowledge.index import VectorIndex
    from parley.knowledge.retrieval import Retriever

    index = VectorIndex(db)
    await index.setup()
    if backend == "pgvector" and index.backend == "pgvector":
        await _pg_prepare(db, index)
    if backend is not None:
        index.backend = backend
    retriever = Retriever(db, embedder, index)
    started = time.perf_counter()
    await retriever.search(user_id, questions[0], limit=10)  # cold: loads the matrix
    cold = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(2):
        for question in questions:
            started = time.perf_counter()
            hits = await retriever.search(user_id, question, limit=10)
            times.append((time.perf_counter() - started) * 1000)
            assert hits
    return pct(times, 50), pct(times, 95), cold


async def _pg_prepare(db: Any, index: Any) -> None:
    """Copy the vectors into pgvector (the HNSW index from migration 0008 is filled as
    rows arrive), refresh planner statistics, and make sure the index is usable."""
    from sqlalchemy import text

    from parley.knowledge.pgvector import ann_index_name

    # Bulk load without the index, then build it once (as after a big import): filling
    # the graph row by row is several times slower than one build.
    async with db.engine.begin() as conn:
        await conn.execute(text(f"DROP INDEX IF EXISTS {ann_index_name('all-MiniLM-L6-v2', 384)}"))
    started = time.perf_counter()
    await index.backfill_pgvector("all-MiniLM-L6-v2", batch=5000)
    copy_s = time.perf_counter() - started
    started = time.perf_counter()
    index.pg._ann_ready("all-MiniLM-L6-v2", 384)  # builds it (CONCURRENTLY)
    await index.pg.wait_for_builds()
    build_s = time.perf_counter() - started
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("VACUUM ANALYZE knowledge_vectors"))
        await auto.execute(text("ANALYZE knowledge_chunks"))
    print(f"pgvector: copied in {copy_s:.0f} s, HNSW built in {build_s:.0f} s", file=sys.stderr)
    assert index.pg._ann_ready("all-MiniLM-L6-v2", 384)


async def _pg_dense(db: Any, user_id: str, questions: list[str], embedder: Any) -> dict[str, float]:
    """Dense search alone on pgvector: HNSW vs exact scan, and HNSW's recall@10 against
    exact (random unit vectors: the hardest case for a graph index)."""
    from parley.knowledge.index import VectorIndex

    index = VectorIndex(db)
    await index.setup()
    index.pg._ann_ready("all-MiniLM-L6-v2", 384)
    await index.pg.wait_for_builds()
    vectors = await embedder.embed(questions)
    ann_ms, exact_ms, recall = [], [], []
    for i in range(len(questions)):
        started = time.perf_counter()
        approx = await index.pg.search(user_id, "all-MiniLM-L6-v2", vectors[i], None, 10)
        ann_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        exact = await index.pg.search(user_id, "all-MiniLM-L6-v2", vectors[i], None, 10, exact=True)
        exact_ms.append((time.perf_counter() - started) * 1000)
        truth = {c for c, _ in exact}
        recall.append(len(truth & {c for c, _ in approx}) / max(len(truth), 1))
    return {
        "hnsw_p50": pct(ann_ms, 50),
        "hnsw_p95": pct(ann_ms, 95),
        "exact_p50": pct(exact_ms, 50),
        "exact_p95": pct(exact_ms, 95),
        "recall@10": sum(recall) / len(recall),
    }


async def _pg_database() -> tuple[str, str]:
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"parley_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


async def _pg_drop(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _ingest_rows(
    table: Table,
    raw: dict[str, Any],
    words: list[str],
    tmp: Path,
    pages_parse: int,
    pages_memory: int,
) -> None:
    """Parsing speed, embedding speed, and memory while ingesting a big PDF."""
    pdf = tmp / "parse.pdf"
    _pdf(pages_parse, words, pdf)
    speed = await _parse_speed(pdf, pages_parse)
    table.add(
        f"PDF parse + chunk ({pages_parse} pages)",
        fmt(speed, "pages/s"),
        "pypdfium2",
        ">= 50",
        speed >= 50,
    )
    embed = await _embed_speed(words)
    table.add(
        "MiniLM embedding (numpy, batch 32)",
        fmt(embed, "passages/s"),
        "~1,000 chars each",
        "info",
    )
    big = tmp / "big.pdf"
    _pdf(pages_memory, words, big)
    peak_mb, seconds, chunks = await _ingest_memory(big, tmp)
    table.add(
        f"ingest {pages_memory}-page PDF: peak RSS above baseline",
        fmt(peak_mb, "MB"),
        f"{seconds:.0f} s, {chunks:,} passages",
        "<= 300 MB",
        peak_mb <= 300,
    )
    raw.update(
        parse_pages_s=speed,
        embed_per_s=embed,
        ingest_peak_mb=peak_mb,
        ingest_s=seconds,
        ingest_chunks=chunks,
    )


async def measure(quick: bool, search_only: bool = False) -> Table:
    from bench.knowledge_eval import QUESTIONS
    from parley.embeddings import LocalEmbedder
    from parley.knowledge.pgvector import EF_SEARCH
    from parley.storage.db import Database

    table = Table("knowledge_perf", "Files and knowledge: parsing, embedding, search", "p95 / note")
    words = _words()
    pages_parse = 50 if quick else 200
    pages_memory = 100 if quick else 500
    n_chunks = 20_000 if quick else 100_000
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not search_only:
            await _ingest_rows(table, raw, words, tmp, pages_parse, pages_memory)

        questions = [q for q, _ in QUESTIONS]
        embedder = LocalEmbedder()
        started = time.perf_counter()
        vectors = await embedder.embed(questions)
        per_query = (time.perf_counter() - started) * 1000 / len(questions)
        one = []
        for q in questions[:30]:
            t = time.perf_counter()
            await embedder.embed([q])
            one.append((time.perf_counter() - t) * 1000)
        table.add(
            "query embedding (one question)",
            fmt(pct(one, 50), "ms"),
            fmt(pct(one, 95), "ms"),
            "info",
        )
        pre = _Precomputed({q: vectors[i] for i, q in enumerate(questions)})
        raw["query_embed_ms_batched"] = per_query

        db = Database(f"sqlite+aiosqlite:///{tmp / 'search.db'}")
        await db.migrate()
        started = time.perf_counter()
        user = await _fill(db, n_chunks, words)
        fill_s = time.perf_counter() - started
        p50, p95, cold = await _search_latency(db, user, questions, pre)
        table.add(
            f"hybrid search, {n_chunks:,} passages, SQLite, exact dense (p50)",
            fmt(p50, "ms"),
            fmt(p95, "ms"),
            "p95 <= 50 ms",
            p95 <= 50,
        )
        table.notes.append(
            f"SQLite: {n_chunks:,} passages inserted in {fill_s:.0f} s; first search "
            f"(loads the vector matrix) {cold:.0f} ms"
        )
        raw["sqlite"] = {"p50": p50, "p95": p95, "cold_ms": cold}
        print(f"SQLite hybrid p50 {p50:.1f} ms, p95 {p95:.1f} ms", file=sys.stderr)
        await db.dispose()

    try:
        url, pg_name = await _pg_database()
    except Exception as exc:
        table.notes.append(f"PostgreSQL unavailable: {exc}")
        table.raw = raw
        return table
    try:
        db = Database(url)
        await db.migrate()
        user = await _fill(db, n_chunks, words)
        started = time.perf_counter()
        p50, p95, cold = await _search_latency(db, user, questions, pre, backend="pgvector")
        table.add(
            f"hybrid search, {n_chunks:,} passages, PostgreSQL + pgvector HNSW (p50)",
            fmt(p50, "ms"),
            fmt(p95, "ms"),
            "info",
        )
        dense = await _pg_dense(db, user, questions, pre)
        table.add(
            "  dense only, pgvector HNSW (p50)",
            fmt(dense["hnsw_p50"], "ms"),
            fmt(dense["hnsw_p95"], "ms"),
            "info",
        )
        table.add(
            "  dense only, pgvector exact scan (p50)",
            fmt(dense["exact_p50"], "ms"),
            fmt(dense["exact_p95"], "ms"),
            "info",
        )
        table.add(
            "  HNSW recall@10 vs exact (dense list)",
            fmt(dense["recall@10"], digits=3),
            f"ef_search {EF_SEARCH}",
            "info",
        )
        p50n, p95n, coldn = await _search_latency(db, user, questions, pre, backend="numpy")
        table.add(
            f"hybrid search, {n_chunks:,} passages, PostgreSQL + numpy (p50)",
            fmt(p50n, "ms"),
            fmt(p95n, "ms"),
            "info",
        )
        raw["postgres"] = {
            "pgvector": {"p50": p50, "p95": p95, "first_ms": cold},
            "pgvector_dense": dense,
            "numpy": {"p50": p50n, "p95": p95n, "cold_ms": coldn},
        }
        table.notes.append(
            "pgvector: HNSW (m 16, ef_construction 64) per model from migration 0008, "
            "iterative scans; hybrid falls back to the exact scan when HNSW returns fewer "
            "rows than asked. Random vectors are HNSW's worst case: real embeddings cluster. "
            "PostgreSQL keyword side is ts_rank_cd over a GIN match"
        )
        await db.dispose()
    finally:
        await _pg_drop(pg_name)
    table.raw = raw
    return table


def run(quick: bool = False, search_only: bool = False) -> Table:
    return asyncio.run(measure(quick, search_only))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument(
        "--search-only", action="store_true", help="skip parsing, embedding and memory rows"
    )
    args = parser.parse_args()
    table = run(args.quick, args.search_only)
    print(table.render())
    save([table], args.quick)


if __name__ == "__main__":
    main()
