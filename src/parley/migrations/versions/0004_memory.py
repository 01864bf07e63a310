"""Memory: the saved facts about each user (see parley.memory.tables).

A new table only; ``messages`` and ``conversations`` are left untouched.

Revision ID: 0004_memory
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_memory"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scope_type", sa.String(16), nullable=True),
        sa.Column("scope_id", sa.String(32), nullable=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_memories_user_status_updated", "memories", ["user_id", "status", "updated_at"]
    )
    op.create_index("ix_memories_scope", "memories", ["user_id", "scope_type", "scope_id"])
    op.create_index("ix_memories_conversation_id", "memories", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("memories")
