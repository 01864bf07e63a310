"""Admin > Web search: the search back end stored in the database (``web_search_config``).

One row (id ``default``) that overrides the ``PARLEY_SEARCH_*`` settings once an
admin saves; its ``api_key`` is write-only, like ``providers.api_key``.

Revision ID: 0012_web_search_config
Revises: 0011_conversation_files
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_web_search_config"
down_revision: str | None = "0011_conversation_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_search_config",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2000), nullable=True),
        sa.Column("api_key", sa.String(500), nullable=True),
        sa.Column("updated_by", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_search_config")
