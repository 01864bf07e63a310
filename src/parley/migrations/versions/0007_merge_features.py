"""Join the feature branches (knowledge, memory, tools, sandbox) into one head.

Revision ID: 0007
Revises: 0003_knowledge, 0004_memory, 0005_tools, 0006_sandbox
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = (
    "0003_knowledge",
    "0004_memory",
    "0005_tools",
    "0006_sandbox",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the branches' tables do not overlap."""


def downgrade() -> None:
    """Nothing to undo."""
