"""Keyword search over passages: scoped inside the index query, ranked by the owner's statistics.

SQLite: the FTS5 table ``knowledge_fts`` indexes each passage's text, owner and file
(migration 0011). The scope is part of the MATCH, so FTS5 drives the query:
``file_id : ("f1" OR "f2") AND text : (...)`` for scopes of up to ``SCOPE_TOKENS``
files, ``user_id : "u" AND text : (...)`` otherwise, with the file filter applied to
the matched rows only (a primary-key join). The old form, ``rowid IN (SELECT id ...
WHERE file_id IN ...)``, made SQLite evaluate the MATCH once per passage id.

Ranking is BM25 with FTS5's constants (k1 = 1.2, b = 0.75) computed here from the
*user's* statistics: the number of the user's passages (``knowledge_fts_stats``,
kept by triggers in the same transaction as each insert or delete), their mean
length in characters, and per word the number of the user's passages holding it
(counted in the index at query time). FTS5's own ``bm25()`` counts every user's
passages, so one user's uploads would move another's ranking and hint at what
others hold. Term frequencies of the matched passages come from
``knowledge_fts_terms`` (an ``fts5vocab`` instance table) or ``highlight()``,
whichever reads fewer rows. Nothing is cached but stems (a pure function).

PostgreSQL: ``search_tsv @@ query`` with the owner and file predicates in the same
query, ranked by ``ts_rank_cd`` (which uses no statistics across passages), over
``knowledge_fts_pg``: a narrow copy of each passage's owner, file and tsvector kept by
a trigger (migration 0017), since reading the wide ``knowledge_chunks`` rows (text,
embedding, tsvector out of line) made each touched passage cost several page reads.
Queries are planned for their values (``plan_cache_mode``), never generically.

User input never reaches either query language as syntax: it is split into words
(letters and digits), stop words are dropped, each word is quoted, and the words are
OR-ed. Words found in many passages *of the scope* (``TERM_LIMITS``) are dropped when
rarer ones exist, and required together (AND) when all are common: ranking cost
grows with every matching row. Those counts are exact and uncached too.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["keyword_scored", "keyword_search", "keyword_terms"]

MAX_TERMS = 32
# (common word: in more passages than this, rank at most this many passages) per backend:
# PostgreSQL reads each matching row (and its tsvector) from the table, about ten times
# the cost per row, so it prunes earlier.
TERM_LIMITS = {"sqlite": (5_000, 10_000), "postgresql": (1_500, 3_000)}
MAX_RANKED_TERMS = 6
# Scopes of up to this many files are tokens inside the MATCH; bigger ones filter the
# owner's matches by file (an OR of thousands of tokens costs more than the join).
SCOPE_TOKENS = 64
# The vocabulary scan (about a microsecond per occurrence) is chosen while the word's
# passages (all users') are at most this many times the candidates; otherwise
# highlight() seeks and re-reads each candidate (tens of microseconds each).
VOCAB_SCAN_FACTOR = 50
# PostgreSQL: the scope is one array parameter; planning ``IN`` with one parameter per
# file cost 15-50 ms at 2,000 files, more than the search.
PG_FILES = "ANY(CAST(:fids AS varchar[]))"
BM25_K1 = 1.2
BM25_B = 0.75
_WORD = re.compile(r"[^\W_]+")
_SAFE = re.compile(r"^[0-9A-Za-z]+$")
_stems: dict[str, str] = {}  # word -> FTS5 porter stem: a pure function, safe to keep
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


class _Scope:
    """Where a query looks: the owner, and optionally some of the owner's files."""

    def __init__(self, sqlite: bool, user_id: str, file_ids: Sequence[str] | None) -> None:
        self.sqlite = sqlite
        self.user_id = user_id
        self.file_ids = list(file_ids) if file_ids is not None else None
        small = self.file_ids is not None and len(self.file_ids) <= SCOPE_TOKENS
        self.file_tokens = small and all(_SAFE.match(f) for f in self.file_ids or [])
        # Generated ids are always safe; anything else is filtered by the join only.
        self.owner_token = bool(_SAFE.match(user_id))

    def match(self, words: str, owner_only: bool = False) -> str:
        """An FTS5 query: the scope's tokens AND the words (quoted, never user syntax)."""
        if self.file_tokens and not owner_only:
            files = " OR ".join(f'"{f}"' for f in self.file_ids or [])
            return f"file_id : ({files}) AND text : ({words})"
        if self.owner_token:
            return f'user_id : "{self.user_id}" AND text : ({words})'
        return f"text : ({words})"

    def matched_rows(self, columns: str, q: str = "q", owner_only: bool = False) -> str:
        """SELECT over the scope's passages matching ``:q``, driven by the MATCH: FTS5
        first, then each matched row's owner, file and length from the compact
        ``knowledge_fts_docs`` (by primary key). Owner and file are checked there even
        when their tokens are in the MATCH: a file id of another user finds nothing."""
        if self.sqlite:
            files = "" if owner_only or self.file_ids is None else " AND d.file_id IN :fids"
            return (
                f"SELECT {columns} FROM knowledge_fts CROSS JOIN knowledge_fts_docs AS d"  # noqa: S608
                f" ON d.id = knowledge_fts.rowid WHERE knowledge_fts MATCH :{q}"
                " AND d.user_id = :uid" + files
            )
        files = "" if owner_only or self.file_ids is None else f" AND c.file_id = {PG_FILES}"
        return (
            f"SELECT {columns} FROM knowledge_fts_pg AS c"  # noqa: S608
            f" WHERE c.search_tsv @@ to_tsquery('english', :{q}) AND c.user_id = :uid" + files
        )

    def query(self, words: list[str], every: bool, owner_only: bool = False) -> str:
        """The value of ``:q`` for these (already safe) words."""
        if self.sqlite:
            joined = (" AND " if every else " OR ").join(f'"{t}"' for t in words)
            return self.match(joined, owner_only)
        return (" & " if every else " | ").join(f"'{t}'" for t in words)

    def params(self, owner_only: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"uid": self.user_id}
        if self.file_ids is not None and not owner_only:
            out["fids"] = self.file_ids
        return out

    def bind(self, statement: Any, owner_only: bool = False) -> Any:
        if self.sqlite and self.file_ids is not None and not owner_only:
            return statement.bindparams(bindparam("fids", expanding=True))
        return statement


