"""Knowledge: an HNSW index for pgvector searches (PostgreSQL only).

Exact ``<=>`` scans read every vector of a user (about 160 ms at 100,000).
With the ``vector`` extension available, this makes the ``knowledge_vectors``
table (until now made at start-up only) with a ``file_id`` index for scoped
exact scans, and an HNSW index for the default embedding model. The column is
an untyped ``vector`` (models differ in dimensions), so the index is a partial
expression index: ``(embedding::vector(384))`` where ``model`` is the default
one. Other models get theirs at run time (``parley.knowledge.pgvector``).
Without the extension, or on SQLite, nothing changes (numpy does dense search).

Revision ID: 0008_knowledge_ann
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_knowledge_ann"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODEL = "all-MiniLM-L6-v2"
DIM = 384
INDEX = f"knowledge_vectors_hnsw_{DIM}_{hashlib.sha1(MODEL.encode()).hexdigest()[:12]}"  # noqa: S324

_DDL = [
    "CREATE TABLE IF NOT EXISTS knowledge_vectors ("
    " chunk_id BIGINT PRIMARY KEY REFERENCES knowledge_chunks(id) ON DELETE CASCADE,"
    " user_id VARCHAR(32) NOT NULL, file_id VARCHAR(32) NOT NULL,"
    " model VARCHAR(200) NOT NULL, embedding vector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS knowledge_vectors_user_model ON knowledge_vectors (user_id, model)",
    "CREATE INDEX IF NOT EXISTS knowledge_vectors_file ON knowledge_vectors (file_id)",
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON knowledge_vectors"
    f" USING hnsw ((embedding::vector({DIM})) vector_cosine_ops)"
    f" WITH (m = 16, ef_construction = 64) WHERE model = '{MODEL}'",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    ).first()
    if available is None:
        return
    try:
        with bind.begin_nested():  # no privilege to create it: stay without pgvector
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:
        return
    for statement in _DDL:
        bind.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
        op.execute("DROP INDEX IF EXISTS knowledge_vectors_file")
