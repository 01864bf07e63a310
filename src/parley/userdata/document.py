"""The export file format (``parley-export-2``): built from rows, read back by import.

One JSON document holds everything of one user: the profile and settings, API
key metadata (names and prefixes; a key itself is never stored, so it cannot be
exported), every billable model call (the usage ledger's rows, kept for the
record and not imported), every conversation with every message of every branch (the tree is
``parent_id``; ``active_leaf_id`` names the branch on screen), and under
``features`` each feature's share (memories, files and collections...).

The models below describe the core part of the document: they validate an
import (unknown fields ignored, so a newer export still loads; strings and
lists bounded) and document the export route's response in ``/openapi.json``.
Exports are written from rows with plain dicts (cheap for a large account);
``parley-export-1`` (before features were included) is still accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from parley.jsonshape import PREFERENCES, STORED, bounded
from parley.storage.tables import ApiKey, Conversation, Message, User
from parley.usage.tables import UsageEvent

__all__ = [
    "FORMAT",
    "READABLE_FORMATS",
    "ConversationRecord",
    "ExportDocument",
    "KeyRecord",
    "MessageRecord",
    "ProfileRecord",
    "UsageRecord",
    "conversation_record",
    "key_record",
    "message_record",
    "profile_record",
    "usage_record",
]

FORMAT = "parley-export-2"
READABLE_FORMATS = ("parley-export-1", FORMAT)

_ID = 64  # exported ids are only keys between records: any short string
_TEXT = 5_000_000


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=_TEXT)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (the API's format; SQLite hands back naive UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.isoformat() + "Z"
    return moment.isoformat().replace("+00:00", "Z")


class ProfileRecord(_Record):
    """The account's profile and settings; import restores the settings only
    (custom instructions, time zone, preferences), never the identity."""

    id: str = Field(default="", max_length=_ID)
    email: str = Field(default="", max_length=320)
    name: str = Field(default="", max_length=200)
    role: str = Field(default="user", max_length=16)
    status: str = Field(default="active", max_length=16)
    timezone: str = Field(default="UTC", max_length=64)
    about_me: str = Field(default="", max_length=4000)
    response_style: str = Field(default="", max_length=4000)
    preferences: Annotated[dict[str, Any], bounded(PREFERENCES, "Preferences")] = Field(
        default_factory=dict
    )
    created_at: datetime | None = None


class KeyRecord(_Record):
    """API key metadata, for the record; keys are not imported (only their hash is
    stored, so a key cannot move to another account or server)."""

    id: str = Field(max_length=_ID)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16)
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    scopes: dict[str, list[str]] | None = None  # parley.auth.scopes; None: no limits


class UsageRecord(_Record):
    """One billable model call (``parley.usage``), for the record; not imported: what
    an account spent on one server is not a cost on another."""

    at: datetime | None = None
    endpoint: str = Field(max_length=40)
    provider: str = Field(max_length=100)
    model: str = Field(max_length=300)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost: float = Field(default=0.0, description="In US dollars, as charged at the time.")
    audio_seconds: float = 0.0
    latency_ms: float = 0.0
    outcome: str = Field(max_length=60)
    conversation_id: str | None = Field(default=None, max_length=_ID)
    api_key_id: str | None = Field(default=None, max_length=_ID)
    project_id: str | None = Field(default=None, max_length=_ID)
    assistant_id: str | None = Field(default=None, max_length=_ID)


class MessageRecord(_Record):
    id: str = Field(max_length=_ID)
    parent_id: str | None = Field(default=None, max_length=_ID)
    role: Literal["user", "assistant", "system"]
    content: str = ""
    reasoning: str = ""
    steps: Annotated[list[dict[str, Any]], bounded(STORED, "A message's steps")] = Field(
        default_factory=list, max_length=10_000
    )
    sources: Annotated[list[dict[str, Any]], bounded(STORED, "A message's sources")] = Field(
        default_factory=list, max_length=10_000
    )
    status: Literal["complete", "streaming", "failed", "cancelled"] = "complete"
    provider: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=300)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    latency_ms: float | None = None
    ttft_ms: float | None = None
    finish_reason: str | None = Field(default=None, max_length=32)
    cost: float = 0.0
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    feedback: Literal[-1, 0, 1] = 0
    pinned: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ConversationRecord(_Record):
    id: str = Field(max_length=_ID)
    title: str = Field(default="New chat", max_length=300)
    title_generated: bool = True
    model: str | None = Field(default=None, max_length=300)
    pinned: bool = False
    archived: bool = False
    temporary: bool = False
    tools: list[str] | None = Field(default=None, max_length=200)
    active_leaf_id: str | None = Field(default=None, max_length=_ID)
    summary: str | None = None
    summary_until_id: str | None = Field(default=None, max_length=_ID)
    project_id: str | None = Field(default=None, max_length=32)
    assistant_id: str | None = Field(default=None, max_length=32)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: list[MessageRecord] = Field(default_factory=list, max_length=1_000_000)


class ExportDocument(_Record):
    """Everything Parley stores about one user (``GET /api/me/export``)."""

    format: Literal["parley-export-1", "parley-export-2"]
    exported_at: datetime | None = None
    files_included: bool = Field(
        default=False, description="Whether the ZIP this came in carries the files' bytes."
    )
    user: ProfileRecord = Field(default_factory=ProfileRecord)
    api_keys: list[KeyRecord] = Field(default_factory=list, max_length=100_000)
    conversations: list[ConversationRecord] = Field(default_factory=list, max_length=1_000_000)
    usage: list[UsageRecord] = Field(
        default_factory=list,
        max_length=10_000_000,
        description="Every billable model call of the account, oldest first (not imported).",
    )
    features: dict[str, Any] = Field(
        default_factory=dict,
        description="Each feature's share, under its name (memory, knowledge...).",
    )


# ---------------------------------------------------------------- writing


def profile_record(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": user.status,
        "timezone": user.timezone,
        "about_me": user.about_me,
        "response_style": user.response_style,
        "preferences": user.stored_preferences() or {},
        "created_at": iso(user.created_at),
    }


def key_record(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
        "expires_at": iso(key.expires_at),
        "scopes": key.scopes,
    }


def usage_record(event: UsageEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "endpoint": event.endpoint,
        "provider": event.provider,
        "model": event.model,
        "input_tokens": event.input_tokens,
        "cached_input_tokens": event.cached_input_tokens,
        "output_tokens": event.output_tokens,
        "cost": event.cost,
        "audio_seconds": event.audio_seconds,
        "latency_ms": event.latency_ms,
        "outcome": event.outcome,
        "conversation_id": event.conversation_id,
        "api_key_id": event.api_key_id,
        "project_id": event.project_id,
        "assistant_id": event.assistant_id,
    }


def message_record(msg: Message) -> dict[str, Any]:
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
        "updated_at": iso(msg.updated_at),
    }


def conversation_record(conv: Conversation, messages: list[Message]) -> dict[str, Any]:
    return {
        "id": conv.id,
        "title": conv.title,
        "title_generated": conv.title_generated,
        "model": conv.model,
        "pinned": conv.pinned,
        "archived": conv.archived,
        "temporary": conv.temporary,
        # as the API shows it: null = the defaults, [] = no tools
        "tools": [t for t in conv.tools if t] if conv.tools else None,
        "active_leaf_id": conv.active_leaf_id,
        "summary": conv.summary,
        "summary_until_id": conv.summary_until_id,
        "project_id": conv.project_id,
        "assistant_id": conv.assistant_id,
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
        "messages": [message_record(m) for m in messages],
    }
