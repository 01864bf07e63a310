"""Routing: the Auto model's policies, and how Auto chose a message's model.

``routing_policies``: ordered rules and a default model per scope (the instance,
an assistant, a project; ``parley.routing.tables``); ``messages.route``: the rule
that matched and the reason shown on the message (JSON, null when the chat named
its model).

Revision ID: 0024_routing
Revises: 0026_images
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_routing"
down_revision: str | None = "0026_images"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_policies",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.String(64), primary_key=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("default_model", sa.String(300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("messages", sa.Column("route", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("route")
    op.drop_table("routing_policies")
