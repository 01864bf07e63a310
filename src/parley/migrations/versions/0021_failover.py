"""Failover: each model's fallbacks, each provider's circuit breaker, and the
attempts a message took.

``model_fallbacks``: a model ref's fallback refs as an admin set them;
``provider_breakers``: one circuit per provider, shared by every worker;
``messages.attempts``: the model calls that failed before the answer and the one
that answered (JSON, null when the first try answered). ``parley.storage.failover``.

Revision ID: 0021_failover
Revises: 0019_key_scopes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_failover"
down_revision: str | None = "0019_key_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_fallbacks",
        sa.Column("model", sa.String(300), primary_key=True),
        sa.Column("fallbacks", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "provider_breakers",
        sa.Column("provider", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("messages", sa.Column("attempts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("attempts")
    op.drop_table("provider_breakers")
    op.drop_table("model_fallbacks")
