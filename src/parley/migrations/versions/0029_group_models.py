"""Group models: which models each group's members may pick directly.

``group_models(group_id, model_ref)``: one row per model a group allows; a group
without rows allows every model. A user's pickable models are the union over
their groups (``parley.groups.service.GroupService.pickable``).

Revision ID: 0029_group_models
Revises: 0027_speech
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_group_models"
down_revision: str | None = "0027_speech"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_models",
        sa.Column(
            "group_id",
            sa.String(32),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("model_ref", sa.String(300), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("group_models")
