"""Metadata of files the code interpreter produced (the bytes live in the data dir)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow


class SandboxOutput(Base):
    """One downloadable output: a chart the kernel displayed or a file it wrote.

    Scoped by ``user_id`` (every read filters on it); removed with the user or
    the conversation.
    """

    __tablename__ = "sandbox_outputs"
    __table_args__ = (Index("ix_sandbox_outputs_user_conversation", "user_id", "conversation_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # image | file
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(400))  # relative to <data dir>/sandbox/outputs
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
