"""Assistants (custom GPTs) and their versions; which chat and answer used them.

``assistants`` (owner, unique slug, draft and published version), immutable
``assistant_versions`` (the whole definition as JSON), ``assistant_chats`` (a
conversation started with an assistant; ``draft`` for the builder's preview) and
``assistant_answers`` (the version that wrote an answer), ``assistant_avatars`` (an
uploaded avatar image). ``parley.assistants``.

Revision ID: 0022_assistants
Revises: 0020_prices
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_assistants"
down_revision: str | None = "0020_prices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id", ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), _fk("users"), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(32), nullable=True),
        sa.Column("draft_version_id", sa.String(32), nullable=True),
        sa.Column("published_version_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_assistants_user_updated", "assistants", ["user_id", "updated_at"])
    op.create_table(
        "assistant_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("assistant_id", sa.String(32), _fk("assistants"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("assistant_id", "number", name="uq_assistant_version"),
    )
    op.create_table(
        "assistant_chats",
        sa.Column("conversation_id", sa.String(32), _fk("conversations"), primary_key=True),
        sa.Column("assistant_id", sa.String(32), _fk("assistants"), nullable=False),
        sa.Column("user_id", sa.String(32), _fk("users"), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_assistant_chats_assistant_id", "assistant_chats", ["assistant_id"])
    op.create_table(
        "assistant_answers",
        sa.Column("message_id", sa.String(32), _fk("messages"), primary_key=True),
        sa.Column("conversation_id", sa.String(32), _fk("conversations"), nullable=False),
        sa.Column("assistant_id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_assistant_answers_conversation_id", "assistant_answers", ["conversation_id"]
    )
    op.create_table(
        "assistant_avatars",
        sa.Column("assistant_id", sa.String(32), _fk("assistants"), primary_key=True),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("assistant_avatars")
    op.drop_table("assistant_answers")
    op.drop_table("assistant_chats")
    op.drop_table("assistant_versions")
    op.drop_index("ix_assistants_user_updated", table_name="assistants")
    op.drop_table("assistants")
