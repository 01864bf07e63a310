"""Background ingestion: queued -> parsing -> embedding -> ready (or failed, with a reason).

The status and progress live in ``knowledge_files`` (never only in memory), so
any worker can answer "is it ready?" and a restart resumes: files left in
``parsing``/``embedding`` by a process that died are queued again at start-up
(on PostgreSQL, once their claim is older than ``STALE_CLAIM``).

Each file is a durable job (``parley.jobs``, kind ``knowledge.ingest``, keyed by
the file's id), run by whichever worker claims it; a worker that dies holding it
loses its lease and the next attempt parses the file again from the start.
Within a job the file is still *claimed* with a conditional UPDATE (``status =
'queued'``), so a file is never processed twice. ``WORKERS`` files are read at
once: parsing runs in one dedicated thread (PDFium is not thread-safe) and yields
a batch of passages at a time, which is written before the next is read: a
500-page PDF never sits in memory whole. A parsed file joins the embedding queue
(``embedqueue.EmbedQueue``), which embeds passages of every waiting file
together while the next files are parsed; each file's progress is written after
every round. Neither blocks the event loop.

Re-uploading bytes the same user already indexed copies the passages and
vectors instead of parsing again. A change of embedding model re-embeds every
ready file in the background, one ``knowledge.reembed`` job for all workers
(keyword search keeps working meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update

from parley.config import Settings
from parley.embeddings import Embedder
from parley.errors import Refused
from parley.jobs.queue import Claimed
from parley.jobs.runner import Jobs
from parley.knowledge.blobs import BlobStore
from parley.knowledge.chunking import Chunk, Chunker
from parley.knowledge.embedqueue import EmbedQueue, IngestStats, embed_text
from parley.knowledge.index import VectorIndex
from parley.knowledge.parsers import ParseError, Segment, parse
from parley.knowledge.sniff import UploadRejected, detect
from parley.knowledge.tables import KnowledgeChunk, KnowledgeFile
from parley.seam import AudioTranscriber
from parley.storage.db import Database
from parley.storage.tables import User, utcnow

__all__ = ["Ingestor", "embed_text"]

log = logging.getLogger(__name__)

PARSE_BATCH = 64
STALE_CLAIM = timedelta(minutes=10)
POLL_S = 15.0
WORKERS = 2  # files claimed and parsed at once (their embedding is shared)
INGEST_JOB = "knowledge.ingest"
REEMBED_JOB = "knowledge.reembed"


class _Batches:
    """Drives parse + chunk in the parsing thread, a batch of passages per call."""

    def __init__(self, segments: Iterator[Segment], target: int) -> None:
        self.segments = segments
        self.chunker = Chunker(target)
        self.pending: list[Chunk] = []
        self.done = False
        self.last_page = 0
        self.parse_s = 0.0  # seconds in the parser and the chunker (benchmarks)
        self.chunk_s = 0.0

    def take(self, n: int) -> list[Chunk]:
        while len(self.pending) < n and not self.done:
            started = time.perf_counter()
            try:
                segment = next(self.segments)
            except StopIteration:
                self.parse_s += time.perf_counter() - started
                self.pending += self.chunker.finish()
                self.done = True
                break
            fed = time.perf_counter()
            self.parse_s += fed - started
            if segment.page is not None:
                self.last_page = max(self.last_page, segment.page)
            self.pending += self.chunker.feed(segment)
            self.chunk_s += time.perf_counter() - fed
        batch, self.pending = self.pending[:n], self.pending[n:]
        return batch

    def close(self) -> None:
        close = getattr(self.segments, "close", None)
        if close is not None:
            close()


class Ingestor:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        embedder: Embedder | None,
        index: VectorIndex,
        config: Settings,
        jobs: Jobs | None = None,
    ) -> None:
        """``jobs``: the durable queue that runs ingestion (None: only ``process``, as
        the benchmarks call it)."""
        self.db = db
        self.blobs = blobs
        self.embedder = embedder
        self.index = index
        self.config = config
        self.jobs = jobs
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-parse")
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = IngestStats()
        self.embeds = EmbedQueue(db, index, lambda: self.embedder, self.stats)
        # An audio file's transcript (the speech feature, looked up when a file needs it)
        self.transcriber: Callable[[], AudioTranscriber | None] = lambda: None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Register the job handlers, queue what a dead process left, and re-embed
        in the background when the model changed (one job for every worker)."""
        jobs = self._require_jobs()
        jobs.handle(INGEST_JOB, self._ingest_job, concurrency=WORKERS)
        jobs.handle(REEMBED_JOB, self._reembed_job, concurrency=1)
        await self._recover()
        if self.embedder is not None:
            await jobs.enqueue(REEMBED_JOB, {"model": self.embedder.name}, key=self.embedder.name)
        self._tasks = [asyncio.create_task(self._poll(), name="knowledge-poll")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self.jobs is not None:
            self.jobs.unhandle(INGEST_JOB)
            self.jobs.unhandle(REEMBED_JOB)
        await self.embeds.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _require_jobs(self) -> Jobs:
        if self.jobs is None:
            raise RuntimeError("this Ingestor has no job queue")
        return self.jobs

    async def enqueue(self, file_id: str, user_id: str | None = None) -> None:
        """Queue a file for ingestion (a durable job; once, however often it is asked)."""
        await self._require_jobs().enqueue(
            INGEST_JOB, {"file_id": file_id}, key=file_id, user_id=user_id
        )

    async def wait_idle(self, limit_s: float = 60.0) -> None:
        """Until no ingestion job is waiting or running (tests and benchmarks)."""
        await self._require_jobs().drain([INGEST_JOB], limit_s)

    async def _ingest_job(self, job: Claimed) -> None:
        """One file, from queued to ready or failed. A second attempt means the first
        died midway (its worker was killed, the database went away): the file's
        half-written passages are dropped and it is parsed again from the start."""
        file_id = str(job.payload["file_id"])
        if job.attempt > 1:
            await self._requeue_file(file_id)
        await self.embeds.room()  # parsing waits while many passages wait for vectors
        await self.process(file_id)

    async def _reembed_job(self, job: Claimed) -> None:
        await self._maintenance()

    async def _requeue_file(self, file_id: str) -> None:
        async with self.db.session() as session:
            status = await session.scalar(
                select(KnowledgeFile.status).where(KnowledgeFile.id == file_id)
            )
            if status not in ("parsing", "embedding"):
                return
            await session.execute(
                text("DELETE FROM knowledge_chunks WHERE file_id = :f"), {"f": file_id}
            )
            await session.execute(
                update(KnowledgeFile)
                .where(KnowledgeFile.id == file_id)
                .values(
                    status="queued",
                    chunk_count=0,
                    embedded_count=0,
                    pages_done=0,
                    updated_at=utcnow(),
                )
            )
            await session.commit()

    async def _recover(self) -> None:
        """Queue again the files a dead process left half-done (from before the job
        queue, or whose job was lost), then make sure every queued file has a job."""
        cutoff = None if self.db.dialect == "sqlite" else utcnow() - STALE_CLAIM
        async with self.db.session() as session:
            stuck = select(KnowledgeFile.id).where(
                KnowledgeFile.status.in_(("parsing", "embedding"))
            )
            if cutoff is not None:
                stuck = stuck.where(KnowledgeFile.claimed_at < cutoff)
            ids = list((await session.scalars(stuck)).all())
        for file_id in ids:
            await self._requeue_file(file_id)
        if ids:
            log.info("re-queued %d file(s) left half-ingested", len(ids))
        await self._enqueue_waiting()

    async def _enqueue_waiting(self) -> None:
        """A job for each queued file of an active account (a disabled user's uploads
        wait, queued, and get theirs when the account is enabled again)."""
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(KnowledgeFile.id, KnowledgeFile.user_id)
                    .join(User, User.id == KnowledgeFile.user_id)
                    .where(KnowledgeFile.status == "queued", User.status == "active")
                    .order_by(KnowledgeFile.created_at)
                )
            ).all()
        for file_id, user_id in rows:
            await self.enqueue(file_id, user_id)

    async def _poll(self) -> None:
        """Give queued files a job when theirs was lost (a crash between the upload's
        commit and its enqueue) or their owner was enabled again."""
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self._enqueue_waiting()
            except Exception:
                log.exception("polling for queued files failed")

    # ------------------------------------------------------------ one file

    async def _claim(self, file_id: str) -> KnowledgeFile | None:
        """Take a queued file, unless its owner's account is not active: a disabled
        user's uploads wait, queued, and are picked up by the poll if re-enabled."""
        async with self.db.session() as session:
            now = utcnow()
            active = select(User.id).where(User.status == "active")
            result = await session.execute(
                update(KnowledgeFile)
                .where(
                    KnowledgeFile.id == file_id,
                    KnowledgeFile.status == "queued",
                    KnowledgeFile.user_id.in_(active),
                )
                .values(status="parsing", claimed_at=now, updated_at=now)
            )
            await session.commit()
            if getattr(result, "rowcount", 0) != 1:
                return None
            return await session.get(KnowledgeFile, file_id)

    async def _set(self, file_id: str, **values: Any) -> None:
        async with self.db.session() as session:
            now = utcnow()
            await session.execute(
                update(KnowledgeFile)
                .where(KnowledgeFile.id == file_id)
                .values(updated_at=now, claimed_at=now, **values)
            )
            await session.commit()

    async def _fail(self, file_id: str, code: str, message: str) -> None:
        log.info("file %s failed: %s (%s)", file_id, message, code)
        async with self.db.session() as session:
            await session.execute(
                text("DELETE FROM knowledge_chunks WHERE file_id = :f"), {"f": file_id}
            )
            await session.commit()
        await self._set(
            file_id,
            status="failed",
            error_code=code,
            error=message[:1000],
            chunk_count=0,
            embedded_count=0,
        )

    async def process(self, file_id: str) -> None:
        """Ingest one file to the end (ready or failed)."""
        done = await self._prepare(file_id)
        if done is not None:
            await done

    async def _prepare(self, file_id: str) -> asyncio.Future[None] | None:
        """Claim, then parse (or copy from a twin) a file and queue it for embedding:
        the future ends when it is ready; None when it was not claimed or failed."""
        record = await self._claim(file_id)
        if record is None:
            return None
        try:
            remaining = await self._copy_from_twin(record)
            if remaining is None:
                remaining = await self._parse(record)
            if remaining is None:
                return None  # deleted while parsing
            return self.embeds.add(record.id, record.filename, status=True, remaining=remaining)
        except ParseError as exc:
            await self._fail(record.id, exc.code, exc.message)
        except UploadRejected as exc:
            await self._fail(record.id, exc.code, exc.detail)
        except Exception as exc:
            log.exception("unexpected failure ingesting %s", record.id)
            await self._fail(
                record.id,
                "ingest_error",
                f"The file could not be processed ({type(exc).__name__}).",
            )
        return None

    async def _copy_from_twin(self, record: KnowledgeFile) -> int | None:
        """Reuse the passages (and vectors) of the same user's identical, ready file;
        the number of passages still without a vector, or None when there is no twin."""
        async with self.db.session() as session:
            twin = await session.scalar(
                select(KnowledgeFile)
                .where(
                    KnowledgeFile.user_id == record.user_id,
                    KnowledgeFile.sha256 == record.sha256,
                    KnowledgeFile.status == "ready",
                    KnowledgeFile.id != record.id,
                    KnowledgeFile.chunk_count > 0,
                )
                .limit(1)
            )
            if twin is None:
                return None
            await session.execute(
                text(
                    "INSERT INTO knowledge_chunks (file_id, user_id, ordinal, text, page, section,"
                    " char_start, char_end, tokens, embedding, embed_model)"
                    " SELECT :new, user_id, ordinal, text, page, section, char_start, char_end,"
                    " tokens, embedding, embed_model FROM knowledge_chunks"
                    " WHERE file_id = :old AND user_id = :uid ORDER BY ordinal"
                ),
                {"new": record.id, "old": twin.id, "uid": record.user_id},
            )
            # The vectors came with the passages: those of the current model count as
            # embedded at once (a twin embedded by an older model has none that count).
            embedded = twin.embedded_count
            if self.embedder is not None:
                embedded = int(
                    await session.scalar(
                        text(
                            "SELECT count(*) FROM knowledge_chunks WHERE file_id = :f"
                            " AND embed_model = :m"
                        ),
                        {"f": record.id, "m": self.embedder.name},
                    )
                    or 0
                )
            await session.execute(
                update(KnowledgeFile)
                .where(KnowledgeFile.id == record.id)
                .values(
                    pages=twin.pages,
                    pages_done=twin.pages_done,
                    chunk_count=twin.chunk_count,
                    chars=twin.chars,
                    tokens=twin.tokens,
                    embedded_count=embedded,
                    status="embedding",
                    updated_at=utcnow(),
                )
            )
            await session.commit()
        self.index.invalidate(record.user_id)
        if self.embedder is not None:
            await self.index.backfill_pgvector(self.embedder.name)
        return max(0, twin.chunk_count - embedded)

    async def _transcript(self, record: KnowledgeFile, path: Path) -> list[Segment]:
        """An audio file's passages: its transcript, one paragraph per few sentences,
        charged to the file's owner."""
        transcribe = self.transcriber()
        if transcribe is None:
            raise ParseError(
                "unsupported_type",
                "Audio files are transcribed by speech to text, which is off on this server.",
            )
        try:
            text = await transcribe(record.user_id, path, record.filename, record.conversation_id)
        except Refused as exc:
            raise ParseError(exc.code, str(exc)) from exc
        if not text.strip():
            raise ParseError("no_text", f"No speech was heard in '{record.filename}'.")
        sentences = re.split(r"(?<=[.!?])\s+", text.strip())
        return [Segment(" ".join(sentences[i : i + 5])) for i in range(0, len(sentences), 5)]

    async def _parse(self, record: KnowledgeFile) -> int | None:
        """Parse and write the file's passages; how many (None: deleted meanwhile)."""
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(None, self.blobs.local, record.sha256)
        except FileNotFoundError:
            raise ParseError("file_missing", "The stored bytes of this file are missing.") from None
        detected = await loop.run_in_executor(self._pool, detect, path, record.filename)
        if detected.kind == "audio":
            segments: Iterator[Segment] = iter(await self._transcript(record, path))
        else:
            segments = await loop.run_in_executor(
                self._pool, parse, path, detected.kind, detected.encoding
            )
        batches = _Batches(segments, self.config.chunk_chars)
        ordinal = 0
        chars = 0
        tokens = 0
        try:
            while True:
                try:
                    batch = await loop.run_in_executor(self._pool, batches.take, PARSE_BATCH)
                except (ParseError, UploadRejected):
                    raise
                except Exception as exc:
                    raise ParseError(
                        "corrupt_file", f"The file is damaged or unreadable ({exc})."
                    ) from exc
                if not batch:
                    break
                started = time.perf_counter()
                rows = []
                for chunk in batch:
                    rows.append(
                        {
                            "file_id": record.id,
                            "user_id": record.user_id,
                            "ordinal": ordinal,
                            "text": chunk.text,
                            "page": chunk.page,
                            "section": chunk.section,
                            "char_start": chunk.char_start,
                            "char_end": chunk.char_end,
                            "tokens": chunk.tokens,
                        }
                    )
                    ordinal += 1
                    chars += len(chunk.text)
                    tokens += chunk.tokens
                async with self.db.session() as session:
                    exists = await session.scalar(
                        select(KnowledgeFile.id).where(KnowledgeFile.id == record.id)
                    )
                    if exists is None:
                        return None  # deleted while parsing
                    await session.execute(insert(KnowledgeChunk), rows)
                    now = utcnow()
                    await session.execute(
                        update(KnowledgeFile)
                        .where(KnowledgeFile.id == record.id)
                        .values(
                            chunk_count=ordinal,
                            chars=chars,
                            tokens=tokens,
                            pages_done=batches.last_page,
                            updated_at=now,
                            claimed_at=now,
                        )
                    )
                    await session.commit()
                self.stats.write_s += time.perf_counter() - started
        finally:
            self.stats.parse_s += batches.parse_s
            self.stats.chunk_s += batches.chunk_s
            await loop.run_in_executor(self._pool, batches.close)
        if ordinal == 0:
            if record.kind == "pdf":
                raise ParseError(
                    "no_text_layer",
                    "This PDF has no text layer (it looks scanned). Parley cannot read "
                    "scanned pages yet (no OCR); upload a PDF with selectable text.",
                )
            raise ParseError("no_text", "No text was found in this file.")
        await self._set(
            record.id, status="embedding", pages_done=batches.last_page or (record.pages or 0)
        )
        return ordinal

    # ------------------------------------------------------------ maintenance

    async def _maintenance(self) -> None:
        """Re-embed ready files made with another model; fill pgvector from BLOBs."""
        embedder = self.embedder
        if embedder is None:
            return
        try:
            await self.reembed()
            await self.index.backfill_pgvector(embedder.name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background re-embedding failed")

    async def reembed(self) -> int:
        embedder = self.embedder
        if embedder is None:
            return 0
        done = 0
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(
                        KnowledgeFile.id,
                        KnowledgeFile.filename,
                        KnowledgeFile.chunk_count,
                        KnowledgeFile.embedded_count,
                    ).where(
                        KnowledgeFile.status == "ready",
                        KnowledgeFile.chunk_count > 0,
                        (KnowledgeFile.embed_model.is_(None))
                        | (KnowledgeFile.embed_model != embedder.name),
                    )
                )
            ).all()
        if rows:
            log.info("re-embedding %d file(s) with %s", len(rows), embedder.name)
        waiting = [
            self.embeds.add(r.id, r.filename, status=False, remaining=r.chunk_count) for r in rows
        ]
        for future in waiting:
            await future
            done += 1
        return done


def iter_batches(batches: _Batches, n: int) -> Iterator[list[Chunk]]:
    """Synchronous iteration (benchmarks): the batches ``process`` would write."""
    while True:
        batch = batches.take(n)
        if not batch:
            return
        yield batch