async def keyword_search(
    session: AsyncSession,
    user_id: str,
    query: str,
    file_ids: Sequence[str] | None = None,
    limit: int = 50,
) -> list[int]:
    """Chunk ids of ``user_id`` best matching ``query``, best first."""
    found = await keyword_scored(session, user_id, query, file_ids, limit)
    return [chunk_id for chunk_id, _ in found]


async def keyword_scored(
    session: AsyncSession,
    user_id: str,
    query: str,
    file_ids: Sequence[str] | None = None,
    limit: int = 50,
) -> list[tuple[int, float]]:
    """(chunk id, score) of ``user_id``'s passages best matching ``query``, best first:
    BM25 over the user's statistics on SQLite, ``ts_rank_cd`` on PostgreSQL."""
    terms = keyword_terms(query)
    if not terms or (file_ids is not None and not file_ids):
        return []
    scope = _Scope(session.get_bind().dialect.name == "sqlite", user_id, file_ids)
    if not scope.sqlite:
        # asyncpg's prepared statements turn generic after five runs: planned without the
        # words and the scope, a rare word's query is planned as for any word.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    stats = await _statistics(session, scope, terms)
    terms, all_common = _selective_terms(scope, terms, stats.holding)
    if not all_common:
        return await _ranked(session, scope, stats, terms, False, limit)
    if scope.sqlite:
        # Counts stopped at the pruning threshold; BM25 over common words, and which of
        # them are rarest, need them exact: count these few again, to the end.
        stats = await _statistics(session, scope, terms, exact=True)
        terms, _ = _selective_terms(scope, terms, stats.holding)
    # Only common words: passages with all of them, else with the two rarest together,
    # else any passage with the rarest (the costly case, now the last resort).
    attempts = [(terms, True)] + ([(terms[:2], True)] if len(terms) > 2 else [])
    for subset, every in [*attempts, (terms[:1], False)]:
        found = await _ranked(session, scope, stats, subset, every, limit)
        if found:
            return found
    return []


@dataclass(slots=True)
class _Statistics:
    """The owner's: passages, their characters, and per word the passages holding it
    (exact up to the pruning threshold, ``common + 1`` meaning "more", unless counted
    with ``exact``)."""

    passages: int
    chars: int
    holding: dict[str, int]


