"""The two indexes behind retrieval: keyword and dense.

Keyword: SQLite FTS5 (``knowledge_fts``, porter stemming, bm25) or PostgreSQL
full text (``search_tsv``, English configuration, ``ts_rank_cd``). User input
never reaches either query language as syntax: it is split into words (letters
and digits), stop words are dropped, each word is quoted, and the words are
OR-ed (any word may match; ranking rewards passages matching more of them).
Words found in many passages (``TERM_LIMITS``, counts cached for a few minutes)
are dropped when rarer ones exist, and required together (AND) when all are
common: ranking cost grows with every matching row.

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
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from parley.knowledge.pgvector import PgVectors
from parley.storage.db import Database

__all__ = ["VectorIndex", "keyword_search", "keyword_terms"]

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 2.0
CACHE_BYTES = 1 << 30  # all users' matrices together
MAX_TERMS = 32
# (common word: in more passages than this, rank at most this many passages) per backend:
# FTS5 ranks from its own index; PostgreSQL reads each matching row (and its tsvector)
# from the table, about ten times the cost per row, so it prunes earlier.
TERM_LIMITS = {"sqlite": (5_000, 10_000), "postgresql": (1_500, 3_000)}
TERM_COUNT_TTL_S = 300.0
CACHED_COUNT_MIN = 100
_term_counts: dict[tuple[bool, str], tuple[float, int]] = {}
MAX_RANKED_TERMS = 6
_WORD = re.compile(r"[^\W_]+")
_SAFE = re.compile(r"^[0-9A-Za-z]+$")
STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself no nor not now of off on once
    only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves
    """.split()  # noqa: SIM905
)


def keyword_terms(query: str) -> list[str]:
    """Distinct ASCII-safe words of ``query`` without stop words (all of them if only those)."""
    words: dict[str, None] = {}
    for word in _WORD.findall(unicodedata.normalize("NFKC", query)):
        folded = unicodedata.normalize("NFKD", word.casefold())
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
        if _SAFE.match(folded):
            words.setdefault(folded[:64], None)
    terms = [w for w in words if w not in STOP_WORDS]
    return (terms or list(words))[:MAX_TERMS]


def _scope_sql(file_ids: Sequence[str] | None, column: str) -> tuple[str, dict[str, Any]]:
    if file_ids is None:
        return "", {}
    return f" AND {column} IN :fids", {"fids": list(file_ids)}


async def keyword_search(
    session: AsyncSession,
    user_id: str,
    query: str,
    file_ids: Sequence[str] | None = None,
    limit: int = 50,
) -> list[int]:
    """Chunk ids of ``user_id`` best matching ``query``, best first."""
    terms = keyword_terms(query)
    if not terms or (file_ids is not None and not file_ids):
        return []
    sqlite = session.get_bind().dialect.name == "sqlite"
    terms, all_common = await _selective_terms(session, terms, sqlite)
    if not all_common:
        return await _ranked(session, sqlite, user_id, terms, False, file_ids, limit)
    # Only common words: passages with all of them, else with the two rarest together,
    # else any passage with the rarest (the costly case, now the last resort).
    attempts = [(terms, True)] + ([(terms[:2], True)] if len(terms) > 2 else [])
    for subset, every in [*attempts, (terms[:1], False)]:
        found = await _ranked(session, sqlite, user_id, subset, every, file_ids, limit)
        if found:
            return found
    return []


