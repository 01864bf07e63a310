"""Request bodies (validated by pydantic) and row serializers for responses.

Responses are built by plain functions from table rows: cheap, explicit, and
they decide exactly which fields leave the server (no password hashes, no keys).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from parley.http.bodies import Body, iso
from parley.storage.tables import ApiKey, Conversation, Message, User


class SignupIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    name: str = Field(default="", max_length=200)


class LoginIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class MeUpdate(Body):
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    about_me: str | None = Field(default=None, max_length=4000)
    response_style: str | None = Field(default=None, max_length=4000)
    preferences: dict[str, Any] | None = None


class PasswordChange(Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasswordConfirm(Body):
    password: str = Field(max_length=1024)


class KeyCreate(Body):
    name: str = Field(default="API key", max_length=200)


class ConversationCreate(Body):
    title: str | None = Field(default=None, max_length=300)
    model: str | None = Field(default=None, max_length=300)
    temporary: bool = False


class ConversationUpdate(Body):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    pinned: bool | None = None
    archived: bool | None = None
    model: str | None = Field(default=None, max_length=300)
    # Enabled tool names; [] turns every tool off, null goes back to the defaults.
    tools: list[str] | None = Field(default=None, max_length=200)


class BranchIn(Body):
    message_id: str = Field(max_length=32)


class MessageUpdate(Body):
    feedback: Literal[-1, 0, 1] | None = None
    pinned: bool | None = None


class SendIn(Body):
    content: str = Field(min_length=1, max_length=100_000)
    parent_id: str | None = Field(default=None, max_length=32)
    model: str | None = Field(default=None, max_length=300)


class RegenerateIn(Body):
    model: str | None = Field(default=None, max_length=300)


class EditIn(Body):
    content: str = Field(min_length=1, max_length=100_000)
    model: str | None = Field(default=None, max_length=300)


class AdminUserCreate(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    name: str = Field(default="", max_length=200)
    role: Literal["admin", "user"] = "user"


class AdminUserUpdate(Body):
    role: Literal["admin", "user"] | None = None
    status: Literal["active", "disabled", "pending"] | None = None


class AdminSettingsUpdate(Body):
    signup: Literal["open", "closed", "approval"] | None = None
    default_model: str | None = Field(default=None, max_length=300)


class ModelIn(Body):
    name: str = Field(max_length=200)
    context_window: int = Field(default=8192, ge=256, le=10_000_000)
    max_output_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    supports_tools: bool = True
    supports_vision: bool = False
    input_price: float = Field(default=0.0, ge=0)
    output_price: float = Field(default=0.0, ge=0)


class ProviderCreate(Body):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    models: list[ModelIn] = Field(default_factory=list, max_length=500)


class ProviderTest(Body):
    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)


def user_out(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": user.status,
        "timezone": user.timezone,
        "about_me": user.about_me,
        "response_style": user.response_style,
        "preferences": user.preferences or {},
        "created_at": iso(user.created_at),
    }


def key_out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
    }


def conversation_out(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id,
        "title": conv.title,
        "model": conv.model,
        "pinned": conv.pinned,
        "archived": conv.archived,
        "temporary": conv.temporary,
        "tools": [t for t in conv.tools if t] if conv.tools else None,  # None: the defaults
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
    }


def message_out(msg: Message, siblings: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "parent_id": msg.parent_id,
        "role": msg.role,
        "content": msg.content,
        "reasoning": msg.reasoning,
        "steps": msg.steps or [],
        "sources": msg.sources or [],
        "status": msg.status,
        "provider": msg.provider,
        "model": msg.model,
        "input_tokens": msg.input_tokens,
        "output_tokens": msg.output_tokens,
        "latency_ms": msg.latency_ms,
        "ttft_ms": msg.ttft_ms,
        "finish_reason": msg.finish_reason,
        "cost": msg.cost,
        "error_code": msg.error_code,
        "error_message": msg.error_message,
        "feedback": msg.feedback,
        "pinned": msg.pinned,
        "created_at": iso(msg.created_at),
        "siblings": siblings if siblings is not None else [msg.id],
    }