async def _statistics(
    session: AsyncSession, scope: _Scope, terms: list[str], exact: bool = False
) -> _Statistics:
    """All counts in one round trip, read at every query: another user's passages never
    enter the ranking, and a file uploaded or deleted a moment ago already counts.

    A word's count stops at ``common + 1`` (``TERM_LIMITS``): past it the word is
    dropped as common anyway, and counting every one of a common word's passages was
    most of a query's time (a word in 50,000 passages, counted to the end, costs more
    than ranking the rare words' few thousand). ``exact`` counts to the end."""
    values: dict[str, Any] = {"uid": scope.user_id}
    values["cap"] = TERM_LIMITS["sqlite" if scope.sqlite else "postgresql"][0] + 1
    limit = "" if exact else " LIMIT :cap"
    # Only numbered parameter names enter the SQL (S608); the words are bound values.
    if scope.sqlite:
        parts = [
            "(SELECT passages FROM knowledge_fts_stats WHERE user_id = :uid)",
            "(SELECT chars FROM knowledge_fts_stats WHERE user_id = :uid)",
        ]
        for i, term in enumerate(terms):
            if scope.owner_token:  # the index alone answers
                rows = f"SELECT 1 FROM knowledge_fts WHERE knowledge_fts MATCH :o{i}"  # noqa: S608
            else:  # never for generated ids: count through the join instead
                rows = scope.matched_rows("1", f"o{i}", True)
            parts.append(f"(SELECT count(*) FROM ({rows}{limit}))")  # noqa: S608
            values[f"o{i}"] = scope.query([term], False, owner_only=True)
    else:  # ts_rank_cd needs no totals
        parts = ["0", "0"]
        for i, term in enumerate(terms):
            rows = scope.matched_rows("1", f"o{i}", owner_only=True)
            parts.append(f"(SELECT count(*) FROM ({rows}{limit}) AS hits)")  # noqa: S608
            values[f"o{i}"] = scope.query([term], False)
    row = (await session.execute(text("SELECT " + ", ".join(parts)), values)).one()
    return _Statistics(
        int(row[0] or 0), int(row[1] or 0), {t: int(row[2 + i]) for i, t in enumerate(terms)}
    )


async def _ranked(
    session: AsyncSession,
    scope: _Scope,
    stats: _Statistics,
    terms: list[str],
    every: bool,
    limit: int,
) -> list[tuple[int, float]]:
    q = scope.query(terms, every)
    if scope.sqlite:
        return await _bm25(session, scope, stats, terms, q, limit)
    statement = scope.bind(
        text(
            "SELECT c.id, ts_rank_cd(c.search_tsv, query) AS score"  # noqa: S608
            " FROM knowledge_fts_pg AS c, to_tsquery('english', :q) AS query"
            " WHERE c.search_tsv @@ query AND c.user_id = :uid"
            + ("" if scope.file_ids is None else f" AND c.file_id = {PG_FILES}")
            + " ORDER BY score DESC, c.id LIMIT :limit"
        )
    )
    params = scope.params()
    params.update(q=q, limit=limit)
    return [(int(r[0]), float(r[1])) for r in await session.execute(statement, params)]


async def _bm25(
    session: AsyncSession, scope: _Scope, stats: _Statistics, terms: list[str], q: str, limit: int
) -> list[tuple[int, float]]:
    """SQLite: the passages matching ``q`` in the scope, by BM25 over the owner's statistics."""
    # Rows come back as one JSON array each (built in SQLite, parsed in C): thousands of
    # candidates cost milliseconds instead of a Python object per row.
    statement = scope.bind(
        text(
            "SELECT json_group_array(id), json_group_array(chars) FROM ("  # noqa: S608
            + scope.matched_rows("knowledge_fts.rowid AS id, d.chars AS chars")
            + ")"
        )
    )
    params = scope.params()
    params["q"] = q
    ids_json, chars_json = (await session.execute(statement, params)).one()
    ids = np.asarray(json.loads(ids_json or "[]"), dtype=np.int64)
    if not len(ids):
        return []
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    lengths = np.asarray(json.loads(chars_json), dtype=np.float64)[order]
    stems = await _stem(session, terms)
    mean_length = stats.chars / stats.passages if stats.passages and stats.chars else 1.0
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / mean_length)
    frequencies = await _frequencies(session, terms, stems, ids)
    scores = np.zeros(len(ids), dtype=np.float64)
    for term in terms:
        holding, passages = stats.holding[term], stats.passages
        idf = math.log((passages - holding + 0.5) / (holding + 0.5)) if passages else 0.0
        tf = frequencies[stems[term]]
        scores += max(idf, 1e-6) * tf * (BM25_K1 + 1) / (tf + norm)  # as FTS5: idf >= 1e-6
    best = np.lexsort((ids, -scores))[:limit]  # best score first, then the lower id
    return [(int(ids[i]), float(scores[i])) for i in best]


