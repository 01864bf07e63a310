"""Keyword search scoped inside the index, ranked by each user's own statistics.

SQLite:

- ``knowledge_fts`` is made again with a third indexed column, ``file_id``, so a
  search within a few files puts them in the MATCH (``file_id : ("f1" OR "f2")``)
  and FTS5 drives the query; rebuilt from ``knowledge_chunks`` (the backfill).
- ``knowledge_fts_terms``: an ``fts5vocab`` instance table over it, for the term
  frequencies of the matched passages.
- ``knowledge_fts_docs``: per passage its owner, file and length in characters, a
  compact copy (no text) that the search joins matched rows to: reading the
  passages' own rows (with their text) cost several times more per match.
- ``knowledge_fts_stats``: per user, the number of passages and their characters,
  for BM25 over the user's own passages. Both are kept by the same triggers as
  the index (one transaction with the write) and backfilled here.

PostgreSQL: a ``(user_id, file_id)`` index on ``knowledge_chunks``, so the scope
predicate beside ``search_tsv @@ query`` is answered from an index too.

Revision ID: 0013_scoped_keyword
Revises: 0012_web_search_config
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013_scoped_keyword"
down_revision: str | None = "0012_web_search_config"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENIZE = "tokenize='porter unicode61 remove_diacritics 2'"
_STATS_ADD = """
    INSERT INTO knowledge_fts_docs(id, user_id, file_id, chars)
    VALUES (new.id, new.user_id, new.file_id, length(new.text));
    INSERT INTO knowledge_fts_stats(user_id, passages, chars)
    VALUES (new.user_id, 1, length(new.text))
    ON CONFLICT(user_id) DO UPDATE SET passages = passages + 1, chars = chars + excluded.chars;"""
_STATS_REMOVE = """
    DELETE FROM knowledge_fts_docs WHERE id = old.id;
    UPDATE knowledge_fts_stats SET passages = passages - 1, chars = chars - length(old.text)
    WHERE user_id = old.user_id;
    DELETE FROM knowledge_fts_stats WHERE user_id = old.user_id AND passages <= 0;"""


def _sqlite_index(columns: Sequence[str], stats: bool) -> list[str]:
    """Drop and make again ``knowledge_fts`` over ``columns`` of ``knowledge_chunks``, its
    triggers (keeping ``knowledge_fts_stats`` too when ``stats``), and rebuild it."""
    names = ", ".join(columns)  # fixed column names below, never input
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    add = f"\n    INSERT INTO knowledge_fts(rowid, {names}) VALUES (new.id, {new});"  # noqa: S608
    remove = (
        f"\n    INSERT INTO knowledge_fts(knowledge_fts, rowid, {names})"  # noqa: S608
        f" VALUES ('delete', old.id, {old});"
    )
    if stats:
        add, remove = add + _STATS_ADD, remove + _STATS_REMOVE
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)
    return [
        *(f"DROP TRIGGER IF EXISTS knowledge_fts_{n}" for n in ("ai", "ad", "au")),
        "DROP TABLE IF EXISTS knowledge_fts_terms",
        "DROP TABLE IF EXISTS knowledge_fts",
        f"CREATE VIRTUAL TABLE knowledge_fts USING fts5({names},"
        f" content='knowledge_chunks', content_rowid='id', {_TOKENIZE})",
        f"CREATE TRIGGER knowledge_fts_ai AFTER INSERT ON knowledge_chunks BEGIN{add}\nEND",
        f"CREATE TRIGGER knowledge_fts_ad AFTER DELETE ON knowledge_chunks BEGIN{remove}\nEND",
        f"CREATE TRIGGER knowledge_fts_au AFTER UPDATE OF {names} ON knowledge_chunks"
        f" WHEN {changed} BEGIN{remove}{add}\nEND",
        "INSERT INTO knowledge_fts(knowledge_fts) VALUES ('rebuild')",
    ]


_SQLITE_UP = [
    *_sqlite_index(("text", "user_id", "file_id"), stats=True),
    "CREATE VIRTUAL TABLE knowledge_fts_terms USING fts5vocab(knowledge_fts, instance)",
    """CREATE TABLE knowledge_fts_docs (
        id INTEGER PRIMARY KEY,
        user_id VARCHAR(32) NOT NULL,
        file_id VARCHAR(32) NOT NULL,
        chars INTEGER NOT NULL
    )""",
    """CREATE TABLE knowledge_fts_stats (
        user_id VARCHAR(32) PRIMARY KEY,
        passages INTEGER NOT NULL,
        chars INTEGER NOT NULL
    )""",
    """INSERT INTO knowledge_fts_docs(id, user_id, file_id, chars)
    SELECT id, user_id, file_id, length(text) FROM knowledge_chunks""",
    """INSERT INTO knowledge_fts_stats(user_id, passages, chars)
    SELECT user_id, count(*), sum(chars) FROM knowledge_fts_docs GROUP BY user_id""",
]
_SQLITE_DOWN = [
    *_sqlite_index(("text", "user_id"), stats=False),
    "DROP TABLE IF EXISTS knowledge_fts_stats",
    "DROP TABLE IF EXISTS knowledge_fts_docs",
]

_PG_INDEX = "ix_search_knowledge_chunks_scope"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)
    else:
        op.execute(f"CREATE INDEX IF NOT EXISTS {_PG_INDEX} ON knowledge_chunks (user_id, file_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
    else:
        op.execute(f"DROP INDEX IF EXISTS {_PG_INDEX}")
