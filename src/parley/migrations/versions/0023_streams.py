"""Streams across workers: stop requests polled by every worker, and the event
sequence number a streaming answer's flushed content includes.

``stop_requests`` (``parley.storage.signals``) and ``messages.stream_seq``
(``parley.turns.streams``).

Revision ID: 0023_streams
Revises: 0024_routing
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_streams"
down_revision: str | None = "0024_routing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stop_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("messages", sa.Column("stream_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("stream_seq")
    op.drop_table("stop_requests")
