"""The saved-memory table: one row per fact Parley keeps about a user.

Each memory says where it came from (``conversation_id`` + ``message_id``,
kept when possible so the memory page can link back) and how (``source``:
``explicit`` when the user asked, ``auto`` when extraction proposed it).
``status`` is ``active`` (recalled) or ``pending`` (waiting for the user's
approval in review mode). ``scope_type``/``scope_id`` are empty for global
memories; ``project``/``assistant`` memories are recalled only inside that
scope. A pending row with ``replaces_id`` set is a proposed update of that
memory (review mode): it keeps that memory's scope, approving it rewrites that
memory instead of adding a second one, and deleting that memory deletes it
(``ON DELETE CASCADE``). ``embedding`` is a float32 vector
(``numpy.tobytes``) from the model named in ``embedding_model``; a change of
model re-embeds lazily. ``attribute`` is the deterministic attribute key of the
fact (``parley.memory.attributes``: "home.city", "sister:job.employer"), null for
facts that are not one value of a single-valued attribute; updates replace a
memory only when the keys agree.

``memory_versions`` keeps the text a memory had before each replacement (an
update, an approved proposal, an edit, a restore), so no update destroys a fact:
the memory page lists them and can restore one. ``memory_forget_requests`` is a
"forget ..." the user asked for in the chat: the memories it matched wait for the
user's approval in a chip; once approved the deleted rows are kept (``removed``,
JSON) only for the undo window, then cleared.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = [
    "FORGET_STATUSES",
    "MEMORY_SOURCES",
    "MEMORY_STATUSES",
    "SCOPE_TYPES",
    "ForgetRequest",
    "Memory",
    "MemoryVersion",
]

MEMORY_SOURCES = ("explicit", "auto")
MEMORY_STATUSES = ("active", "pending")
SCOPE_TYPES = ("project", "assistant")
FORGET_STATUSES = ("pending", "approved", "cancelled", "undone")


class Memory(Base):
    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_user_status_updated", "user_id", "status", "updated_at"),
        Index("ix_memories_scope", "user_id", "scope_type", "scope_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="auto")
    status: Mapped[str] = mapped_column(String(16), default="active")
    scope_type: Mapped[str | None] = mapped_column(String(16))
    scope_id: Mapped[str | None] = mapped_column(String(32))
    replaces_id: Mapped[str | None] = mapped_column(
        ForeignKey("memories.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(String(32))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    attribute: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemoryVersion(Base):
    """An earlier text of a memory, kept when it was replaced."""

    __tablename__ = "memory_versions"
    __table_args__ = (Index("ix_memory_versions_memory", "memory_id", "replaced_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    memory_id: Mapped[str] = mapped_column(ForeignKey("memories.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(16), default="updated")
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ForgetRequest(Base):
    """A request to forget, waiting for (or given) the user's approval."""

    __tablename__ = "memory_forget_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    phrase: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    memory_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    titles: Mapped[list[str]] = mapped_column(JSON, default=list)
    removed: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    message_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
