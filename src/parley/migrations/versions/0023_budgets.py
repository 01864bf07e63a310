"""Budgets and rate limits: the limits, their counters per period window, the
reservations of calls in flight, and a message's budget notice.

``budgets``: one limit on one scope (``parley.budgets.tables``);
``budget_counters``: spent and reserved per limit and window;
``budget_reservations``: each call's share, with a lease (``expires_at``);
``messages.notice``: the 80% warning or the downgrade a budget made.

Revision ID: 0023_budgets
Revises: 0028_jobs
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_budgets"
down_revision: str | None = "0028_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("downgrade_model", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scope", "scope_id", "kind", "period", name="uq_budgets_scope"),
    )
    op.create_table(
        "budget_counters",
        sa.Column(
            "budget_id",
            sa.String(32),
            sa.ForeignKey("budgets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("window", sa.String(16), primary_key=True),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("reserved", sa.Float(), nullable=False),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "budget_id",
            sa.String(32),
            sa.ForeignKey("budgets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_budget_reservations_expires", "budget_reservations", ["expires_at"])
    op.add_column("messages", sa.Column("notice", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("notice")
    op.drop_index("ix_budget_reservations_expires", "budget_reservations")
    op.drop_table("budget_reservations")
    op.drop_table("budget_counters")
    op.drop_table("budgets")
