"""Sources on assistant messages: the context features added to a turn.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy) keeps SQLite's FTS triggers on messages.
    op.add_column("messages", sa.Column("sources", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("messages", "sources")
