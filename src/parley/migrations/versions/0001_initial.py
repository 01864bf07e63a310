"""Initial schema: every table of tables.py plus full-text search.

Search lives outside tables.py because it differs per dialect:

- SQLite: FTS5 tables with external content (they index ``messages`` and
  ``conversations`` through their implicit rowid and store no second copy of the
  text), kept in step by triggers. The update triggers fire only when the
  indexed text changes, so streaming flushes of status or token counts cost
  nothing. ``user_id`` is indexed too so a user's search intersects with that
  user's rows instead of ranking everybody's.
- PostgreSQL: generated ``tsvector`` columns with GIN indexes, and an index on
  a user's newest messages for words that occur almost everywhere.

Both use the ``simple`` configuration (no stemming, no stop words) so the
highlights computed in Python agree with what the index matched.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL refuses tsvectors over 1 MB; a pasted book must not fail the insert.
PG_INDEXED_CHARS = 100_000

_SQLITE_FTS = [
    """CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, user_id,
        content='messages', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content, user_id)
        VALUES (new.rowid, new.content, new.user_id);
    END""",
    """CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content, user_id)
        VALUES ('delete', old.rowid, old.content, old.user_id);
    END""",
    """CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, user_id ON messages
    WHEN old.content IS NOT new.content OR old.user_id IS NOT new.user_id BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content, user_id)
        VALUES ('delete', old.rowid, old.content, old.user_id);
        INSERT INTO messages_fts(rowid, content, user_id)
        VALUES (new.rowid, new.content, new.user_id);
    END""",
    """CREATE VIRTUAL TABLE conversations_fts USING fts5(
        title, user_id,
        content='conversations', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER conversations_fts_ai AFTER INSERT ON conversations BEGIN
        INSERT INTO conversations_fts(rowid, title, user_id)
        VALUES (new.rowid, new.title, new.user_id);
    END""",
    """CREATE TRIGGER conversations_fts_ad AFTER DELETE ON conversations BEGIN
        INSERT INTO conversations_fts(conversations_fts, rowid, title, user_id)
        VALUES ('delete', old.rowid, old.title, old.user_id);
    END""",
    """CREATE TRIGGER conversations_fts_au AFTER UPDATE OF title, user_id ON conversations
    WHEN old.title IS NOT new.title OR old.user_id IS NOT new.user_id BEGIN
        INSERT INTO conversations_fts(conversations_fts, rowid, title, user_id)
        VALUES ('delete', old.rowid, old.title, old.user_id);
        INSERT INTO conversations_fts(rowid, title, user_id)
        VALUES (new.rowid, new.title, new.user_id);
    END""",
]

_PG_FTS = [
    f"""ALTER TABLE messages ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('simple'::regconfig, left(content, {PG_INDEXED_CHARS}))) STORED""",
    "CREATE INDEX ix_search_messages ON messages USING gin (search_tsv)",
    # A word in most messages is found faster by walking the user's newest rows.
    "CREATE INDEX ix_search_messages_recent ON messages (user_id, created_at, id)",
    """ALTER TABLE conversations ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('simple'::regconfig, title)) STORED""",
    "CREATE INDEX ix_search_conversations ON conversations USING gin (search_tsv)",
]


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("about_me", sa.Text(), nullable=False),
        sa.Column("response_style", sa.Text(), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("last_used_at", _ts(), nullable=True),
        sa.Column("revoked_at", _ts(), nullable=True),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("at", _ts(), nullable=False),
    )
    op.create_index("ix_login_attempts_key", "login_attempts", ["key"])
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("project_id", sa.String(32), nullable=True),
        sa.Column("assistant_id", sa.String(32), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("title_generated", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(300), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("temporary", sa.Boolean(), nullable=False),
        sa.Column("active_leaf_id", sa.String(32), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("summary_until_id", sa.String(32), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )
    op.create_index("ix_conversations_user_updated", "conversations", ["user_id", "updated_at"])
    op.create_index("ix_conversations_project_id", "conversations", ["project_id"])
    op.create_index("ix_conversations_assistant_id", "conversations", ["assistant_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(100), nullable=True),
        sa.Column("model", sa.String(300), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("finish_reason", sa.String(32), nullable=True),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("feedback", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )
    op.create_index(
        "ix_messages_conversation_created", "messages", ["conversation_id", "created_at"]
    )
    op.create_index("ix_messages_parent", "messages", ["parent_id"])
    op.create_index("ix_messages_user_id", "messages", ["user_id"])
    op.create_table(
        "providers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=True),
        sa.Column("api_key", sa.String(500), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_table(
        "app_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
    )

    statements = _SQLITE_FTS if op.get_context().dialect.name == "sqlite" else _PG_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for name in ("messages_fts", "conversations_fts"):
            op.execute(f"DROP TABLE IF EXISTS {name}")  # triggers go with their tables below
    for table in (
        "app_settings",
        "providers",
        "messages",
        "conversations",
        "login_attempts",
        "api_keys",
        "sessions",
        "users",
    ):
        op.drop_table(table)
