"""Groups and their members.

- ``groups``: a named set of users an admin keeps (unique name).
- ``group_members``: one row per (group, user); it goes with either by cascade,
  so deleting a group or an account leaves no membership behind.
- ``group_models``: the models (refs) a group's members may pick directly; a group
  without rows limits nothing (``GroupService.pickable``).

Nothing else stores a copy of membership: sharing and budgets ask
``parley.seam.USER_GROUPS`` on every check, so a removal takes effect at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["Group", "GroupMember", "GroupModel"]


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GroupModel(Base):
    __tablename__ = "group_models"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    model_ref: Mapped[str] = mapped_column(String(300), primary_key=True)
