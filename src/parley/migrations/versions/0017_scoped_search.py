"""PostgreSQL keyword search on a narrow copy of each passage's search vector.

``knowledge_chunks`` rows are wide (text, float32 embedding, tsvector): PostgreSQL
moves their big values out of line (TOAST), so every passage a keyword query
touches cost three or more page reads, and counting a common word's passages for
the owner's statistics, or ranking a few thousand matches, read tens of thousands
of pages (0.5 s per query at 100,000 passages). ``knowledge_fts_pg`` keeps only
(id, owner, file, tsvector), the vector stored compressed inline (``STORAGE MAIN``),
with a GIN index on it and a btree on (owner, file): the same queries read a
fraction of the pages.

It is kept by a trigger on ``knowledge_chunks`` (insert, and an update of the text,
owner or file) in the same transaction as the write, and emptied by the foreign
key's cascade when a passage is deleted; the migration fills it from the existing
passages. SQLite: nothing (its index is FTS5, migration 0013).

Revision ID: 0017_scoped_search
Revises: 0014_memory_history
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_scoped_search"
down_revision: str | None = "0014_memory_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UP = [
    """CREATE TABLE knowledge_fts_pg (
        id BIGINT PRIMARY KEY REFERENCES knowledge_chunks(id) ON DELETE CASCADE,
        user_id VARCHAR(32) NOT NULL,
        file_id VARCHAR(32) NOT NULL,
        search_tsv tsvector NOT NULL
    )""",
    "ALTER TABLE knowledge_fts_pg ALTER COLUMN search_tsv SET STORAGE MAIN",
    """CREATE FUNCTION knowledge_fts_pg_sync() RETURNS trigger AS $$
    BEGIN
        INSERT INTO knowledge_fts_pg (id, user_id, file_id, search_tsv)
        VALUES (NEW.id, NEW.user_id, NEW.file_id, NEW.search_tsv)
        ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id,
            file_id = excluded.file_id, search_tsv = excluded.search_tsv;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER knowledge_fts_pg_sync AFTER INSERT OR UPDATE OF text, user_id, file_id
    ON knowledge_chunks FOR EACH ROW EXECUTE FUNCTION knowledge_fts_pg_sync()""",
    """INSERT INTO knowledge_fts_pg (id, user_id, file_id, search_tsv)
    SELECT id, user_id, file_id, search_tsv FROM knowledge_chunks""",
    "CREATE INDEX ix_search_knowledge_fts_pg ON knowledge_fts_pg USING gin (search_tsv)",
    "CREATE INDEX ix_search_knowledge_fts_pg_scope ON knowledge_fts_pg (user_id, file_id)",
]
_DOWN = [
    "DROP TRIGGER IF EXISTS knowledge_fts_pg_sync ON knowledge_chunks",
    "DROP FUNCTION IF EXISTS knowledge_fts_pg_sync()",
    "DROP TABLE IF EXISTS knowledge_fts_pg",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _DOWN:
            op.execute(statement)
