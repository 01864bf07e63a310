"""The two indexes behind retrieval: keyword and dense.

Keyword: SQLite FTS5 or PostgreSQL full text, scoped inside the index query and
ranked by the owner's own statistics (``parley.knowledge.keyword``, re-exported here).

Dense: vectors are float32 bytes in ``knowledge_chunks.embedding``, the source
of truth on every backend. Two search paths:

- ``numpy``: a per-user matrix kept in memory as a *rebuildable cache*. It is
  checked against the database (row count and newest id of the user's vectors)
  at most every ``CHECK_INTERVAL_S`` and at once after this process writes; new
  rows are appended, anything else (a delete, a re-embedding) reloads it. So
  another worker's writes show up within seconds and a restart loses nothing.
  Search is one matrix-vector product (100,000 x 384 in a few milliseconds).
- ``pgvector``: on PostgreSQL when the extension is available, a
  ``knowledge_vectors`` table searched with ``<=>``, through an HNSW index per
  model for big libraries (``parley.knowledge.pgvector``). When the extension
  is missing, PostgreSQL uses the numpy path (and says so in the log).

Every query is scoped by ``user_id``; callers pass the file ids a turn may see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from parley.knowledge.keyword import keyword_search, keyword_terms
from parley.knowledge.pgvector import PgVectors
from parley.storage.db import Database

__all__ = ["VectorIndex", "keyword_search", "keyword_terms"]

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 2.0
CACHE_BYTES = 1 << 30  # all users' matrices together


# ------------------------------------------------------------------ dense


def to_blob(vector: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4")


def _scoped_scores(
    matrix: _Matrix, codes: npt.NDArray[np.int64], q: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.float32]]:
    """Scores of the rows of the files ``codes`` only: (their row numbers, or None when
    the scores are of every row with the others at -inf; the scores).

    A scope under half the rows reads only its rows (gathered by the file -> rows index,
    so a one-file search costs microseconds, not a product with every vector); a bigger
    one multiplies the whole matrix (one sequential pass beats gathering most rows) and
    masks the rest."""
    order, starts = matrix.by_file()
    counts = starts[codes + 1] - starts[codes]
    inside = int(counts.sum())
    if inside * 2 >= len(matrix.ids):
        wanted = np.zeros(len(matrix.file_names), dtype=bool)
        wanted[codes] = True
        full = matrix.vectors @ q
        return None, np.where(wanted[matrix.files], full, np.float32(-np.inf))
    # Row numbers of each wanted file's run in ``order``, without a Python loop per file.
    run_starts = np.repeat(starts[codes] - np.cumsum(counts) + counts, counts)
    rows = order[run_starts + np.arange(inside)]
    return rows, matrix.vectors[rows] @ q


@dataclass(slots=True)
class _Matrix:
    count: int
    max_id: int
    checked_at: float
    ids: npt.NDArray[np.int64]
    files: npt.NDArray[np.int32]
    file_names: list[str]
    file_codes: dict[str, int]
    vectors: npt.NDArray[np.float32]
    stale: bool = False
    # Row numbers sorted by file, and where each file's run starts (by file code, plus
    # the end): built at the first scoped search, dropped when rows are appended.
    _by_file: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes + self.files.nbytes * 3)

    def by_file(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if self._by_file is None:
            order = np.argsort(self.files, kind="stable").astype(np.int64)
            bounds = np.arange(len(self.file_names) + 1)
            starts = np.searchsorted(self.files[order], bounds).astype(np.int64)
            self._by_file = (order, starts)
        return self._by_file


class VectorIndex:
    """Dense search over a user's chunk vectors for one embedding model."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.backend = "numpy"
        self.pg = PgVectors(db)
        self._cache: OrderedDict[tuple[str, str], _Matrix] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def setup(self) -> None:
        """On PostgreSQL, use pgvector when it can be enabled; numpy otherwise."""
        if self.db.dialect != "postgresql":
            return
        try:
            await self.pg.setup()
        except Exception as exc:
            log.warning(
                "pgvector is not available (%s); dense search uses float32 BLOBs and numpy "
                "on PostgreSQL. Run scripts/install-pgvector.sh to enable it.",
                str(exc).splitlines()[0],
            )
            self.backend = "numpy"
            return
        self.backend = "pgvector"
        log.info("dense search uses pgvector (iterative HNSW scans: %s)", self.pg.iterative)

    # -------------------------------------------------------------- writes

    async def write(
        self,
        session: AsyncSession,
        model: str,
        rows: Sequence[tuple[int, str, str, npt.NDArray[np.float32]]],
    ) -> None:
        """Store vectors for chunks: (chunk_id, user_id, file_id, vector). Caller commits."""
        if not rows:
            return
        await session.execute(
            text(
                "UPDATE knowledge_chunks SET embedding = :embedding, embed_model = :model"
                " WHERE id = :id AND user_id = :uid"
            ),
            [
                {"embedding": to_blob(vec), "model": model, "id": cid, "uid": uid}
                for cid, uid, _, vec in rows
            ],
        )
        if self.backend == "pgvector":
            await self.pg.write(session, model, rows)
        for user_id in {uid for _, uid, _, _ in rows}:
            self.invalidate(user_id)

    def invalidate(self, user_id: str) -> None:
        for key, matrix in self._cache.items():
            if key[0] == user_id:
                matrix.stale = True

    def drop(self, user_id: str) -> None:
        """Remove the user's matrices from memory now (a deleted user's would
        otherwise stay until evicted: their next search never comes)."""
        for key in [k for k in self._cache if k[0] == user_id]:
            del self._cache[key]

    async def backfill_pgvector(self, model: str, batch: int = 500) -> int:
        """Copy BLOB vectors that have no pgvector row yet (pgvector added later)."""
        if self.backend != "pgvector":
            return 0
        copied = 0
        while True:
            async with self.db.session() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT c.id, c.user_id, c.file_id, c.embedding FROM knowledge_chunks c"
                            " WHERE c.embed_model = :m AND c.embedding IS NOT NULL"
                            " AND NOT EXISTS (SELECT 1 FROM knowledge_vectors v"
                            " WHERE v.chunk_id = c.id AND v.model = :m) LIMIT :n"
                        ),
                        {"m": model, "n": batch},
                    )
                ).all()
                if not rows:
                    return copied
                await self.write(
                    session, model, [(r[0], r[1], r[2], from_blob(r[3])) for r in rows]
                )
                await session.commit()
                copied += len(rows)

    # -------------------------------------------------------------- search

    async def search(
        self,
        user_id: str,
        model: str,
        query: npt.NDArray[np.float32],
        file_ids: Sequence[str] | None = None,
        limit: int = 50,
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the user's nearest chunks, best first."""
        if file_ids is not None and not file_ids:
            return []
        if self.backend == "pgvector":
            try:
                return await self.pg.search(user_id, model, query, file_ids, limit)
            except Exception:
                log.exception("pgvector search failed; using numpy for this query")
        return await self._search_numpy(user_id, model, query, file_ids, limit)

    async def _search_numpy(
        self,
        user_id: str,
        model: str,
        query: npt.NDArray[np.float32],
        file_ids: Sequence[str] | None,
        limit: int,
    ) -> list[tuple[int, float]]:
        matrix = await self._matrix(user_id, model)
        if matrix is None or not len(matrix.ids):
            return []
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != matrix.vectors.shape[1]:
            return []
        if file_ids is None:
            rows: npt.NDArray[np.int64] | None = None
            scores = matrix.vectors @ q
        else:
            known = (matrix.file_codes.get(f) for f in file_ids)
            codes = np.fromiter((c for c in known if c is not None), dtype=np.int64)
            if not len(codes):
                return []
            rows, scores = _scoped_scores(matrix, np.unique(codes), q)
        k = min(limit, len(scores))
        if not k:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        at = top if rows is None else rows[top]
        return [
            (int(matrix.ids[a]), float(scores[t]))
            for a, t in zip(at, top, strict=True)
            if np.isfinite(scores[t])  # rows outside the scope, when fewer than ``limit``
        ]

    async def _matrix(self, user_id: str, model: str) -> _Matrix | None:
        key = (user_id, model)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            matrix = self._cache.get(key)
            now = time.monotonic()
            if (
                matrix is not None
                and not matrix.stale
                and now - matrix.checked_at < CHECK_INTERVAL_S
            ):
                self._cache.move_to_end(key)
                return matrix
            async with self.db.session() as session:
                count, max_id = (
                    await session.execute(
                        text(
                            # embed_model is only set with a vector: the (user_id,
                            # embed_model) index answers this without reading rows.
                            "SELECT count(*), coalesce(max(id), 0) FROM knowledge_chunks"
                            " WHERE user_id = :uid AND embed_model = :m"
                        ),
                        {"uid": user_id, "m": model},
                    )
                ).one()
                count, max_id = int(count), int(max_id)
                if matrix is not None and (matrix.count, matrix.max_id) == (count, max_id):
                    matrix.checked_at, matrix.stale = now, False
                    self._cache.move_to_end(key)
                    return matrix
                after = matrix.max_id if matrix is not None and max_id > matrix.max_id else None
                rows = (
                    await session.execute(
                        text(
                            "SELECT id, file_id, embedding FROM knowledge_chunks"
                            " WHERE user_id = :uid AND embed_model = :m"
                            " AND embedding IS NOT NULL AND id > :after ORDER BY id"
                        ),
                        {"uid": user_id, "m": model, "after": after or 0},
                    )
                ).all()
            if matrix is not None and after is not None and matrix.count + len(rows) == count:
                matrix = self._append(matrix, rows)
            else:
                matrix = self._build(rows)
            matrix.count, matrix.max_id, matrix.checked_at = count, max_id, now
            self._cache[key] = matrix
            self._cache.move_to_end(key)
            self._evict()
            return matrix

    @staticmethod
    def _build(rows: Sequence[Any]) -> _Matrix:
        names: list[str] = []
        codes: dict[str, int] = {}
        empty = _Matrix(
            0,
            0,
            0.0,
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            names,
            codes,
            np.zeros((0, 0), np.float32),
        )
        return VectorIndex._append(empty, rows)

    @staticmethod
    def _append(matrix: _Matrix, rows: Sequence[Any]) -> _Matrix:
        if not rows:
            return matrix
        dim = len(rows[0][2]) // 4
        usable = [r for r in rows if len(r[2]) == dim * 4]
        ids = np.fromiter((r[0] for r in usable), dtype=np.int64, count=len(usable))
        file_codes = np.empty(len(usable), dtype=np.int32)
        for i, row in enumerate(usable):
            code = matrix.file_codes.get(row[1])
            if code is None:
                code = matrix.file_codes[row[1]] = len(matrix.file_names)
                matrix.file_names.append(row[1])
            file_codes[i] = code
        vectors = np.frombuffer(b"".join(r[2] for r in usable), dtype="<f4").reshape(-1, dim)
        if matrix.vectors.size and matrix.vectors.shape[1] == dim:
            vectors = np.concatenate([matrix.vectors, vectors])
            ids = np.concatenate([matrix.ids, ids])
            file_codes = np.concatenate([matrix.files, file_codes])
        matrix.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        matrix.ids = ids
        matrix.files = file_codes
        matrix._by_file = None
        return matrix

    def _evict(self) -> None:
        total = sum(m.nbytes for m in self._cache.values())
        while total > CACHE_BYTES and len(self._cache) > 1:
            _, matrix = self._cache.popitem(last=False)
            total -= matrix.nbytes
