"""Database tables (SQLAlchemy 2 declarative), shared by SQLite and PostgreSQL.

One row per message; a conversation is a tree through ``Message.parent_id``.
Editing a user message adds a sibling under the same parent (a branch);
regenerating adds a sibling assistant message. ``Conversation.active_leaf_id``
records which branch is shown; appending inserts rows and moves that pointer,
never rewriting earlier rows.

Everything a user owns carries ``user_id`` so repositories can scope every
query by it; ``project_id`` and ``assistant_id`` are reserved scopes for
projects and custom assistants (nullable today).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from parley.jsonshape import PREFERENCES, shape_error


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = _DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="user")  # admin | user
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|pending|disabled
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    about_me: Mapped[str] = mapped_column(Text, default="")
    response_style: Mapped[str] = mapped_column(Text, default="")
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)  # theme, memory on/off...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def stored_preferences(self) -> dict[str, Any] | None:
        """The preferences, or None when what is stored is not a valid value.

        Values are checked on the way in (``parley.jsonshape``), but a row written
        before that, or by hand, may hold anything: every reader goes through
        here, so one bad value shows as "none" instead of failing the reader.
        """
        value = self.preferences if self.preferences is not None else {}
        if not isinstance(value, dict) or shape_error(value, PREFERENCES) is not None:
            return None
        return value


class Session(Base):
    """A browser session; ``id`` is the SHA-256 of the cookie token."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class ApiKey(Base):
    """An API key; only its SHA-256 is stored, ``prefix`` is shown in lists."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Refused from this moment on (None: never expires).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the key may do (``parley.auth.scopes.KeyScopes``); None: everything.
    scopes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LoginAttempt(Base):
    """Failed sign-ins, kept in the database so several workers share the limit."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_updated", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(String(32), index=True)
    assistant_id: Mapped[str | None] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(300), default="New chat")
    title_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[str | None] = mapped_column(String(300))
    tools: Mapped[list[Any]] = mapped_column(default=list)  # enabled tool names
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    active_leaf_id: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str | None] = mapped_column(Text)
    summary_until_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    """One message. Assistant messages carry the turn's record: tool steps,
    provider, model, tokens, latency, time to first token, finish, cost, error."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        Index("ix_messages_parent", "parent_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | system
    content: Mapped[str] = mapped_column(Text, default="")
    reasoning: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list[Any]] = mapped_column(default=list)  # tool calls with results
    sources: Mapped[list[Any]] = mapped_column(default=list)  # context the features added
    status: Mapped[str] = mapped_column(String(16), default="complete")
    # complete | streaming | failed | cancelled
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(300))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # each model call that failed before answering, then the one that answered
    # (``parley.providers.failover.Attempt.public``); null when the first try answered
    attempts: Mapped[list[Any] | None] = mapped_column(JSON)
    # how Auto chose the model (``parley.routing.rules.Route.public``: rule, reason,
    # scope); null when the chat named its model
    route: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # while streaming: the sequence number of the turn's last event the flushed
    # content includes (``parley.turns.streams``: a reader on another worker resumes
    # there with the right event ids)
    stream_seq: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[int] = mapped_column(Integer, default=0)  # -1, 0, 1
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StoredCompletion(Base):
    """A ``/v1/chat/completions`` call made with ``store: true``: the request's
    messages and the completion as the client saw them (served back by the
    stored-completions routes), and the Parley chat it was kept as. Reachable only
    by its user *and* the API key that made it; deleting the chat deletes it."""

    __tablename__ = "stored_completions"
    __table_args__ = (Index("ix_stored_completions_owner", "user_id", "api_key_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # chatcmpl-...
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(String(300))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    messages: Mapped[list[Any]] = mapped_column(JSON)  # the request's, as sent
    completion: Mapped[dict[str, Any]] = mapped_column(JSON)  # the answer, as returned
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderRecord(Base):
    """A provider an admin added in the web app (config-file ones are not stored)."""

    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="openai")
    base_url: Mapped[str | None] = mapped_column(String(500))
    api_key: Mapped[str | None] = mapped_column(String(500))  # never returned by the API
    models: Mapped[list[Any]] = mapped_column(default=list)  # ModelConfig dicts
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # extra request headers
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AppSetting(Base):
    """Instance-wide settings changed at run time by an admin (signup mode, default model)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
