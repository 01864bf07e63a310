"""A project and who else works in it.

- ``projects``: the owner, a name, instructions (``instructions_mode``: ``add``
  to the user's custom instructions or ``replace`` them), the defaults a new chat
  in it starts with (a model or an assistant, tools) and its memory mode
  (``default``: the user's own memories; ``project``: project-only, created and
  recalled only inside it, global memories not read there).
- ``project_members``: a user or a group, as ``viewer`` (reads its chats and
  files) or ``editor`` (also adds chats and files, edits its settings).

A chat is in a project by ``conversations.project_id`` (a core column reserved
for this), a file by ``knowledge_files.project_id``: no copy, no join table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["MEMBER_ROLES", "MEMORY_MODES", "Project", "ProjectMember"]

MEMORY_MODES = ("default", "project")
MEMBER_ROLES = ("viewer", "editor")


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_user_updated", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500), default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    instructions_mode: Mapped[str] = mapped_column(String(8), default="add")
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    assistant_id: Mapped[str | None] = mapped_column(String(32), default=None)
    tools: Mapped[list[str]] = mapped_column(JSON, default=list)
    memory: Mapped[str] = mapped_column(String(8), default="default")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "principal_type", "principal_id", name="uq_project_member"),
        Index("ix_project_members_principal", "principal_type", "principal_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    principal_type: Mapped[str] = mapped_column(String(16))  # user | group
    principal_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(8))  # viewer | editor
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