async def _frequencies(
    session: AsyncSession,
    terms: list[str],
    stems: dict[str, str],
    ids: npt.NDArray[np.int64],
) -> dict[str, npt.NDArray[np.float64]]:
    """How often each word occurs in each candidate passage (``ids``, sorted), per stem.
    Two ways, by cost: the ``fts5vocab`` instance table lists a word's occurrences in
    every passage (cheap per row, but all users' rows); ``highlight()`` re-reads only
    the scope's passages holding it (costly per row: it reads and tokenizes the text).
    The choice depends on sizes only (every user's passages holding the word, counted
    up to ``VOCAB_SCAN_FACTOR`` times the candidates) and never changes the answer."""
    found: dict[str, npt.NDArray[np.float64]] = {}
    words = list({stems[t]: t for t in reversed(terms)}.values())[::-1]  # one per stem
    cap = VOCAB_SCAN_FACTOR * len(ids)
    parts = [
        f"(SELECT count(*) FROM (SELECT 1 FROM knowledge_fts WHERE knowledge_fts MATCH :a{i}"  # noqa: S608
        " LIMIT :cap))"
        for i in range(len(words))
    ]
    values: dict[str, Any] = {f"a{i}": f'text : "{w}"' for i, w in enumerate(words)}
    values["cap"] = cap + 1
    counted = (await session.execute(text("SELECT " + ", ".join(parts)), values)).one()
    for i, term in enumerate(words):
        stem = stems[term]
        if int(counted[i]) <= cap:
            statement = text(
                "SELECT json_group_array(doc) FROM knowledge_fts_terms"
                " WHERE term = :s AND col = 'text'"
            )
            (docs_json,) = (await session.execute(statement, {"s": stem})).one()
            docs, counts = np.unique(np.asarray(json.loads(docs_json or "[]")), return_counts=True)
        else:
            # Only the candidates: FTS5 seeks each id in the word's list (no scan).
            statement = text(
                "SELECT rowid, highlight(knowledge_fts, 0, char(1), '') FROM knowledge_fts"
                " WHERE knowledge_fts MATCH :q AND rowid IN (SELECT value FROM json_each(:ids))"
            )
            params = {"q": f'text : "{term}"', "ids": json.dumps(ids.tolist())}
            rows = (await session.execute(statement, params)).all()
            docs = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
            counts = np.asarray([str(r[1]).count("\x01") for r in rows], dtype=np.int64)
        tf = np.zeros(len(ids), dtype=np.float64)
        if len(docs):
            at = np.clip(np.searchsorted(ids, docs), 0, len(ids) - 1)
            hit = ids[at] == docs
            tf[at[hit]] = counts[hit]
        found[stem] = tf
    return found


async def _stem(session: AsyncSession, terms: list[str]) -> dict[str, str]:
    """Each word's token as the index stores it (FTS5's porter tokenizer, asked directly)."""
    missing = [t for t in terms if t not in _stems]
    if missing:
        await session.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.parley_stem"
                " USING fts5(word, tokenize='porter unicode61 remove_diacritics 2')"
            )
        )
        await session.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.parley_stem_terms"
                " USING fts5vocab(parley_stem, instance)"
            )
        )
        await session.execute(
            text("INSERT INTO temp.parley_stem (rowid, word) VALUES (:i, :w)"),
            [{"i": i + 1, "w": w} for i, w in enumerate(missing)],
        )
        rows = await session.execute(text("SELECT doc, term FROM temp.parley_stem_terms"))
        if len(_stems) > 100_000:
            _stems.clear()
        for doc, stem in rows:
            _stems[missing[int(doc) - 1]] = str(stem)
        await session.execute(text("DELETE FROM temp.parley_stem"))
    return {t: _stems.get(t, t) for t in terms}


def _selective_terms(
    scope: _Scope, terms: list[str], counts: dict[str, int]
) -> tuple[list[str], bool]:
    """Drop words found in more than ``common`` of the owner's passages when rarer ones
    exist, keeping the rarest (at most ``MAX_RANKED_TERMS``, matching at most
    ``ranked_rows`` passages together unless one alone does; ``TERM_LIMITS``): ranking
    costs per matching row, and a word in most passages adds cost but almost no ranking
    signal. Small libraries are never pruned.

    Returns (terms, all_common): when every word is common, the caller requires them all
    (AND) instead of ranking tens of thousands of rows that match any one of them."""
    if len(terms) <= 1:
        return terms, False
    common, ranked_rows = TERM_LIMITS["sqlite" if scope.sqlite else "postgresql"]
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
