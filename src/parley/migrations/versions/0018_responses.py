"""The Responses API's records and Conversations' metadata (``parley.responses``).

Revision ID: 0018_responses
Revises: 0017_scoped_search
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_responses"
down_revision: str | None = "0017_scoped_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("api_key_id", sa.String(32)),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(32)),
        sa.Column("previous_response_id", sa.String(40)),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON()),
        sa.Column("incomplete_reason", sa.String(64)),
        sa.Column("chain_hash", sa.String(64)),
        sa.Column("stored", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_responses_user_created", "responses", ["user_id", "created_at"])
    op.create_index("ix_responses_conversation_id", "responses", ["conversation_id"])
    op.create_index("ix_responses_user_chain", "responses", ["user_id", "chain_hash"])
    op.create_index("ix_responses_message_id", "responses", ["message_id"])
    op.create_table(
        "conversation_metadata",
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_conversation_metadata_user_id", "conversation_metadata", ["user_id"])


def downgrade() -> None:
    op.drop_table("conversation_metadata")
    op.drop_table("responses")
