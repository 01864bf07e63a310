"""The usage ledger's rows get the chat's project and assistant.

One ledger row is now written per model call on every path (each call of a chat
turn's tool loop, titles, memory extraction, summaries, remote embeddings,
``/v1/responses/compact``); ``project_id`` and ``assistant_id`` say which of the
user's scopes the call served, kept as plain ids so spending stays attributed
after a project or assistant is deleted. (The revision id is the one the usage
work was given; the prices table of the same issue may join this revision.)

Revision ID: 0020_prices
Revises: 0019_key_scopes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_prices"
down_revision: str | None = "0019_key_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("project_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("assistant_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("assistant_id")
        batch.drop_column("project_id")
