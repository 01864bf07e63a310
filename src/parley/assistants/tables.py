"""What an assistant is made of, kept so that nothing already said changes.

- ``assistants``: identity and pointers. The owner, the instance-wide ``slug``
  (``assistant/<slug>`` in ``/v1``), the newest version (the *draft*, what the
  builder's preview uses) and the *published* one (what chats use).
- ``assistant_versions``: every save, immutable. ``config`` holds the whole
  definition (name, avatar, instructions, starters, model, knowledge, tools,
  memory, temperature: ``assistants.spec.AssistantConfig``); restoring copies an
  old config into a new version.
- ``assistant_chats``: a conversation started with an assistant (the core row's
  ``assistant_id`` says which one; this row adds ``draft``: a builder's preview).
- ``assistant_answers``: which version wrote which answer.
- ``assistant_avatars``: an uploaded avatar image (small: ``AVATAR_MAX_BYTES``), in
  the database so it goes with the assistant and its owner by cascade; the version's
  ``avatar`` emoji shows when there is none.

Sharing and projects come later without a rewrite: access is asked in one place
(``AssistantService._owned``), so a ``assistant_shares`` table (assistant,
user or group or everyone, role) widens it; ``project_id`` on the assistant row
is reserved for an assistant that belongs to a project.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = [
    "ROLES",
    "Assistant",
    "AssistantAnswer",
    "AssistantAvatar",
    "AssistantChat",
    "AssistantPolicy",
    "AssistantShare",
    "AssistantVersion",
]

# What a share grants, weakest first: chat with it; also read its settings (and
# duplicate it); also edit it. The owner can do all of these and more.
ROLES = ("chat", "view", "edit")
PRINCIPALS = ("user", "group", "everyone", "link")


class Assistant(Base):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_user_updated", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str | None] = mapped_column(String(32))  # reserved: projects
    draft_version_id: Mapped[str | None] = mapped_column(String(32))
    published_version_id: Mapped[str | None] = mapped_column(String(32))
    # The published version's name and description, kept here for the gallery's
    # search (one indexed table instead of a JSON document per row).
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    featured: Mapped[bool] = mapped_column(Boolean, default=False)  # by an admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssistantVersion(Base):
    __tablename__ = "assistant_versions"
    __table_args__ = (UniqueConstraint("assistant_id", "number", name="uq_assistant_version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant_id: Mapped[str] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")  # "Restored from version 2"
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssistantChat(Base):
    __tablename__ = "assistant_chats"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    assistant_id: Mapped[str] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssistantAnswer(Base):
    __tablename__ = "assistant_answers"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    assistant_id: Mapped[str] = mapped_column(String(32))
    version_id: Mapped[str] = mapped_column(String(32))
    version_number: Mapped[int] = mapped_column(Integer)


class AssistantAvatar(Base):
    __tablename__ = "assistant_avatars"

    assistant_id: Mapped[str] = mapped_column(
        ForeignKey("assistants.id", ondelete="CASCADE"), primary_key=True
    )
    media_type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AssistantShare(Base):
    """Who else may use an assistant, and how far (``ROLES``).

    ``principal_type``: ``user`` (``principal_id`` a user id), ``group`` (a group
    id: whoever ``USER_GROUPS`` says is in it at the time of the check),
    ``everyone`` (``principal_id`` empty) or ``link`` (``principal_id`` a secret
    token). A link grants nothing by itself: a user who opens it gets a ``user``
    row whose ``link_id`` points at the link's row, so revoking the link removes
    them all by cascade.
    """

    __tablename__ = "assistant_shares"
    __table_args__ = (
        UniqueConstraint("assistant_id", "principal_type", "principal_id", name="uq_share"),
        Index("ix_assistant_shares_principal", "principal_type", "principal_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant_id: Mapped[str] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    principal_type: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(8))
    link_id: Mapped[str | None] = mapped_column(
        ForeignKey("assistant_shares.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssistantPolicy(Base):
    """Who may create and who may share assistants (one row, id 1; none: anyone).

    ``creators`` / ``sharers``: None for every user, else the ids of the groups
    whose members may. Admins always may."""

    __tablename__ = "assistant_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creators: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    sharers: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
