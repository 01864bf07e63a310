"""Library files attached to a conversation by reference (``knowledge_conversation_files``).

An upload into a chat belongs to that chat (``knowledge_files.conversation_id``);
a file picked from the library with "Add from knowledge" or ``#`` stays in the
library and is only linked, like a collection.

Revision ID: 0011_conversation_files
Revises: 0010_provider_headers
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parley.storage.tables import UTCDateTime

revision: str = "0011_conversation_files"
down_revision: str | None = "0010_provider_headers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_conversation_files",
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "file_id",
            sa.String(32),
            sa.ForeignKey("knowledge_files.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_knowledge_conversation_files_file_id", "knowledge_conversation_files", ["file_id"]
    )
    op.create_index(
        "ix_knowledge_conversation_files_user_id", "knowledge_conversation_files", ["user_id"]
    )


def downgrade() -> None:
    op.drop_table("knowledge_conversation_files")
