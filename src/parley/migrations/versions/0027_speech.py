"""Speech: the seconds of audio a usage row heard or spoke.

``usage_events.audio_seconds`` (float, 0 for calls that are not speech): speech
to text and text to speech are priced per minute of audio (``parley.speech``).

Revision ID: 0027_speech
Revises: 0023_budgets
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_speech"
down_revision: str | None = "0023_budgets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_events",
        sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("audio_seconds")
