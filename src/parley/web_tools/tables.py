"""Tables of the tools feature: pending tool confirmations, MCP servers and the
admin's web search settings.

All live in the database, not in process memory, so any worker can take the
user's decision or an admin's change: the turn waiting for a confirmation
may run on another worker than the one that receives the click.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["McpServerRow", "ToolConfirmation", "WebSearchConfigRow"]


class ToolConfirmation(Base):
    """One side-effecting tool call waiting for (or decided by) its user.

    ``status``: ``pending`` until the user answers (``approved``/``denied``)
    or the wait ends (``expired``: timeout, turn stopped or finished).
    """

    __tablename__ = "tool_confirmations"
    __table_args__ = (Index("ix_tool_confirmations_lookup", "conversation_id", "call_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    call_id: Mapped[str] = mapped_column(String(200))
    tool: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class McpServerRow(Base):
    """An MCP server an admin connected. ``env`` and ``headers`` may hold
    secrets: the API accepts them but never returns their values."""

    __tablename__ = "mcp_servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    transport: Mapped[str] = mapped_column(String(16))  # stdio | http
    command: Mapped[str | None] = mapped_column(String(1000))
    args: Mapped[list[Any]] = mapped_column(default=list)
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)
    url: Mapped[str | None] = mapped_column(String(2000))
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebSearchConfigRow(Base):
    """The web search back end an admin chose (Admin > Web search): one row, id
    ``default``. When it exists it overrides the ``PARLEY_SEARCH_*`` settings;
    ``provider='none'`` turns search off. ``api_key`` is write-only, like a
    provider's key: used for searches and tests, never returned by the API."""

    __tablename__ = "web_search_config"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default="default")
    provider: Mapped[str] = mapped_column(String(16))  # none | searxng | brave | tavily | ddgs
    url: Mapped[str | None] = mapped_column(String(2000))
    api_key: Mapped[str | None] = mapped_column(String(500))
    updated_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