async def _ranked(
    session: AsyncSession,
    sqlite: bool,
    user_id: str,
    terms: list[str],
    every: bool,
    file_ids: Sequence[str] | None,
    limit: int,
) -> list[int]:
    params: dict[str, Any] = {"fids": list(file_ids)} if file_ids is not None else {}
    if sqlite:
        words = (" AND " if every else " OR ").join(f'"{t}"' for t in terms)
        if _SAFE.match(user_id):
            owner = f'user_id : "{user_id}" AND '
            inner_scope = ""
        else:  # never the case for generated ids; correct, just slower
            owner = ""
            inner_scope = " AND rowid IN (SELECT id FROM knowledge_chunks WHERE user_id = :uid)"
        if file_ids is not None:
            inner_scope += " AND rowid IN (SELECT id FROM knowledge_chunks WHERE file_id IN :fids)"
        # Rank inside FTS5 alone, then join only the top rows to re-check the owner: joining
        # before the ORDER BY looked up every matching row (tens of thousands at 100k).
        # Fixed fragments and bound parameters only: no user text in the SQL.
        statement = text(
            "SELECT c.id FROM (SELECT rowid AS id, bm25(knowledge_fts, 1.0, 0.0) AS score"  # noqa: S608
            " FROM knowledge_fts WHERE knowledge_fts MATCH :q"
            + inner_scope
            + " ORDER BY score, rowid LIMIT :limit) AS f"
            " JOIN knowledge_chunks AS c ON c.id = f.id WHERE c.user_id = :uid"
            " ORDER BY f.score, c.id"
        )
        params.update(q=f"{owner}text : ({words})")
    else:
        scope, _ = _scope_sql(file_ids, "c.file_id")
        statement = text(
            "SELECT c.id FROM knowledge_chunks AS c, to_tsquery('english', :q) AS query"  # noqa: S608
            " WHERE c.search_tsv @@ query AND c.user_id = :uid"
            + scope
            + " ORDER BY ts_rank_cd(c.search_tsv, query) DESC, c.id LIMIT :limit"
        )
        params.update(q=(" & " if every else " | ").join(f"'{t}'" for t in terms))
    if file_ids is not None:
        statement = statement.bindparams(bindparam("fids", expanding=True))
    params.update(uid=user_id, limit=limit)
    rows = await session.execute(statement, params)
    return [int(r[0]) for r in rows]


async def _selective_terms(
    session: AsyncSession, terms: list[str], sqlite: bool
) -> tuple[list[str], bool]:
    """Drop words found in more than ``common`` passages when rarer ones exist, keeping
    the rarest (at most ``MAX_RANKED_TERMS``, matching at most ``ranked_rows`` passages
    together unless one alone does; ``TERM_LIMITS``): ranking (bm25 / ts_rank) costs per matching
    row, and a word in most passages adds cost but almost no ranking signal. Each count
    stops at the threshold, so it stays cheap. Small libraries are never pruned.

    Returns (terms, all_common): when every word is common, the caller requires them all
    (AND) instead of ranking tens of thousands of rows that match any one of them."""
    if len(terms) <= 1:
        return terms, False
    common, ranked_rows = TERM_LIMITS["sqlite" if sqlite else "postgresql"]
    counts: dict[str, int] = {}
    now = time.monotonic()
    for term in terms:
        cached = _term_counts.get((sqlite, term))
        if cached is not None and now - cached[0] < TERM_COUNT_TTL_S:
            counts[term] = cached[1]
            continue
        if sqlite:
            statement = text(
                "SELECT count(*) FROM (SELECT 1 FROM knowledge_fts WHERE knowledge_fts"
                " MATCH :q LIMIT :cap)"
            )
            params: dict[str, Any] = {"q": f'text : "{term}"', "cap": common + 1}
        else:
            statement = text(
                "SELECT count(*) FROM (SELECT 1 FROM knowledge_chunks"
                " WHERE search_tsv @@ to_tsquery('english', :q) LIMIT :cap) AS hits"
            )
            params = {"q": f"'{term}'", "cap": common + 1}
        counts[term] = int((await session.execute(statement, params)).scalar() or 0)
        if counts[term] >= CACHED_COUNT_MIN:  # rare words are cheap to count, and a
            if len(_term_counts) > 50_000:  # cached 0 would hide a file uploaded since
                _term_counts.clear()
            _term_counts[(sqlite, term)] = (now, counts[term])  # a hint for pruning only
    # Words in no passage cannot match: leaving them out keeps a typo from standing in
    # for the query's real words.
    ranked = sorted((t for t in terms if counts[t] > 0), key=lambda t: counts[t])
    if not ranked:
        return terms[:MAX_RANKED_TERMS], False
    if counts[ranked[0]] > common:
        return ranked[:MAX_RANKED_TERMS], True
    kept: list[str] = []
    total = 0
    for term in ranked[:MAX_RANKED_TERMS]:
        if counts[term] > common or (kept and total + counts[term] > ranked_rows):
            break
        kept.append(term)
        total += counts[term]
    return kept, False


# ------------------------------------------------------------------ dense


def to_blob(vector: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4")


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

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes + self.files.nbytes)


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
        scores = matrix.vectors @ q
        if file_ids is not None:
            codes = [matrix.file_codes[f] for f in file_ids if f in matrix.file_codes]
            if not codes:
                return []
            scores = np.where(np.isin(matrix.files, codes), scores, -np.inf)
        k = min(limit, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(matrix.ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

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
        return matrix

    def _evict(self) -> None:
        total = sum(m.nbytes for m in self._cache.values())
        while total > CACHE_BYTES and len(self._cache) > 1:
            _, matrix = self._cache.popitem(last=False)
            total -= matrix.nbytes
