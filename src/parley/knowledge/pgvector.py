"""Dense search inside PostgreSQL with pgvector: exact, or through an HNSW index.

Vectors of every model share one ``knowledge_vectors`` table with an untyped
``vector`` column (dimensions differ between models), so an HNSW index cannot
cover the column itself. Each embedding model gets a *partial expression* index
instead: ``hnsw ((embedding::vector(dim)) vector_cosine_ops) WHERE model = '...'``
(migration 0008 makes the default model's; others are built in the background,
``CONCURRENTLY``, the first time a model is searched). A query uses it only when
it repeats the expression and the model as a literal, which ``_ann_sql`` does.

When to use it: HNSW is approximate and filters after the graph walk, so it pays
off for big libraries only. Whole-library searches and scopes of at least
``ANN_MIN_ROWS`` vectors (the files' ``embedded_count``) use it (pgvector >= 0.8
iterative scans keep filling the results while the filter drops rows: a scope of
a few percent of the library would make the walk visit tens of times more nodes);
smaller scopes are scanned exactly, driven by the ``file_id`` index alone (bitmap
scans off for that query: ANDed with the owner's index, the planner read every one
of the owner's rows first). When the index returns fewer rows than asked, the exact
query runs instead, so a small or filtered library never loses results.

The scope is one array parameter (``file_id = ANY(:fids)``), not one parameter per
file: planning ``IN`` with 2,000 parameters took 15-50 ms, longer than the search.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from parley.storage.db import Database

__all__ = ["PgVectors", "ann_index_ddl", "pg_vector_literal"]

log = logging.getLogger(__name__)

ANN_MIN_ROWS = 10_000
BUILD_MEMORY = "512MB"
EF_SEARCH = 100  # candidates per query (pgvector's default is 40): recall over speed
_MODEL = re.compile(r"^[\w.\-/:@+ ]{1,200}$")

TABLE_DDL = [
    "CREATE TABLE IF NOT EXISTS knowledge_vectors ("
    " chunk_id BIGINT PRIMARY KEY REFERENCES knowledge_chunks(id) ON DELETE CASCADE,"
    " user_id VARCHAR(32) NOT NULL, file_id VARCHAR(32) NOT NULL,"
    " model VARCHAR(200) NOT NULL, embedding vector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS knowledge_vectors_user_model ON knowledge_vectors (user_id, model)",
    "CREATE INDEX IF NOT EXISTS knowledge_vectors_file ON knowledge_vectors (file_id)",
]


def pg_vector_literal(vector: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def ann_index_name(model: str, dim: int) -> str:
    return f"knowledge_vectors_hnsw_{dim}_{hashlib.sha1(model.encode()).hexdigest()[:12]}"  # noqa: S324


def ann_index_ddl(model: str, dim: int, *, concurrently: bool = False) -> str | None:
    """The HNSW index for one model, or None when its name cannot be a safe literal."""
    if not _MODEL.match(model) or not 0 < dim <= 16_000:
        return None
    how = "CONCURRENTLY " if concurrently else ""
    # model is checked against _MODEL (no quotes), dim is an int: no injection.
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {ann_index_name(model, dim)} ON knowledge_vectors"
        f" USING hnsw ((embedding::vector({dim})) vector_cosine_ops)"
        f" WITH (m = 16, ef_construction = 64) WHERE model = '{model}'"
    )


def _scope(file_ids: Sequence[str] | None) -> str:
    return "" if file_ids is None else " AND file_id = ANY(CAST(:fids AS varchar[]))"


class PgVectors:
    """The pgvector side of ``VectorIndex``: table, writes, exact and HNSW search."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.iterative = False  # pgvector >= 0.8: filtered HNSW scans keep going
        self._ann: dict[tuple[str, int], bool] = {}  # (model, dim) -> index usable
        self._builds: set[asyncio.Task[None]] = set()

    async def setup(self) -> None:
        """Enable the extension and make the table (raises when pgvector is missing)."""
        async with self.db.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(7041029)"))
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            for statement in TABLE_DDL:
                await conn.execute(text(statement))
            version = (
                await conn.execute(
                    text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                )
            ).scalar()
        parts = tuple(int(p) for p in re.findall(r"\d+", str(version or "0"))[:2])
        self.iterative = parts >= (0, 8)

    async def write(
        self,
        session: AsyncSession,
        model: str,
        rows: Sequence[tuple[int, str, str, npt.NDArray[np.float32]]],
    ) -> None:
        await session.execute(
            text(
                "INSERT INTO knowledge_vectors (chunk_id, user_id, file_id, model, embedding)"
                " SELECT :id, :uid, :fid, :model, CAST(:vec AS vector)"
                " WHERE EXISTS (SELECT 1 FROM knowledge_chunks WHERE id = :id)"
                " ON CONFLICT (chunk_id) DO UPDATE SET model = excluded.model,"
                " embedding = excluded.embedding"
            ),
            [
                {"id": cid, "uid": uid, "fid": fid, "model": model, "vec": pg_vector_literal(vec)}
                for cid, uid, fid, vec in rows
            ],
        )

    # -------------------------------------------------------------- search

    async def search(
        self,
        user_id: str,
        model: str,
        query: npt.NDArray[np.float32],
        file_ids: Sequence[str] | None,
        limit: int,
        *,
        exact: bool = False,
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity), best first; ``exact`` skips the HNSW index."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        params: dict[str, Any] = {"q": pg_vector_literal(q), "uid": user_id, "limit": limit}
        if file_ids is not None:
            params["fids"] = list(file_ids)
        async with self.db.session() as session:
            # Prepared statements (asyncpg) switch to a generic plan after five runs; with
            # the scope an unknown array, it read the scope's rows and sorted them (0.7 s at
            # 2,000 files) instead of walking the HNSW index. Plan each query for its values.
            await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            if not exact and await self._use_ann(session, user_id, model, q.shape[0], file_ids):
                await session.execute(text(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"))
                if self.iterative:
                    await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                ann = self._ann_sql(model, q.shape[0], file_ids)
                rows = (await session.execute(ann, params)).all()
                if len(rows) >= limit:
                    return [(int(r[0]), 1.0 - float(r[1])) for r in rows]
            if file_ids is not None:
                await session.execute(text("SET LOCAL enable_bitmapscan = off"))
            statement = text(
                # fixed fragments and bound parameters only
                "SELECT chunk_id, embedding <=> CAST(:q AS vector) AS dist"  # noqa: S608
                " FROM knowledge_vectors WHERE user_id = :uid AND model = :m"
                + _scope(file_ids)
                + " ORDER BY dist LIMIT :limit"
            )
            rows = (await session.execute(statement, {**params, "m": model})).all()
            return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    @staticmethod
    def _ann_sql(model: str, dim: int, file_ids: Sequence[str] | None) -> Any:
        # The index expression and predicate, repeated verbatim (a bound model would not
        # match the partial index); ``model`` passed ``_MODEL`` in ``_use_ann``.
        vec = f"(embedding::vector({dim}))"
        statement = text(
            f"SELECT chunk_id, dist FROM (SELECT chunk_id, {vec} <=> CAST(:q AS vector({dim}))"  # noqa: S608
            f" AS dist FROM knowledge_vectors WHERE model = '{model}' AND user_id = :uid"
            + _scope(file_ids)
            + f" ORDER BY {vec} <=> CAST(:q AS vector({dim})) LIMIT :limit) AS hits ORDER BY dist"
        )
        return statement

    async def _use_ann(
        self,
        session: AsyncSession,
        user_id: str,
        model: str,
        dim: int,
        file_ids: Sequence[str] | None,
    ) -> bool:
        if not self._ann_ready(model, dim):
            return False
        if file_ids is None:
            return True
        rows = await session.execute(
            text(
                "SELECT coalesce(sum(embedded_count), 0) FROM knowledge_files"
                " WHERE user_id = :uid AND id = ANY(CAST(:fids AS varchar[]))"
            ),
            {"uid": user_id, "fids": list(file_ids)},
        )
        return int(rows.scalar() or 0) >= ANN_MIN_ROWS

    def _ann_ready(self, model: str, dim: int) -> bool:
        key = (model, dim)
        state = self._ann.get(key)
        if state is None:
            self._ann[key] = False
            if ann_index_ddl(model, dim) is not None:
                task = asyncio.create_task(self._ensure_ann(model, dim))
                self._builds.add(task)
                task.add_done_callback(self._builds.discard)
            return False
        return state

    async def _ensure_ann(self, model: str, dim: int) -> None:
        """Use the model's HNSW index when valid; build it (CONCURRENTLY) when missing."""
        name = ann_index_name(model, dim)
        valid = (
            "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
            " WHERE c.relname = :name"
        )
        try:
            async with self.db.engine.connect() as conn:
                # Autocommit from the start: CONCURRENTLY cannot run inside a transaction.
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                # One builder at a time across workers: an invalid index may be another
                # worker's build in progress, not a leftover, until we hold the lock.
                await auto.execute(text("SELECT pg_advisory_lock(7041030)"))
                try:
                    await self._build(auto, name, model, dim, valid)
                finally:
                    await auto.execute(text("SELECT pg_advisory_unlock(7041030)"))
            self._ann[(model, dim)] = True
        except Exception as exc:
            log.warning("HNSW index for %s unavailable (%s); exact search", model, exc)
            self._ann[(model, dim)] = False

    @staticmethod
    async def _build(auto: Any, name: str, model: str, dim: int, valid: str) -> None:
        found = (await auto.execute(text(valid), {"name": name})).first()
        if found is not None and not found[0]:  # a build that was interrupted
            await auto.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            found = None
        if found is None:
            log.info("building the HNSW index for %s (%d dimensions)", model, dim)
            ddl = ann_index_ddl(model, dim, concurrently=True)
            assert ddl is not None
            # The graph should fit in memory while building (~2 KB per 384-d vector).
            await auto.execute(text(f"SET maintenance_work_mem = '{BUILD_MEMORY}'"))
            try:
                await auto.execute(text(ddl))
            finally:
                await auto.execute(text("RESET maintenance_work_mem"))

    async def wait_for_builds(self) -> None:
        """For benchmarks and tests: let pending index builds finish."""
        while self._builds:
            await asyncio.gather(*list(self._builds), return_exceptions=True)
