"""Ingestion speed: passages per second through the real ``Ingestor``, before and after.

``.venv/bin/python -m bench.ingest_speed [--quick] [--loaded]`` prints one table (and
writes bench/results/*-ingest_speed.json).

Corpus (made here, deterministic): the docstrings of ~130 standard-library modules
(``bench.knowledge_eval._passages`` and ``EXTRA_MODULES``), grouped into files of 24
entries of one module: two files in three are Markdown (``## name`` per entry, so
each entry is a section) and one in three a text PDF made with fpdf2 (entries as
paragraphs, pages of ~3,000 characters). 170 files, about 400 pages, over 3,000
passages; the mean passage is reported in MiniLM tokens, because the model's cost
is per token (``--quick``: 50 files).

Each configuration ingests the whole corpus into a fresh, migrated SQLite database
(files queued as an upload queues them; ``enqueue`` then ``wait_idle``), with the
embedding model already loaded, and one BLAS thread as ``parley serve`` runs:

- **before**: the ingestion code of commit 74ee166 (one file at a time, its
  passages embedded in batches of 64 after it is parsed), numpy forward pass;
- **before + ONNX Runtime**: the same old code with the new runtime (that lever alone);
- **new queue, numpy**: this code (files parsed while others embed, rounds of 128
  passages across files) with the numpy forward pass (that lever alone);
- **after**: this code with ONNX Runtime (the default when it is installed).

After each run every file must be ``ready`` with ``embedded_count == chunk_count``.
Per-stage seconds come from ``Ingestor.stats`` and the embedder's counters; the
stages overlap (parsing runs while the model embeds), so they add up to more than
the wall time. ``--loaded`` runs the before/after pair again beside one process
spinning on a core (another engineer's tests), as the issue's "busy machine".
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `parley serve` sets it (cli.py)

import argparse
import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, Table, fmt, save

BEFORE = "74ee166"  # main before the shared embedding queue and ONNX Runtime
TARGET = 60.0  # passages per second (issue 13, item 10)
PER_FILE = 24
# more documented modules than the retrieval evaluation's, for a corpus of 3,000+ passages
EXTRA_MODULES = """email.message email.parser xml.etree.ElementTree xml.dom.minidom unittest
urllib.request http.server http.cookies concurrent.futures multiprocessing selectors ast dis
tokenize pickle shelve sched signal mmap pydoc doctest pdb cmd optparse getopt gettext plistlib
imaplib smtplib ftplib mailbox mimetypes numbers cmath abc types importlib pkgutil runpy trace
tracemalloc timeit pstats filecmp linecache reprlib graphlib sysconfig code lzma bz2 zoneinfo
wsgiref.simple_server wsgiref.util xmlrpc.client ssl""".split()  # noqa: SIM905


# ------------------------------------------------------------------ corpus


def _markdown(module: str, entries: list[tuple[str, str, str]]) -> str:
    parts = [f"# {module}\n"]
    for _, qualname, body in entries:
        parts.append(f"## {qualname}\n\n{body}\n")
    return "\n".join(parts)


def _pdf(entries: list[tuple[str, str, str]], path: Path) -> int:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    for _, qualname, body in entries:
        clean = f"{qualname}: {body}".encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(190, 4.2, clean)
        pdf.ln(2)
    pdf.output(str(path))
    return int(pdf.page_no())


def _entries() -> list[tuple[str, str, str]]:
    """(module, qualified name, docstring) of the evaluation's modules and ``EXTRA_MODULES``."""
    import importlib
    import inspect

    from bench.knowledge_eval import _passages

    entries = _passages()
    seen = {e[1] for e in entries}
    for name in EXTRA_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in sorted(dir(module)):
            obj = getattr(module, attr, None)
            targets = [(f"{name}.{attr}", obj)]
            if inspect.isclass(obj):
                targets += [(f"{name}.{attr}.{m}", v) for m, v in sorted(vars(obj).items())]
            for qualname, target in targets:
                doc = inspect.getdoc(target) if callable(target) else None
                if attr.startswith("_") or qualname.rsplit(".", 1)[-1].startswith("_"):
                    continue
                if doc and len(doc) >= 30 and qualname not in seen:
                    seen.add(qualname)
                    entries.append((name, qualname, f"{qualname.rsplit('.', 1)[-1]}\n{doc[:1500]}"))
    return entries


def corpus(folder: Path, files: int) -> tuple[list[Path], int]:
    """``files`` documents under ``folder`` and their page count (Markdown: 3,000
    characters a page)."""
    entries = _entries()
    random.Random(11).shuffle(entries)
    entries.sort(key=lambda e: e[0])  # a file holds one module's entries
    groups = [entries[i : i + PER_FILE] for i in range(0, len(entries), PER_FILE)]
    paths: list[Path] = []
    pages = 0
    for n, group in enumerate(groups[:files]):
        module = group[0][0]
        if n % 3 == 2:
            path = folder / f"{n:03d}-{module}.pdf"
            pages += _pdf(group, path)
        else:
            path = folder / f"{n:03d}-{module}.md"
            text = _markdown(module, group)
            path.write_text(text, encoding="utf-8")
            pages += max(1, round(len(text) / 3000))
        paths.append(path)
    return paths, pages


