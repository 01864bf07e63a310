"""Memory: attribute keys, the history of replaced texts, and forget requests.

- ``memories.attribute``: the deterministic attribute key of a fact ("home.city"),
  so an update replaces a memory only when it states the same attribute (null:
  filled in lazily for older rows, see ``parley.memory.index``).
- ``memory_versions``: the text a memory had before each replacement, restorable
  from the memory page (cascade-deleted with the memory or the user).
- ``memory_forget_requests``: "forget ..." requests waiting for approval in the
  chat, and for a while after approval the deleted rows, for undo.

Revision ID: 0014_memory_history
Revises: 0013_scoped_keyword
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_memory_history"
down_revision: str | None = "0013_scoped_keyword"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("memories", sa.Column("attribute", sa.String(80), nullable=True))
    op.create_table(
        "memory_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "memory_id",
            sa.String(32),
            sa.ForeignKey("memories.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_memory_versions_memory", "memory_versions", ["memory_id", "replaced_at"])
    op.create_index("ix_memory_versions_user_id", "memory_versions", ["user_id"])
    op.create_table(
        "memory_forget_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("phrase", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("memory_ids", sa.JSON(), nullable=False),
        sa.Column("titles", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_memory_forget_requests_user_id", "memory_forget_requests", ["user_id"])
    op.create_index(
        "ix_memory_forget_requests_message_id", "memory_forget_requests", ["message_id"]
    )


def downgrade() -> None:
    op.drop_table("memory_forget_requests")
    op.drop_table("memory_versions")
    with op.batch_alter_table("memories") as batch:
        batch.drop_column("attribute")
