"""Prices administrators edit (``model_prices``); the usage ledger's rows get the
chat's project and assistant.

``model_prices``: per model ref, per million input, cached-input and output tokens
in the instance's currency, overriding the provider's or the built-in defaults.
One ledger row is now written per model call on every path (each call of a chat
turn's tool loop, titles, memory extraction, summaries, remote embeddings,
``/v1/responses/compact``); ``project_id`` and ``assistant_id`` say which of the
user's scopes the call served, kept as plain ids so spending stays attributed
after a project or assistant is deleted.

Revision ID: 0020_prices
Revises: 0021_failover
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_prices"
down_revision: str | None = "0021_failover"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("model", sa.String(300), primary_key=True),
        sa.Column("input_price", sa.Float(), nullable=False),
        sa.Column("cached_input_price", sa.Float(), nullable=False),
        sa.Column("output_price", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_by",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("project_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("assistant_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("assistant_id")
        batch.drop_column("project_id")
    op.drop_table("model_prices")
