"""Groups, assistant sharing and projects.

``groups`` and ``group_members`` (``parley.groups``); ``assistant_shares`` (who
else may use an assistant, and how far), ``assistant_policy`` (who may create and
share) and three columns on ``assistants``: ``name`` and ``description`` (the
published version's, for the gallery's search) and ``featured``
(``parley.assistants``); ``projects`` and ``project_members``
(``parley.projects``).

Revision ID: 0025_groups_projects
Revises: 0023_streams
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_groups_projects"
down_revision: str | None = "0023_streams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id", ondelete=ondelete)


def _stamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False),
        _stamp("created_at"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(32), _fk("groups"), primary_key=True),
        sa.Column("user_id", sa.String(32), _fk("users"), primary_key=True),
        _stamp("created_at"),
    )
    op.create_index("ix_group_members_user_id", "group_members", ["user_id"])

    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("description", sa.String(500), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("featured", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # the published version's name and description onto existing rows
    assistants = sa.table(
        "assistants",
        sa.column("id", sa.String),
        sa.column("published_version_id", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.String),
    )
    versions = sa.table(
        "assistant_versions", sa.column("id", sa.String), sa.column("config", sa.JSON)
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(assistants.c.id, versions.c.config).join(
            versions, versions.c.id == assistants.c.published_version_id
        )
    ).all()
    for assistant_id, config in rows:
        config = config if isinstance(config, dict) else {}
        bind.execute(
            assistants.update()
            .where(assistants.c.id == assistant_id)
            .values(
                name=str(config.get("name", ""))[:200],
                description=str(config.get("description", ""))[:500],
            )
        )

    op.create_table(
        "assistant_shares",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("assistant_id", sa.String(32), _fk("assistants"), nullable=False),
        sa.Column("principal_type", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("link_id", sa.String(32), _fk("assistant_shares"), nullable=True),
        _stamp("created_at"),
        sa.UniqueConstraint("assistant_id", "principal_type", "principal_id", name="uq_share"),
    )
    op.create_index(
        "ix_assistant_shares_principal", "assistant_shares", ["principal_type", "principal_id"]
    )
    op.create_table(
        "assistant_policy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("creators", sa.JSON(), nullable=True),
        sa.Column("sharers", sa.JSON(), nullable=True),
        _stamp("updated_at"),
    )

    op.create_table(
        "projects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), _fk("users"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("instructions_mode", sa.String(8), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("assistant_id", sa.String(32), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("memory", sa.String(8), nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
    )
    op.create_index("ix_projects_user_updated", "projects", ["user_id", "updated_at"])
    op.create_table(
        "project_members",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.String(32), _fk("projects"), nullable=False),
        sa.Column("principal_type", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        _stamp("created_at"),
        sa.UniqueConstraint(
            "project_id", "principal_type", "principal_id", name="uq_project_member"
        ),
    )
    op.create_index(
        "ix_project_members_principal", "project_members", ["principal_type", "principal_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_project_members_principal", table_name="project_members")
    op.drop_table("project_members")
    op.drop_index("ix_projects_user_updated", table_name="projects")
    op.drop_table("projects")
    op.drop_table("assistant_policy")
    op.drop_index("ix_assistant_shares_principal", table_name="assistant_shares")
    op.drop_table("assistant_shares")
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("featured")
        batch.drop_column("description")
        batch.drop_column("name")
    op.drop_index("ix_group_members_user_id", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("groups")
