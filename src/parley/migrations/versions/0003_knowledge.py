"""Files and knowledge: collections, files, chunks, and their keyword indexes.

Keyword search differs per dialect (like migration 0001):

- SQLite: an FTS5 table ``knowledge_fts`` with external content over
  ``knowledge_chunks`` (porter stemming), kept in step by triggers.
- PostgreSQL: a generated ``search_tsv`` column (English configuration) with a
  GIN index.

Dense vectors are float32 bytes in ``knowledge_chunks.embedding`` everywhere;
with pgvector, the feature also keeps a ``knowledge_vectors`` table (made at
start-up when the extension is available, so a server without it still works).

Revision ID: 0003_knowledge
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parley.storage.tables import UTCDateTime

revision: str = "0003_knowledge"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_INDEXED_CHARS = 100_000

_SQLITE_FTS = [
    """CREATE VIRTUAL TABLE knowledge_fts USING fts5(
        text, user_id,
        content='knowledge_chunks', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER knowledge_fts_ai AFTER INSERT ON knowledge_chunks BEGIN
        INSERT INTO knowledge_fts(rowid, text, user_id) VALUES (new.id, new.text, new.user_id);
    END""",
    """CREATE TRIGGER knowledge_fts_ad AFTER DELETE ON knowledge_chunks BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, text, user_id)
        VALUES ('delete', old.id, old.text, old.user_id);
    END""",
    """CREATE TRIGGER knowledge_fts_au AFTER UPDATE OF text, user_id ON knowledge_chunks
    WHEN old.text IS NOT new.text OR old.user_id IS NOT new.user_id BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, text, user_id)
        VALUES ('delete', old.id, old.text, old.user_id);
        INSERT INTO knowledge_fts(rowid, text, user_id) VALUES (new.id, new.text, new.user_id);
    END""",
]

_PG_FTS = [
    f"""ALTER TABLE knowledge_chunks ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('english'::regconfig, left(text, {PG_INDEXED_CHARS}))) STORED""",
    "CREATE INDEX ix_search_knowledge_chunks ON knowledge_chunks USING gin (search_tsv)",
]


def upgrade() -> None:
    op.create_table(
        "knowledge_collections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("project_id", sa.String(32)),
        sa.Column("assistant_id", sa.String(32)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_knowledge_collections_user_id", "knowledge_collections", ["user_id"])

    op.create_table(
        "knowledge_files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        ),
        sa.Column(
            "collection_id",
            sa.String(32),
            sa.ForeignKey("knowledge_collections.id", ondelete="CASCADE"),
        ),
        sa.Column("message_id", sa.String(32)),
        sa.Column("project_id", sa.String(32)),
        sa.Column("assistant_id", sa.String(32)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error", sa.String(1000)),
        sa.Column("pages", sa.Integer()),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("embedded_count", sa.Integer(), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embed_model", sa.String(200)),
        sa.Column("claimed_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_knowledge_files_user_created", "knowledge_files", ["user_id", "created_at"])
    op.create_index("ix_knowledge_files_sha256", "knowledge_files", ["sha256"])
    op.create_index("ix_knowledge_files_status", "knowledge_files", ["status"])
    op.create_index("ix_knowledge_files_conversation_id", "knowledge_files", ["conversation_id"])
    op.create_index("ix_knowledge_files_collection_id", "knowledge_files", ["collection_id"])

    op.create_table(
        "knowledge_chunks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "file_id",
            sa.String(32),
            sa.ForeignKey("knowledge_files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("page", sa.Integer()),
        sa.Column("section", sa.String(500)),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary()),
        sa.Column("embed_model", sa.String(200)),
    )
    op.create_index("ix_knowledge_chunks_file_ordinal", "knowledge_chunks", ["file_id", "ordinal"])
    op.create_index(
        "ix_knowledge_chunks_user_model", "knowledge_chunks", ["user_id", "embed_model"]
    )

    op.create_table(
        "knowledge_conversation_collections",
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "collection_id",
            sa.String(32),
            sa.ForeignKey("knowledge_collections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_knowledge_conversation_collections_collection_id",
        "knowledge_conversation_collections",
        ["collection_id"],
    )
    op.create_index(
        "ix_knowledge_conversation_collections_user_id",
        "knowledge_conversation_collections",
        ["user_id"],
    )

    statements = _SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else _PG_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("knowledge_fts_ai", "knowledge_fts_ad", "knowledge_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS knowledge_fts")
    else:
        op.execute("DROP TABLE IF EXISTS knowledge_vectors")
    op.drop_table("knowledge_conversation_collections")
    op.drop_table("knowledge_chunks")
    op.drop_table("knowledge_files")
    op.drop_table("knowledge_collections")
