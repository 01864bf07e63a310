"""Tools: pending tool-call confirmations and admin-registered MCP servers.

New tables only (``messages`` and ``conversations`` are left untouched).

Revision ID: 0005_tools
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_tools"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tool_confirmations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(200), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("decided_at", _ts(), nullable=True),
    )
    op.create_index("ix_tool_confirmations_user_id", "tool_confirmations", ["user_id"])
    op.create_index("ix_tool_confirmations_message_id", "tool_confirmations", ["message_id"])
    op.create_index(
        "ix_tool_confirmations_lookup", "tool_confirmations", ["conversation_id", "call_id"]
    )
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(32), nullable=False, unique=True),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("command", sa.String(1000), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mcp_servers")
    op.drop_index("ix_tool_confirmations_lookup", "tool_confirmations")
    op.drop_index("ix_tool_confirmations_message_id", "tool_confirmations")
    op.drop_index("ix_tool_confirmations_user_id", "tool_confirmations")
    op.drop_table("tool_confirmations")