# ------------------------------------------------------------------ runs


def _before(path: str) -> types.ModuleType | None:
    """A module of ``BEFORE`` (read from git), or None without git."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BEFORE}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType(f"bench_before_{Path(path).stem}")
    exec(compile(source, f"{BEFORE}:{path}", "exec"), module.__dict__)
    return module


class _BeforeEmbedder:
    """The numpy MiniLM of ``BEFORE`` (its greedy batching) as ``LocalEmbedder`` ran it."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, module: types.ModuleType) -> None:
        self.model = module.MiniLM()
        self.model.load()
        self.model.timing = None
        self.model.backend = "numpy (before)"

    async def embed(self, texts: list[str]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.model.encode, texts, 32)


async def _run(label: str, paths: list[Path], tmp: Path, runtime: str, old: bool) -> dict[str, Any]:
    from parley.config import load_settings
    from parley.embeddings import LocalEmbedder
    from parley.knowledge.blobs import BlobStore
    from parley.knowledge.index import VectorIndex
    from parley.knowledge.ingest import Ingestor
    from parley.knowledge.sniff import check_limits, detect
    from parley.knowledge.tables import KnowledgeFile
    from parley.storage.db import Database
    from parley.storage.tables import User

    folder = tmp / label.replace(" ", "_").replace(":", "").replace("+", "")
    settings = load_settings(data_dir=folder, providers=[])
    db = Database(settings.resolved_database_url)
    await db.migrate()
    blobs = BlobStore(folder / "files")
    embedder: Any
    if runtime == "before":
        module = _before("src/parley/embeddings/minilm.py")
        if module is None:
            return {"label": label, "skipped": f"git show {BEFORE} failed"}
        embedder = _BeforeEmbedder(module)
    else:
        embedder = LocalEmbedder(runtime=runtime)
    await embedder.embed(["load the model before the clock starts"])
    model = embedder.model
    assert model.backend == {"numpy": "numpy", "onnx": "onnxruntime"}.get(runtime, model.backend)
    ids: list[str] = []
    async with db.session() as session:
        user = User(email="ingest@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        for path in paths:
            with path.open("rb") as fh:
                spooled, sha, size = blobs.spool(fh, 1 << 30)
            blobs.commit(spooled, sha)
            found = detect(blobs.path(sha), path.name)
            pages = check_limits(
                blobs.path(sha),
                found,
                path.name,
                max_pages=2000,
                max_unzipped_bytes=1 << 30,
                max_ratio=1000,
            )
            row = KnowledgeFile(
                user_id=user.id,
                sha256=sha,
                filename=path.name,
                media_type=found.media_type,
                kind=found.kind,
                size_bytes=size,
                status="queued",
                pages=pages,
            )
            session.add(row)
            await session.flush()
            ids.append(row.id)
        await session.commit()
    before = _before("src/parley/knowledge/ingest.py") if old else None
    cls = before.Ingestor if before is not None else Ingestor
    if old and before is None:
        await db.dispose()
        return {"label": label, "skipped": f"git show {BEFORE} failed"}
    ingestor = cls(db, blobs, embedder, VectorIndex(db), settings)
    zero = {"tokenize_s": 0.0, "forward_s": 0.0, "tokens": 0, "padded": 0, "texts": 0}
    timing_before = dict(model.timing or zero)
    cpu_before = time.process_time()
    started = time.perf_counter()
    await ingestor.start()
    for file_id in ids:
        ingestor.enqueue(file_id)
    await ingestor.wait_idle(3600)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    await ingestor.stop()
    async with db.session() as session:
        rows = (
            await session.execute(
                __import__("sqlalchemy").select(
                    KnowledgeFile.status, KnowledgeFile.chunk_count, KnowledgeFile.embedded_count
                )
            )
        ).all()
    await db.dispose()
    passages = sum(r.chunk_count for r in rows)
    assert all(r.status == "ready" for r in rows), [r.status for r in rows]
    assert all(r.embedded_count == r.chunk_count for r in rows), "embedded_count is not true"
    timing = {k: (model.timing or zero)[k] - timing_before[k] for k in zero}
    stats = getattr(ingestor, "stats", None)
    return {
        "label": label,
        "runtime": model.backend,
        "old_code": old,
        "wall_s": wall,
        "cpu_s": cpu,
        "files": len(rows),
        "passages": passages,
        "per_s": passages / wall,
        "per_cpu_s": passages / max(cpu, 1e-9),
        "tokens_per_passage": timing["tokens"] / max(timing["texts"], 1),
        "padding": timing["padded"] / max(timing["tokens"], 1) - 1,
        "tokenize_s": timing["tokenize_s"],
        "forward_s": timing["forward_s"],
        "stats": stats.as_dict() if stats is not None else None,
    }


@contextlib.contextmanager
def _hog(n: int) -> Iterator[None]:
    """``n`` processes spinning on a core (tracked by pid, stopped by pid)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _add(table: Table, before: dict[str, Any], result: dict[str, Any], suffix: str) -> None:
    if "skipped" in result:
        table.add(result["label"] + suffix, "skipped", result["skipped"])
        return
    is_after = result["label"].startswith("after")
    table.add(
        f"{result['label']}{suffix}",
        fmt(result["per_s"], "passages/s"),
        fmt(before.get("per_s"), "passages/s") if "per_s" in before else "-",
        f">= {TARGET:.0f}/s" if is_after else "info",
        result["per_s"] >= TARGET if is_after else None,
    )
    table.add(
        f"  per CPU-second of this process{suffix}",
        fmt(result["per_cpu_s"], "passages"),
        fmt(before.get("per_cpu_s"), "passages") if "per_cpu_s" in before else "-",
        "info (load-independent)",
    )


def _stages(table: Table, result: dict[str, Any], suffix: str) -> None:
    stats = result.get("stats")
    if not stats:
        return
    wall = result["wall_s"]
    for key, name in (
        ("parse_s", "parse (parsers)"),
        ("chunk_s", "chunk"),
        ("write_s", "write passages + parse progress"),
        ("select_s", "read passages for the embedder"),
        ("vectors_s", "write vectors + per-file progress"),
    ):
        table.add(
            f"  {name}{suffix}", fmt(stats[key], "s"), f"{100 * stats[key] / wall:.0f}% of wall"
        )
    table.add(
        f"  tokenize{suffix}",
        fmt(result["tokenize_s"], "s"),
        f"{100 * result['tokenize_s'] / wall:.0f}% of wall",
    )
    table.add(
        f"  forward pass{suffix}",
        fmt(result["forward_s"], "s"),
        f"{100 * result['forward_s'] / wall:.0f}% of wall",
    )


async def measure(quick: bool, loaded: bool) -> Table:
    table = Table("ingest_speed", "Ingestion speed (real Ingestor, SQLite)", "before / share")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        docs = tmp / "docs"
        docs.mkdir()
        paths, pages = corpus(docs, 50 if quick else 170)
        configs = [
            ("before: one file at a time, numpy", "before", True),
            ("before + ONNX Runtime", "onnx", True),
            ("new queue, numpy", "numpy", False),
            ("after: shared queue + ONNX Runtime", "onnx", False),
        ]
        results = []
        for label, runtime, old in configs:
            print(f"running: {label}", file=sys.stderr)
            result = await _run(label, paths, tmp, runtime, old)
            print(f"  {result}", file=sys.stderr)
            results.append(result)
        before = results[0]
        for result in results:
            _add(table, before, result, "")
        after = results[-1]
        if "per_s" in after and "per_s" in before:
            table.add("speed-up, after / before", fmt(after["per_s"] / before["per_s"], "x", 2))
        _stages(table, after, "")
        raw: dict[str, Any] = {"quiet": results}
        if loaded:
            busy = tmp / "loaded"
            busy.mkdir()
            pair = []
            with _hog(1):
                for label, runtime, old in (configs[0], configs[-1]):
                    print(f"running beside a busy core: {label}", file=sys.stderr)
                    pair.append(await _run(label, paths, busy, runtime, old))
            for result in pair:
                _add(table, pair[0], result, " [loaded]")
            raw["loaded"] = pair
        first = results[-1] if "per_s" in results[-1] else results[0]
        table.notes.append(
            f"corpus: {len(paths)} files ({sum(p.suffix == '.pdf' for p in paths)} PDF), "
            f"~{pages} pages, {first.get('passages', 0):,} passages, "
            f"{first.get('tokens_per_passage', 0):.0f} MiniLM tokens per passage on average, "
            f"padding {100 * first.get('padding', 0):.0f}% in the after run"
        )
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        table.notes.append(
            f"peak RSS of this process (both runtimes' models loaded): {peak:.0f} MB"
        )
        table.notes.append(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
            "stage seconds overlap (parsing runs while the model embeds)"
        )
        table.raw = raw
    return table


def run(quick: bool = False, loaded: bool = False) -> Table:
    return asyncio.run(measure(quick, loaded))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 files instead of 170")
    parser.add_argument(
        "--loaded", action="store_true", help="also run before/after beside a busy core"
    )
    args = parser.parse_args()
    table = run(args.quick, args.loaded)
    print(table.render())
    save([table], args.quick)


if __name__ == "__main__":
    main()
