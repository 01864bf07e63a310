"""API keys get an expiry and scopes; the usage ledger's ``usage_events`` table.

``api_keys.expires_at`` (null: never) and ``api_keys.scopes`` (JSON, null: no
limits; ``parley.auth.scopes.KeyScopes``). ``usage_events``: one row per billable
``/v1`` call (``parley.usage``). ``stored_completions``: chat completions made with
``store: true`` (``parley.storage.completions``).

Revision ID: 0019_key_scopes
Revises: 0018_responses
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_key_scopes"
down_revision: str | None = "0018_responses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("scopes", sa.JSON(), nullable=True))
    op.create_table(
        "usage_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "api_key_id",
            sa.String(32),
            sa.ForeignKey("api_keys.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("endpoint", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(60), nullable=False),
    )
    op.create_index("ix_usage_events_user_at", "usage_events", ["user_id", "at"])
    op.create_index("ix_usage_events_api_key_id", "usage_events", ["api_key_id"])
    op.create_table(
        "stored_completions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "api_key_id",
            sa.String(32),
            sa.ForeignKey("api_keys.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("completion", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_stored_completions_owner", "stored_completions", ["user_id", "api_key_id", "created_at"]
    )
    op.create_index(
        "ix_stored_completions_conversation_id", "stored_completions", ["conversation_id"]
    )


def downgrade() -> None:
    op.drop_table("stored_completions")
    op.drop_index("ix_usage_events_api_key_id", table_name="usage_events")
    op.drop_index("ix_usage_events_user_at", table_name="usage_events")
    op.drop_table("usage_events")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
        batch.drop_column("expires_at")
