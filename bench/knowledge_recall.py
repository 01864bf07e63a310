"""Retrieval quality that generalises: a manual in one collection, dev and held-out questions.

``.venv/bin/python -m bench.knowledge_recall [--quick] [--rebuild] [--configs a,b]``
prints the target table and the full matrix (split x question kind x configuration:
passage hit@10, page hit@10, MRR@10, nDCG@10, search latency), and writes
bench/results/*-knowledge_recall.json.

The corpus (``bench.knowledge_corpus``: ~90 Markdown, PDF and Word documents made
from this Python's own library) goes through Parley's real pipeline: ``Uploads.upload``
into one collection (spool, hash, sniff), then ``Ingestor.process`` (parse, chunk,
embed with the embedded all-MiniLM-L6-v2, store in SQLite with FTS5). The migrated
database is cached under bench/results/.recall-cache/, keyed by the corpus bytes and
the sources of the parsing, chunking and ingestion code, so changing any of them
re-ingests (``--rebuild`` forces it). Searches go through ``Retriever.search`` scoped
to the collection's files, as a chat turn or the search route does.

Scoring: a passage *contains the answer* when it holds every string of one of the
question's alternatives (``bench.knowledge_questions``). Passage hit@10: one such
passage in the top 10. Page hit@10: a top-10 passage on a page holding one (PDF: the
page; other formats: the entry, i.e. the section path cut at two levels). MRR@10 and
nDCG@10 (binary relevance, ideal DCG over the relevant passages) by passage.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `parley serve` runs

import argparse
import asyncio
import hashlib
import io
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS, Table, fmt, pct, save
from bench.knowledge_questions import DEV, Question
from bench.knowledge_questions_heldout import HELD_OUT

SRC = Path(__file__).resolve().parent.parent / "src" / "parley" / "knowledge"
CACHE = RESULTS / ".recall-cache"
KINDS = ("plain", "para", "value")
TARGET_ALL, TARGET_PARA = 0.85, 0.70


@dataclass(slots=True)
class Corpus:
    db_url: str
    user_id: str
    file_ids: list[str]
    passages: dict[int, tuple[str, int | None, str | None, str]]  # id -> file, page, section, text
    pages: int
    ingest_s: float | None
    ingest_note: str


def _cache_key(files: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode())
        digest.update(hashlib.sha256(data).digest())
    for source in ("parsers.py", "chunking.py", "ingest.py"):
        digest.update((SRC / source).read_bytes())
    return digest.hexdigest()[:16]


async def build(rebuild: bool = False) -> Corpus:
    """The collection, ingested through the real pipeline (or taken from the cache)."""
    from sqlalchemy import select

    from bench.knowledge_corpus import files
    from parley.config import load_settings
    from parley.knowledge.tables import KnowledgeChunk, KnowledgeCollection, KnowledgeFile
    from parley.storage.db import Database
    from parley.storage.tables import User

    made = list(files())
    root = CACHE / _cache_key(made)
    data = root / "data"
    settings = load_settings(data_dir=data, providers=[])
    ingest_s: float | None = None
    note = f"cached ingestion ({root.name})"
    if rebuild or not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        data.mkdir(parents=True)
        ingest_s, note = await _ingest(settings, made)
        (root / "done").write_text(note)
    else:
        note = (root / "done").read_text() + " [cached]"
    db = Database(settings.resolved_database_url)
    async with db.session() as session:
        user = (await session.execute(select(User))).scalars().one()
        collection = (await session.execute(select(KnowledgeCollection))).scalars().one()
        file_rows = (
            await session.execute(
                select(KnowledgeFile).where(KnowledgeFile.collection_id == collection.id)
            )
        ).scalars()
        file_ids = []
        pages = 0
        for row in file_rows:
            assert row.status == "ready", (row.filename, row.status, row.error)
            file_ids.append(row.id)
            # PDF pages as printed; other formats in print-page equivalents (3,000 chars)
            pages += row.pages if row.kind == "pdf" and row.pages else math.ceil(row.chars / 3000)
        rows = await session.execute(
            select(
                KnowledgeChunk.id,
                KnowledgeChunk.file_id,
                KnowledgeChunk.page,
                KnowledgeChunk.section,
                KnowledgeChunk.text,
            ).where(KnowledgeChunk.user_id == user.id)
        )
        passages = {r.id: (r.file_id, r.page, r.section, r.text) for r in rows}
    await db.dispose()
    return Corpus(
        settings.resolved_database_url, user.id, file_ids, passages, pages, ingest_s, note
    )


async def _ingest(settings: Any, made: list[tuple[str, bytes]]) -> tuple[float, str]:
    from parley.embeddings import LocalEmbedder
    from parley.knowledge.blobs import BlobStore
    from parley.knowledge.index import VectorIndex
    from parley.knowledge.ingest import Ingestor
    from parley.knowledge.tables import KnowledgeCollection, KnowledgeFile
    from parley.knowledge.uploads import Uploads
    from parley.storage.db import Database
    from parley.storage.tables import User

    db = Database(settings.resolved_database_url)
    await db.migrate()
    blobs = BlobStore(settings.data_dir / "files")
    embedder = LocalEmbedder()
    await embedder.embed(["warm up"])
    ingestor = Ingestor(db, blobs, embedder, VectorIndex(db), settings)
    uploads = Uploads(db, settings, blobs, ingestor)
    async with db.session() as session:
        user = User(email="recall@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        collection = KnowledgeCollection(user_id=user.id, name="Library manual")
        session.add(collection)
        await session.commit()
        user_id, collection_id = user.id, collection.id
    started = time.perf_counter()
    ids = []
    for name, data in made:
        uploaded = await uploads.upload(
            user_id, io.BytesIO(data), name, collection_id=collection_id
        )
        ids.append(uploaded.file.id)
    for file_id in ids:
        await ingestor.process(file_id)
    elapsed = time.perf_counter() - started
    async with db.session() as session:
        chunks = 0
        for file_id in ids:
            row = await session.get(KnowledgeFile, file_id)
            assert row is not None and row.status == "ready", row and (row.filename, row.error)
            chunks += row.chunk_count
    await ingestor.stop()
    await db.dispose()
    return elapsed, f"ingested {len(ids)} files, {chunks:,} passages in {elapsed:.0f} s"


# ------------------------------------------------------------------ scoring


def _matches(text: str, alternative: Sequence[str]) -> bool:
    for needle in alternative:
        if needle.startswith("="):
            line = re.escape(needle[1:])
            if not re.search(rf"(?m)^{line}[ \t]*$", text):
                return False
        elif needle not in text:
            return False
    return True


def _page_key(passage: tuple[str, int | None, str | None, str]) -> tuple[str, str]:
    file_id, page, section, _ = passage
    if page is not None:
        return file_id, f"p{page}"
    return file_id, " > ".join((section or "").split(" > ")[:2])


@dataclass(slots=True)
class Labelled:
    kind: str
    question: str
    relevant: set[int]
    pages: set[tuple[str, str]]


def label(corpus: Corpus, questions: list[Question]) -> tuple[list[Labelled], list[str]]:
    """Questions with the passages holding their answer; those with none are reported."""
    out, unanswerable = [], []
    for kind, question, alternatives in questions:
        relevant = {
            cid
            for cid, passage in corpus.passages.items()
            if any(_matches(passage[3], alt) for alt in alternatives)
        }
        if not relevant:
            unanswerable.append(question)
            continue
        pages = {_page_key(corpus.passages[c]) for c in relevant}
        out.append(Labelled(kind, question, relevant, pages))
    return out, unanswerable


def score(corpus: Corpus, items: list[Labelled], rankings: list[list[int]]) -> dict[str, float]:
    hit = page = mrr = ndcg = 0.0
    for item, ranked in zip(items, rankings, strict=True):
        top = ranked[:10]
        rank = next((i + 1 for i, c in enumerate(top) if c in item.relevant), None)
        if rank is not None:
            hit += 1
            mrr += 1 / rank
        if any(_page_key(corpus.passages[c]) in item.pages for c in top if c in corpus.passages):
            page += 1
        dcg = sum(1 / math.log2(i + 2) for i, c in enumerate(top) if c in item.relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(item.relevant), 10)))
        ndcg += dcg / ideal
    n = max(1, len(items))
    return {"hit": hit / n, "page": page / n, "mrr": mrr / n, "ndcg": ndcg / n, "n": len(items)}


# ------------------------------------------------------------------ configurations

Factory = Callable[[Any, Any, Any], Any]  # (db, embedder, index) -> Retriever


def configurations() -> dict[str, tuple[str, Factory]]:
    """name -> (mode, Retriever factory). Baselines first, then each lever on hybrid."""
    from parley.knowledge import ranking, retrieval

    main = {
        "keyword_weight": 0.5,
        "rrf_k": 20,
        "variants": False,
        "reranker": None,
        "loose_keyword_weight": None,
    }

    def make(**options: Any) -> Factory:
        def factory(db: Any, embedder: Any, index: Any) -> Any:
            return retrieval.Retriever(db, embedder, index, **options)

        return factory

    def lever(**changes: Any) -> Factory:
        return make(**{**main, **changes})

    return {
        "keyword": ("keyword", make(**main)),
        "dense": ("dense", make(**main)),
        "dense + variants": ("dense", lever(variants=True)),
        "hybrid (main)": ("hybrid", make(**main)),
        "hybrid + variants": ("hybrid", lever(variants=True)),
        "hybrid + headings": ("hybrid", lever(reranker=ranking.HeadingReranker())),
        "hybrid + keyword weight 1.0": ("hybrid", lever(keyword_weight=1.0)),
        "hybrid + keyword weight 0.25": ("hybrid", lever(keyword_weight=0.25)),
        "hybrid + rrf k 60": ("hybrid", lever(rrf_k=60)),
        "hybrid + variants + kw 0.25": ("hybrid", lever(variants=True, keyword_weight=0.25)),
        "hybrid + adaptive kw (0.5/0.25)": ("hybrid", lever(loose_keyword_weight=0.25)),
        "hybrid + adaptive kw (0.75/0.25)": (
            "hybrid",
            lever(keyword_weight=0.75, loose_keyword_weight=0.25),
        ),
        "hybrid + adaptive kw (0.5/0.1)": ("hybrid", lever(loose_keyword_weight=0.1)),
        "hybrid + variants + adaptive (0.5/0.25)": (
            "hybrid",
            lever(variants=True, loose_keyword_weight=0.25),
        ),
        "hybrid (shipped)": ("hybrid", make()),
    }


async def run_config(
    corpus: Corpus, factory: Factory, mode: str, items: list[Labelled]
) -> tuple[list[list[int]], list[float]]:
    from parley.embeddings import LocalEmbedder
    from parley.knowledge.index import VectorIndex
    from parley.storage.db import Database

    db = Database(corpus.db_url)
    index = VectorIndex(db)
    retriever = factory(db, LocalEmbedder(), index)
    await retriever.search(corpus.user_id, "warm up", file_ids=corpus.file_ids, mode=mode)
    rankings, latencies = [], []
    for item in items:
        started = time.perf_counter()
        hits = await retriever.search(
            corpus.user_id, item.question, file_ids=corpus.file_ids, limit=10, mode=mode
        )
        latencies.append((time.perf_counter() - started) * 1000)
        rankings.append([h.chunk_id for h in hits])
    await db.dispose()
    return rankings, latencies


async def evaluate(
    quick: bool, rebuild: bool, only: list[str] | None, dev_only: bool = False
) -> tuple[Table, str]:
    corpus = await build(rebuild)
    dev, dev_missing = label(corpus, DEV)
    held, held_missing = label(corpus, HELD_OUT)
    if quick:
        dev, held = dev[::3], held[::3]
    if dev_only:  # while choosing levers: the held-out split is not even run
        held = []
    results: dict[str, dict[str, Any]] = {}
    for name, (mode, factory) in configurations().items():
        if only and name not in only and name not in ("keyword", "dense", "hybrid (main)"):
            continue
        entry: dict[str, Any] = {"latency": []}
        for split, items in (("dev", dev), ("held-out", held)):
            if not items:
                entry[split] = {k: score(corpus, [], []) for k in ("all", *KINDS)}
                continue
            rankings, latencies = await run_config(corpus, factory, mode, items)
            entry["latency"] += latencies
            entry[split] = {"all": score(corpus, items, rankings)}
            for kind in KINDS:
                picked = [i for i, it in enumerate(items) if it.kind == kind]
                entry[split][kind] = score(
                    corpus, [items[i] for i in picked], [rankings[i] for i in picked]
                )
            entry[split + " misses"] = (
                [
                    it.question
                    for it, r in zip(items, rankings, strict=True)
                    if not set(r[:10]) & it.relevant
                ]
                if split == "dev"
                else []
            )
        results[name] = entry
    return _table(corpus, results, dev, held, dev_missing + held_missing), _matrix(results)


def _matrix(results: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'configuration':40} {'split':8} {'kind':6} {'n':>3} {'hit@10':>7} {'page@10':>8}"
        f" {'MRR':>6} {'nDCG':>6}"
    )
    lines = [head, "-" * len(head)]
    for name, entry in results.items():
        for split in ("dev", "held-out"):
            for kind in ("all", *KINDS):
                s = entry[split][kind]
                lines.append(
                    f"{name:40} {split:8} {kind:6} {s['n']:>3} {s['hit']:>7.3f} {s['page']:>8.3f}"
                    f" {s['mrr']:>6.3f} {s['ndcg']:>6.3f}"
                )
        lat = entry["latency"]
        lines.append(f"{name:40} latency p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms")
    return "\n".join(lines)


def _table(
    corpus: Corpus,
    results: dict[str, dict[str, Any]],
    dev: list[Labelled],
    held: list[Labelled],
    missing: list[str],
) -> Table:
    shipped = results.get("hybrid (shipped)") or results["hybrid (main)"]
    main = results["hybrid (main)"]
    table = Table(
        "knowledge_recall",
        f"Retrieval over a {corpus.pages}-page, {len(corpus.passages):,}-passage manual "
        f"({len(corpus.file_ids)} files, one collection): {len(dev)} dev + {len(held)} "
        "held-out questions",
        "main hybrid",
    )
    h, b = shipped["held-out"], main["held-out"]
    table.add(
        "held-out passage hit@10, all",
        fmt(h["all"]["hit"], digits=3),
        fmt(b["all"]["hit"], digits=3),
        f">= {TARGET_ALL}",
        h["all"]["hit"] >= TARGET_ALL,
    )
    table.add(
        "held-out passage hit@10, paraphrased",
        fmt(h["para"]["hit"], digits=3),
        fmt(b["para"]["hit"], digits=3),
        f">= {TARGET_PARA}",
        h["para"]["hit"] >= TARGET_PARA,
    )
    for kind in ("plain", "value"):
        table.add(
            f"held-out passage hit@10, {kind}",
            fmt(h[kind]["hit"], digits=3),
            fmt(b[kind]["hit"], digits=3),
        )
    table.add(
        "held-out page hit@10, all",
        fmt(h["all"]["page"], digits=3),
        fmt(b["all"]["page"], digits=3),
    )
    table.add(
        "held-out nDCG@10 / MRR@10",
        f"{h['all']['ndcg']:.3f} / {h['all']['mrr']:.3f}",
        f"{b['all']['ndcg']:.3f} / {b['all']['mrr']:.3f}",
    )
    best_single = max(
        results["keyword"]["held-out"]["all"]["hit"], results["dense"]["held-out"]["all"]["hit"]
    )
    table.add(
        "held-out hit@10 margin over best single list",
        f"{h['all']['hit'] - best_single:+.3f}",
        f"{b['all']['hit'] - best_single:+.3f}",
        ">= +0.05",
        h["all"]["hit"] - best_single >= 0.05,
    )
    d, db_ = shipped["dev"], main["dev"]
    table.add(
        "dev passage hit@10, all / paraphrased",
        f"{d['all']['hit']:.3f} / {d['para']['hit']:.3f}",
        f"{db_['all']['hit']:.3f} / {db_['para']['hit']:.3f}",
    )
    lat, base = shipped["latency"], main["latency"]
    table.add(
        "search latency p50 / p95 (ms)",
        f"{pct(lat, 50):.1f} / {pct(lat, 95):.1f}",
        f"{pct(base, 50):.1f} / {pct(base, 95):.1f}",
        "p95 +<= 30 ms",
        pct(lat, 95) - pct(base, 95) <= 30,
    )
    table.notes.append(corpus.ingest_note)
    if missing:
        table.notes.append(
            f"{len(missing)} question(s) with no passage holding the answer: {missing}"
        )
    table.notes.append(
        "held-out: bench/knowledge_questions_heldout.py, written after the dev split and "
        "before any lever was measured; levers were chosen on dev only"
    )
    table.raw = {"results": results}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the questions")
    parser.add_argument("--rebuild", action="store_true", help="ingest again, ignoring the cache")
    parser.add_argument("--configs", help="comma-separated configuration names to run")
    parser.add_argument("--misses", action="store_true", help="print dev misses per config")
    parser.add_argument("--dev-only", action="store_true", help="skip the held-out split")
    args = parser.parse_args()
    only = args.configs.split(",") if args.configs else None
    table, matrix = asyncio.run(evaluate(args.quick, args.rebuild, only, args.dev_only))
    print(table.render())
    print()
    print(matrix)
    if args.misses:
        for name, entry in table.raw["results"].items():
            print(f"\n{name} dev misses:")
            for q in entry["dev misses"]:
                print("  -", q)
    save([table], args.quick)


if __name__ == "__main__":
    main()
