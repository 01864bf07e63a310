"""Embedding for every file being ingested at once: one loop, rounds of passages across files.

Why: files used to be embedded one at a time, in batches of 64 of that file's
passages, so a library of small files ran the model on a handful of passages
per call and waited for each file's bookkeeping in between. Here a single loop
owns the embedder: each round takes up to ``ROUND`` passages that lack a vector
from the files waiting (the file with the fewest passages left first, so a chat
attachment does not queue behind a big import), embeds them in one call
(length-sorted inside the embedder, so padding stays small), and writes the
vectors together with each file's ``embedded_count`` in one transaction: the
progress the web app shows stays per file and true after every round.

A file leaves the queue when none of its passages lacks a vector: its status,
``embed_model`` and final ``embedded_count`` (counted, so passages copied with
their vectors from an identical file count too) are written then. An
embedding failure ends the files of that round with the reason recorded
(keyword search still works), as before.

Parsing feeds this queue from other tasks; ``room()`` lets them wait while the
backlog is more than ``HIGH_WATER`` passages, so a big import does not parse
hundreds of files ahead of the model (their status would say "indexing 0%").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, text, update

from parley.embeddings import Embedder
from parley.knowledge.index import VectorIndex
from parley.knowledge.tables import KnowledgeChunk, KnowledgeFile
from parley.storage.db import Database
from parley.storage.tables import utcnow
from parley.usage.metering import Charge, billed_to

__all__ = ["ROUND", "EmbedQueue", "IngestStats", "embed_text"]

log = logging.getLogger(__name__)

ROUND = 128  # passages per embedding call (about two seconds of the embedded model)
HIGH_WATER = 1024  # passages waiting before parsing pauses


def embed_text(filename: str, section: str | None, body: str) -> str:
    """What is embedded for a passage: where it is, then what it says."""
    where = f"{filename} — {section}" if section else filename
    return f"{where}\n{body}"


@dataclass
class IngestStats:
    """Seconds spent per stage since start (benchmarks; cheap enough to keep on)."""

    files: int = 0
    passages: int = 0
    parse_s: float = 0.0  # reading the file (parsers), in the parse thread
    chunk_s: float = 0.0  # cutting passages (chunking), in the parse thread
    write_s: float = 0.0  # inserting passages and parse progress
    select_s: float = 0.0  # reading passages back for the embedder
    embed_s: float = 0.0  # the embedder call (tokenize + forward pass)
    vectors_s: float = 0.0  # writing vectors and progress
    rounds: int = 0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class _Job:
    file_id: str
    filename: str
    status: bool  # mark the file ready when done (not for re-embedding)
    remaining: int  # passages still without a vector (an estimate; orders the rounds)
    seq: int
    done: asyncio.Future[None]
    error: str | None = None
    last: bool = False  # the previous round took all that was left


class EmbedQueue:
    """The files waiting for vectors and the loop that embeds them (see the module)."""

    def __init__(
        self,
        db: Database,
        index: VectorIndex,
        embedder: Callable[[], Embedder | None],
        stats: IngestStats,
    ) -> None:
        self.db = db
        self.index = index
        self._embedder = embedder  # read each round: the ingestor's may be replaced
        self.stats = stats
        self.jobs: dict[str, _Job] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        return sum(max(job.remaining, 0) for job in self.jobs.values())

    async def room(self) -> None:
        """Until the backlog is small enough to parse another file."""
        while self.backlog >= HIGH_WATER:
            self._room.clear()
            await self._room.wait()

    def add(
        self, file_id: str, filename: str, *, status: bool, remaining: int
    ) -> asyncio.Future[None]:
        """Queue a file whose passages are all written; the future ends when it is done."""
        job = self.jobs.get(file_id)
        if job is not None:
            job.status = job.status or status
            return job.done
        job = _Job(
            file_id,
            filename,
            status,
            remaining,
            next(self._seq),
            asyncio.get_running_loop().create_future(),
        )
        self.jobs[file_id] = job
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="knowledge-embed")
        self._wake.set()
        return job.done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for job in self.jobs.values():
            if not job.done.done():
                job.done.cancel()
        self.jobs.clear()
        self._room.set()

    async def _run(self) -> None:
        while True:
            if not self.jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the database failed: end these files, keep going
                log.exception("embedding round failed")
                for job in list(self.jobs.values()):
                    job.error = f"{type(exc).__name__}"
                    with contextlib.suppress(Exception):
                        await self._end(job, self._embedder())
                    if not job.done.done():
                        job.done.set_result(None)
                    self.jobs.pop(job.file_id, None)
                self._room.set()

    async def _round(self) -> None:
        embedder = self._embedder()
        if embedder is None:
            for job in list(self.jobs.values()):
                await self._end(job, None)
            return
        started = time.perf_counter()
        taken: list[tuple[_Job, list[Any]]] = []
        room = ROUND
        async with self.db.session() as session:
            for job in sorted(self.jobs.values(), key=lambda j: (j.remaining, j.seq)):
                if room <= 0:
                    break
                rows = (
                    await session.execute(
                        select(
                            KnowledgeChunk.id,
                            KnowledgeChunk.user_id,
                            KnowledgeChunk.section,
                            KnowledgeChunk.text,
                        )
                        .where(
                            KnowledgeChunk.file_id == job.file_id,
                            (KnowledgeChunk.embed_model.is_(None))
                            | (KnowledgeChunk.embed_model != embedder.name),
                        )
                        .order_by(KnowledgeChunk.id)
                        .limit(room)
                    )
                ).all()
                job.last = len(rows) < room
                room -= len(rows)
                taken.append((job, list(rows)))
        self.stats.select_s += time.perf_counter() - started
        work = [(job, rows) for job, rows in taken if rows]
        texts = [embed_text(job.filename, r.section, r.text) for job, rows in work for r in rows]
        owners = [r.user_id for _, rows in work for r in rows]
        vectors = None
        error: str | None = None
        if texts:
            started = time.perf_counter()
            try:
                vectors = await _embed_per_user(embedder, texts, owners)
            except Exception as exc:
                error = str(exc)[:500]
                log.warning("embedding %d passage(s) failed: %s", len(texts), error)
            self.stats.embed_s += time.perf_counter() - started
            self.stats.rounds += 1
        if vectors is not None:
            started = time.perf_counter()
            await self._write(embedder, work, vectors)
            self.stats.vectors_s += time.perf_counter() - started
            self.stats.passages += len(texts)
        for job, rows in taken:
            if error is not None and rows:
                job.error = error
            if job.error is not None or job.last or not rows:
                await self._end(job, embedder)
        if self.backlog < HIGH_WATER:
            self._room.set()

    async def _write(
        self, embedder: Embedder, work: list[tuple[_Job, list[Any]]], vectors: Any
    ) -> None:
        """The round's vectors and each file's new ``embedded_count``, in one transaction."""
        triples = []
        i = 0
        for job, rows in work:
            for r in rows:
                triples.append((r.id, r.user_id, job.file_id, vectors[i]))
                i += 1
        async with self.db.session() as session:
            await self.index.write(session, embedder.name, triples)
            now = utcnow()
            for job, rows in work:
                done = await session.scalar(
                    text(
                        "SELECT count(*) FROM knowledge_chunks WHERE file_id = :f"
                        " AND embed_model = :m"
                    ),
                    {"f": job.file_id, "m": embedder.name},
                )
                await session.execute(
                    update(KnowledgeFile)
                    .where(KnowledgeFile.id == job.file_id)
                    .values(embedded_count=int(done or 0), updated_at=now, claimed_at=now)
                )
                job.remaining -= len(rows)
            await session.commit()

    async def _end(self, job: _Job, embedder: Embedder | None) -> None:
        """Write the file's final figures (and status), then let its waiter go."""
        self.jobs.pop(job.file_id, None)
        try:
            values: dict[str, Any] = {}
            if embedder is not None:
                async with self.db.session() as session:
                    embedded = await session.scalar(
                        text(
                            "SELECT count(*) FROM knowledge_chunks WHERE file_id = :f"
                            " AND embed_model = :m"
                        ),
                        {"f": job.file_id, "m": embedder.name},
                    )
                values = {"embed_model": embedder.name, "embedded_count": int(embedded or 0)}
                if job.error is not None:
                    values.update(
                        error_code="embedding_failed",
                        error=f"Vectors could not be made ({job.error}); keyword search "
                        "still works.",
                    )
                else:
                    values.update(error_code=None, error=None)
            if job.status:
                values["status"] = "ready"
                self.stats.files += 1
            if values:
                async with self.db.session() as session:
                    now = utcnow()
                    await session.execute(
                        update(KnowledgeFile)
                        .where(KnowledgeFile.id == job.file_id)
                        .values(updated_at=now, claimed_at=now, **values)
                    )
                    await session.commit()
        finally:
            if not job.done.done():
                job.done.set_result(None)


async def _embed_per_user(embedder: Embedder, texts: list[str], owners: list[str]) -> Any:
    """``texts`` embedded, each user's in calls of their own (``billed_to``): a remote
    endpoint's cost lands on the user whose files they are. A round is usually one
    user's, which is one call as before."""
    users = list(dict.fromkeys(owners))
    if len(users) == 1:
        with billed_to(Charge(users[0], "embeddings")):
            return await embedder.embed(texts)
    out: Any = None
    for user_id in users:
        where = [i for i, owner in enumerate(owners) if owner == user_id]
        with billed_to(Charge(user_id, "embeddings")):
            part = await embedder.embed([texts[i] for i in where])
        if out is None:
            out = np.zeros((len(texts), part.shape[1]), dtype=np.float32)
        out[where] = part
    return out
