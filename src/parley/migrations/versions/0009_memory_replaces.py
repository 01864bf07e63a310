"""Memory: a proposed update names the memory it replaces in ``replaces_id``.

Until now a pending update (review mode) was stored with ``scope_type =
'replaces'`` and ``scope_id`` = the memory it replaces. This adds
``memories.replaces_id`` (a foreign key to ``memories.id``, ``ON DELETE
CASCADE``, indexed) and moves such rows over: ``replaces_id`` takes the old
``scope_id`` and the scope columns take the replaced memory's scope. A proposal
whose memory is gone is dropped. The downgrade moves them back.

On SQLite the table is copied and moved so the foreign key is a table
constraint (one added with ``ADD COLUMN ... REFERENCES`` reflects without its
``ON DELETE``). The rows move only after that copy: with foreign keys on,
dropping the old table would cascade-delete copied rows that referred to it.

Revision ID: 0009_memory_replaces
Revises: 0008_knowledge_ann
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_memory_replaces"
down_revision: str | None = "0008_knowledge_ann"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACES = "replaces"  # the old scope_type of a proposed update
FK = "memories_replaces_id_fkey"


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("memories", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(
            sa.Column(
                "replaces_id",
                sa.String(32),
                # named (the copy needs it) as PostgreSQL would have named it
                sa.ForeignKey("memories.id", ondelete="CASCADE", name=FK),
                nullable=True,
            )
        )
        batch.create_index("ix_memories_replaces_id", ["replaces_id"])
    op.execute(
        sa.text(
            "DELETE FROM memories WHERE scope_type = :replaces"
            " AND scope_id NOT IN (SELECT m.id FROM memories m WHERE m.scope_type IS NULL"
            " OR m.scope_type <> :replaces)"
        ).bindparams(replaces=REPLACES)
    )
    op.execute(
        sa.text(
            "UPDATE memories SET replaces_id = scope_id,"
            " scope_type = (SELECT m.scope_type FROM memories m WHERE m.id = memories.scope_id),"
            " scope_id = (SELECT m.scope_id FROM memories m WHERE m.id = memories.scope_id)"
            " WHERE scope_type = :replaces"
        ).bindparams(replaces=REPLACES)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE memories SET scope_type = :replaces, scope_id = replaces_id"
            " WHERE replaces_id IS NOT NULL"
        ).bindparams(replaces=REPLACES)
    )
    with op.batch_alter_table("memories") as batch:
        batch.drop_index("ix_memories_replaces_id")
        batch.drop_column("replaces_id")
