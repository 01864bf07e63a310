"""Providers added in the web app can send extra request headers (``providers.headers``).

Per-model settings need no column: they are ``ModelConfig`` dicts in
``providers.models`` (new keys: ``cached_input_price``, ``enabled``, ``visible_to``).

Revision ID: 0010_provider_headers
Revises: 0009_memory_replaces
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_provider_headers"
down_revision: str | None = "0009_memory_replaces"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("providers", sa.Column("headers", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("headers")
