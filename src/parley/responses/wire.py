"""The Responses and Conversations APIs' JSON: what callers send and what they get.

Requests are pydantic models (validation errors name the field). Output items,
response objects and stream events are built as plain dicts in ``items.py`` and
``stream.py`` (one per token on the hot path); the models here describe them for
the OpenAPI document. The shapes follow OpenAI's API reference and the Open
Responses specification; CI validates what Parley emits with the specification's
own types (``openresponses-types``, tests/responses).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CompactIn",
    "CompactObject",
    "ConversationDeleted",
    "ConversationItem",
    "ConversationItemsCreate",
    "ConversationObject",
    "InputTokens",
    "InputTokensIn",
    "ItemList",
    "OpenAIConversationCreate",
    "OpenAIConversationUpdate",
    "ResponseCreate",
    "ResponseDeleted",
    "ResponseObject",
    "check_metadata",
]

MAX_METADATA_KEYS = 16


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    """OpenAI's limits: at most 16 pairs, keys up to 64 and values up to 512 characters."""
    if value is None:
        return None
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata holds at most {MAX_METADATA_KEYS} key-value pairs")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"metadata key {key[:20]!r}... is longer than 64 characters")
        if not isinstance(item, str) or len(item) > 512:
            raise ValueError(
                f"metadata value of {key!r} must be a string of at most 512 characters"
            )
    return value


class ResponseCreate(BaseModel):
    """``POST /v1/responses``. Unknown fields are accepted and ignored (the README
    lists what Parley ignores), so newer clients keep working."""

    model_config = ConfigDict(extra="allow")

    model: str = "parley"
    input: str | list[dict[str, Any]] = ""
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    reasoning: dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    metadata: dict[str, str] | None = None
    store: bool = True
    background: bool = False
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    include: list[str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    _metadata = field_validator("metadata")(check_metadata)

    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, dict):
            found = self.conversation.get("id")
            return found if isinstance(found, str) else None
        return self.conversation


class ResponseObject(BaseModel):
    """A response (``object: "response"``); ``output`` items are messages,
    function calls, hosted tool calls and reasoning, as the specification has them."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: str
    model: str
    output: list[dict[str, Any]]
    output_text: str = ""
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    previous_response_id: str | None = None
    conversation: dict[str, Any] | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True


class InputTokensIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "parley"
    input: str | list[dict[str, Any]] = ""
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None


class InputTokens(BaseModel):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int


class OpenAIConversationCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(check_metadata)


class OpenAIConversationUpdate(BaseModel):
    metadata: dict[str, str]

    _metadata = field_validator("metadata")(check_metadata)


class ConversationObject(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str] = Field(default_factory=dict)


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ConversationItemsCreate(BaseModel):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=20)


class ConversationItem(BaseModel):
    """One item: a message, a function call or its output, a hosted tool's call."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str


class ItemList(BaseModel):
    """A page of items (a response's input items, a conversation's items)."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class CompactIn(BaseModel):
    """``POST /v1/responses/compact``: what to make short."""

    model_config = ConfigDict(extra="allow")

    model: str = "parley"
    input: str | list[dict[str, Any]] | None = None
    previous_response_id: str | None = None
    instructions: str | None = None
    prompt_cache_key: str | None = None


class CompactObject(BaseModel):
    """``object: "response.compaction"``: a ``compaction`` item to send at the
    head of the next request's input."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response.compaction"] = "response.compaction"
    created_at: int
    output: list[dict[str, Any]]
    usage: dict[str, Any]
