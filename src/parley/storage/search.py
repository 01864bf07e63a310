"""Full-text search over a user's conversation titles and messages.

The index does the matching and ranking (FTS5 + bm25 on SQLite, a GIN-indexed
tsvector + ts_rank on PostgreSQL; see migration 0001). User input never reaches
either query language as syntax: it is split into words, each word is quoted,
and the last one becomes a prefix so search works while typing. So ``"``, ``*``,
``NEAR(``, ``-``, ``:`` or unbalanced parentheses are just separators.

Snippets are plain text cut around the first match, with highlight ranges
computed here in Python (character offsets into the snippet), so nothing from
the database is ever rendered as HTML.

One hit per conversation: conversations whose title matches come first (by
title rank), then conversations whose messages match (by their best message).
A conversation that matches both shows its best message as the snippet.

Ranking cost is bounded: messages are ranked within windows of the user's
``WINDOW`` newest matching messages (newest window first), so a word found in
every message ("the") costs the same as a rare one instead of ranking 100,000
rows. Below ``WINDOW`` matches the ranking is exact.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from parley.storage.tables import Conversation, Message

__all__ = [
    "SearchHit",
    "make_snippet",
    "query_terms",
    "rebuild_search_index",
    "search_conversations",
]

MAX_TERMS = 16
MAX_TERM_CHARS = 64
SNIPPET_CHARS = 200
MIN_PREFIX_CHARS = 3  # shorter last words match whole words only: "a*" would scan everything
WINDOW = 2000
MAX_WINDOWS = 5
_SNIPPET_SOURCE_CHARS = 100_000  # longer messages are snippeted from their start
# Words as both indexes see them: runs of letters and digits (FTS5 unicode61 and
# PostgreSQL's parser both split on everything else, underscore included).
_WORD = re.compile(r"[^\W_]+")
_SAFE_TOKEN = re.compile(r"[0-9A-Za-z]+")
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(slots=True)
class SearchHit:
    conversation_id: str
    title: str
    message_id: str | None
    snippet: str
    highlights: list[tuple[int, int]] = field(default_factory=list)


def _fold(word: str) -> str:
    """Lower case without diacritics, as FTS5 ``remove_diacritics 2`` compares."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def query_terms(query: str) -> list[str]:
    """The distinct words of ``query`` (lower case, at most ``MAX_TERMS``)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(unicodedata.normalize("NFKC", query)):
        seen.setdefault(word.lower()[:MAX_TERM_CHARS], None)
    return list(seen)[:MAX_TERMS]


class _Matcher:
    """Decides which words of a text match the query, mirroring the index."""

    def __init__(self, terms: Sequence[str]) -> None:
        folded = [_fold(t) for t in terms]
        self.prefix = folded.pop() if terms and len(terms[-1]) >= MIN_PREFIX_CHARS else None
        self.exact = set(folded)

    def spans(self, text_: str) -> Iterator[tuple[int, int]]:
        for match in _WORD.finditer(text_):
            word = _fold(match.group())
            if word in self.exact or (self.prefix is not None and word.startswith(self.prefix)):
                yield match.span()


def make_snippet(
    source: str, terms: Sequence[str], width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """A plain-text excerpt of ``source`` around its first match, whitespace
    collapsed, with ``…`` where it was cut, and the matched words' ranges."""
    matcher = _Matcher(terms)
    first = next(matcher.spans(source), None)
    start = 0 if first is None else max(0, first[0] - width // 4)
    end = min(len(source), start + width)
    if first is not None and end < first[1]:  # a single very long word
        end = first[1]
    if start > 0:  # do not start in the middle of a word
        cut = next(
            (i for i in range(start, first[0] if first else end) if source[i].isspace()), None
        )
        start = cut + 1 if cut is not None else start
    if end < len(source):
        cut = _last_space(source, first[1] if first else start, end)
        end = cut if cut is not None else end
    body = " ".join(source[start:end].split())
    snippet = ("…" if start > 0 else "") + body + ("…" if end < len(source) else "")
    return snippet, list(matcher.spans(snippet))


def _last_space(source: str, lo: int, hi: int) -> int | None:
    for index in range(min(hi, len(source)) - 1, lo - 1, -1):
        if source[index].isspace():
            return index
    return None


async def search_conversations(
    session: AsyncSession, user_id: str, query: str, limit: int = 20
) -> list[SearchHit]:
    """Conversations of ``user_id`` (temporary ones excluded) matching ``query``."""
    terms = query_terms(query)
    if not terms:
        return []
    limit = max(1, min(int(limit), 100))
    backend = (
        _Sqlite(session, user_id, terms)
        if _is_sqlite(session)
        else _Postgres(session, user_id, terms)
    )
    titled = await backend.title_matches(limit)
    best_messages = await _best_messages(backend, limit)

    order = list(titled)
    order += [conv_id for conv_id in best_messages if conv_id not in titled]
    order = order[:limit]
    wanted = [best_messages[c] for c in order if c in best_messages]
    found: dict[str, tuple[str, str]] = {}
    if wanted:
        rows = await session.execute(
            select(
                Message.id,
                func.substr(Message.content, 1, _SNIPPET_SOURCE_CHARS),
                Conversation.title,
                Conversation.user_id,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            # By primary key only (a user_id filter can lure SQLite's planner into
            # walking all the user's messages); ownership is re-checked below.
            .where(Message.id.in_(wanted))
        )
        found = {
            message_id: (content, title)
            for message_id, content, title, owner in rows
            if owner == user_id
        }

    hits: list[SearchHit] = []
    for conv_id in order:
        message_id = best_messages.get(conv_id)
        if message_id is not None and message_id in found:
            content, title = found[message_id]
            snippet, highlights = make_snippet(content, terms)
        else:
            message_id, title = None, titled[conv_id]
            snippet, highlights = make_snippet(title, terms)
        hits.append(SearchHit(conv_id, title, message_id, snippet, highlights))
    return hits


class _Candidate(NamedTuple):
    message_id: str
    conversation_id: str
    score: float  # higher is better
    key: Any  # position in newest-first order, to continue after this row


class _Backend(Protocol):
    async def title_matches(self, limit: int) -> dict[str, str]: ...

    async def message_window(self, before: Any, size: int) -> list[_Candidate]: ...


async def _best_messages(backend: _Backend, limit: int) -> dict[str, str]:
    """conversation id -> its best message id, best conversations first."""
    best: dict[str, str] = {}
    before: Any = None
    for _ in range(MAX_WINDOWS):
        window = await backend.message_window(before, WINDOW)
        # sorted() is stable: among equal scores the newer message wins.
        for candidate in sorted(window, key=lambda c: -c.score):
            best.setdefault(candidate.conversation_id, candidate.message_id)
            if len(best) >= limit:
                return best
        if len(window) < WINDOW:
            break
        before = window[-1].key
    return best


async def rebuild_search_index(session: AsyncSession) -> None:
    """Rebuild SQLite's FTS indexes from the tables (after a VACUUM, which may
    renumber the implicit rowids they point at). PostgreSQL needs nothing."""
    if _is_sqlite(session):
        await session.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')"))
        await session.execute(
            text("INSERT INTO conversations_fts(conversations_fts) VALUES ('rebuild')")
        )


def _is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


class _Sqlite:
    """FTS5. Rows come newest first (rowid order) so a window stops early."""

    def __init__(self, session: AsyncSession, user_id: str, terms: list[str]) -> None:
        self.session = session
        self.user_id = user_id
        words = [f'"{t}"' for t in terms]
        if len(terms[-1]) >= MIN_PREFIX_CHARS:
            words[-1] += "*"
        self.words = " ".join(words)
        # Intersecting with the user's token keeps the scan to that user's rows;
        # the SQL filters remain the authority on ownership.
        self.owner = f'user_id : "{user_id}" AND ' if _SAFE_TOKEN.fullmatch(user_id) else ""

    def match(self, column: str) -> str:
        return f"{self.owner}{column} : ({self.words})"

    async def title_matches(self, limit: int) -> dict[str, str]:
        rows = await self.session.execute(
            text(
                "SELECT c.id, c.title FROM conversations_fts"
                " JOIN conversations AS c ON c.rowid = conversations_fts.rowid"
                " WHERE conversations_fts MATCH :q AND c.user_id = :uid AND c.temporary = 0"
                " ORDER BY bm25(conversations_fts, 1.0, 0.0), c.updated_at DESC, c.id"
                " LIMIT :limit"
            ),
            {"q": self.match("title"), "uid": self.user_id, "limit": limit},
        )
        return {conv_id: title for conv_id, title in rows}

    async def message_window(self, before: Any, size: int) -> list[_Candidate]:
        rows = await self.session.execute(
            text(
                "SELECT m.id, m.conversation_id, -bm25(messages_fts, 1.0, 0.0),"
                " messages_fts.rowid FROM messages_fts"
                " JOIN messages AS m ON m.rowid = messages_fts.rowid"
                " JOIN conversations AS c ON c.id = m.conversation_id"
                " WHERE messages_fts MATCH :q AND messages_fts.rowid < :before"
                " AND m.user_id = :uid AND c.user_id = :uid AND c.temporary = 0"
                " ORDER BY messages_fts.rowid DESC LIMIT :size"
            ),
            {
                "q": self.match("content"),
                "uid": self.user_id,
                "before": (1 << 63) - 1 if before is None else before,
                "size": size,
            },
        )
        return [_Candidate(*row) for row in rows]


class _Postgres:
    """tsvector columns: GIN (or the user's newest rows, for common words) finds
    the window, ts_rank orders it."""

    def __init__(self, session: AsyncSession, user_id: str, terms: list[str]) -> None:
        self.session = session
        self.user_id = user_id
        words = [f"'{t}'" for t in terms]  # letters and digits only: nothing to escape
        if len(terms[-1]) >= MIN_PREFIX_CHARS:
            words[-1] += ":*"
        self.params: dict[str, Any] = {"q": " & ".join(words), "uid": user_id}

    async def title_matches(self, limit: int) -> dict[str, str]:
        rows = await self.session.execute(
            text(
                "SELECT c.id, c.title FROM conversations AS c,"
                " to_tsquery('simple', :q) AS query"
                " WHERE c.search_tsv @@ query AND c.user_id = :uid AND NOT c.temporary"
                " ORDER BY ts_rank(c.search_tsv, query) DESC, c.updated_at DESC, c.id"
                " LIMIT :limit"
            ),
            {**self.params, "limit": limit},
        )
        return {conv_id: title for conv_id, title in rows}

    async def message_window(self, before: Any, size: int) -> list[_Candidate]:
        # The best plan depends on how common the words are (walk the newest rows,
        # or GIN); a cached generic plan cannot know, so plan each query afresh.
        await self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        before_at, before_id = before or (_END_OF_TIME, "")
        rows = await self.session.execute(
            text(
                # ts_rank outside the LIMIT: computed for the window only.
                "SELECT w.id, w.conversation_id, ts_rank(w.search_tsv, query),"
                " w.created_at, w.id FROM ("
                " SELECT m.id, m.conversation_id, m.search_tsv, m.created_at"
                " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
                " WHERE m.search_tsv @@ to_tsquery('simple', :q)"
                " AND m.user_id = :uid AND c.user_id = :uid AND NOT c.temporary"
                " AND (:first OR (m.created_at, m.id) < (:before_at, :before_id))"
                " ORDER BY m.created_at DESC, m.id DESC LIMIT :size"
                ") AS w, to_tsquery('simple', :q) AS query"
                " ORDER BY w.created_at DESC, w.id DESC"
            ),
            {
                **self.params,
                "size": size,
                "first": before is None,
                "before_at": before_at,
                "before_id": before_id,
            },
        )
        return [_Candidate(r[0], r[1], float(r[2]), (r[3], r[4])) for r in rows]
