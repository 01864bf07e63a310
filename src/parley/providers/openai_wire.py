"""The OpenAI chat-completions wire format as Parley serves it (``/v1``).

The mirror of ``openai_compat.py``: there Parley is the client (``Message`` ->
request JSON, chunks -> ``ProviderEvent``); here Parley is the server. A client's
request JSON becomes ``Message``s and ``ToolSpec``s, and the provider's events
become chat-completion chunks (streaming) or one chat completion. The HTTP
route (``parley.api.routers.openai_api``) only authenticates, resolves the model
and hands the bytes over; nothing here knows a web framework.

Chunks are framed from pre-built byte prefixes, so the per-token cost is one
JSON string escape and a concatenation: the relay is benchmarked, so no
per-chunk model or dict is built for text. The pydantic models at the end
describe the responses in ``/openapi.json`` (only the model list is built from
them; completions are framed by hand).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parley.errors import Invalid, ProviderError
from parley.messages import (
    Finish,
    ImagePart,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from parley.providers.base import ChatRequest, ModelInfo

__all__ = [
    "AnswerBuilder",
    "ChatCompletion",
    "ChatCompletionIn",
    "ChatMessageIn",
    "OpenAIModel",
    "OpenAIModelList",
    "chat_request",
    "check_metadata",
    "collect",
    "model_list",
    "stream_chunks",
    "to_message",
    "to_tools",
]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# ---------------------------------------------------------------- requests


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ChatCompletionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(max_length=300)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=10_000)
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    store: bool | None = Field(
        default=None, description="Keep the request and answer (a chat in Parley's sidebar)."
    )
    metadata: dict[str, str] | None = Field(
        default=None, description="Up to 16 pairs (keys 64, values 512 characters) to filter by."
    )

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(value)


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    """OpenAI's limits on ``metadata`` (a ``ValueError`` naming the one broken)."""
    if value is None:
        return None
    if len(value) > 16:
        raise ValueError("at most 16 metadata pairs")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"metadata key {key[:20]!r}... is over 64 characters")
        if len(item) > 512:
            raise ValueError(f"metadata value of {key!r} is over 512 characters")
    return value


def to_message(m: ChatMessageIn) -> Message:
    role = "system" if m.role == "developer" else m.role
    text: list[str] = []
    images: list[ImagePart] = []
    if isinstance(m.content, str):
        text.append(m.content)
    elif m.content:
        for part in m.content:
            if part.get("type") == "text":
                text.append(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                url = part.get("image_url", {})
                images.append(ImagePart(url=url.get("url", "") if isinstance(url, dict) else url))
    calls = [
        ToolCall(
            c.get("id", ""),
            c.get("function", {}).get("name", ""),
            c.get("function", {}).get("arguments", "{}"),
        )
        for c in m.tool_calls or []
    ]
    return Message(
        role,
        "".join(text),
        tool_calls=calls,
        tool_call_id=m.tool_call_id,
        name=m.name,
        images=images,
    )


def to_tools(tools: list[dict[str, Any]] | None) -> list[ToolSpec]:
    """Function tools as ``ToolSpec``s (``Invalid``, code ``invalid_tools``, otherwise)."""
    specs = []
    for tool in tools or []:
        fn = tool.get("function") or {}
        if tool.get("type", "function") != "function" or not fn.get("name"):
            raise Invalid("Only function tools with a name are supported.", "invalid_tools")
        specs.append(
            ToolSpec(
                fn["name"], fn.get("description", ""), fn.get("parameters") or {"type": "object"}
            )
        )
    return specs


def _response_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format:
        return None
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    return None


def chat_request(body: ChatCompletionIn) -> ChatRequest:
    """What the provider is asked, from the client's request."""
    return ChatRequest(
        messages=[to_message(m) for m in body.messages],
        tools=to_tools(body.tools),
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        response_format=_response_schema(body.response_format),
        stop=[body.stop] if isinstance(body.stop, str) else body.stop,
    )


def model_list(models: list[ModelInfo]) -> OpenAIModelList:
    """``GET /v1/models``: every model by its ref."""
    return OpenAIModelList(data=[OpenAIModel(id=m.ref, owned_by=m.provider) for m in models])


# ---------------------------------------------------------------- responses


async def _chain(first: ProviderEvent, rest: AsyncIterator[ProviderEvent]) -> AsyncIterator[Any]:
    yield first
    async for event in rest:
        yield event


def _usage(event: UsageEvent) -> dict[str, int]:
    return {
        "prompt_tokens": event.usage.input_tokens,
        "completion_tokens": event.usage.output_tokens,
        "total_tokens": event.usage.input_tokens + event.usage.output_tokens,
    }


async def stream_chunks(
    completion_id: str,
    model_ref: str,
    first: ProviderEvent,
    events: AsyncIterator[ProviderEvent],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The provider's events as ``chat.completion.chunk`` SSE frames, ending with
    ``[DONE]``; a provider failure mid-stream becomes an ``error`` frame."""
    head = (
        b'data: {"id":"' + completion_id.encode() + b'","object":"chat.completion.chunk",'
        b'"created":' + str(int(time.time())).encode() + b',"model":' + _dumps(model_ref).encode()
    )
    text_prefix = head + b',"choices":[{"index":0,"delta":{"content":'
    delta_suffix = b',"finish_reason":null}]}\n\n'
    text_suffix = b"}" + delta_suffix
    yield (
        head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"finish_reason":null}]}\n\n'
    )
    usage: dict[str, int] | None = None
    try:
        async for event in _chain(first, events):
            if isinstance(event, TextDelta):
                yield text_prefix + _dumps(event.text).encode() + text_suffix
            elif isinstance(event, ReasoningDelta):
                delta = _dumps({"reasoning_content": event.text}).encode()
                yield head + b',"choices":[{"index":0,"delta":' + delta + delta_suffix
            elif isinstance(event, ToolCallDelta):
                call: dict[str, Any] = {
                    "index": event.index,
                    "function": {"arguments": event.arguments},
                }
                if event.id:
                    call["id"] = event.id
                    call["type"] = "function"
                if event.name:
                    call["function"]["name"] = event.name
                tool_delta = {"tool_calls": [call]}
                yield (
                    head
                    + b',"choices":[{"index":0,"delta":'
                    + _dumps(tool_delta).encode()
                    + delta_suffix
                )
            elif isinstance(event, UsageEvent):
                usage = _usage(event)
            elif isinstance(event, Finish):
                reason = _dumps(event.reason if event.reason != "cancelled" else "stop").encode()
                yield (
                    head
                    + b',"choices":[{"index":0,"delta":{},"finish_reason":'
                    + reason
                    + b"}]}\n\n"
                )
    except ProviderError as exc:
        # OpenAI's error shape (``type`` as OpenAI names server-side failures)
        error = {
            "error": {
                "message": exc.message,
                "type": "server_error",
                "param": None,
                "code": exc.code,
            }
        }
        yield b"data: " + _dumps(error).encode() + b"\n\n"
    if include_usage and usage is not None:
        yield head + b',"choices":[],"usage":' + _dumps(usage).encode() + b"}\n\n"
    yield b"data: [DONE]\n\n"


class AnswerBuilder:
    """A provider's whole answer assembled from its events (``see`` per event),
    as one ``chat.completion`` (``completion``)."""

    __slots__ = ("calls", "finish", "reasoning", "text", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self.finish = "stop"

    def see(self, event: object) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(
                event.index,
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            call["id"] = event.id or call["id"]
            call["function"]["name"] = event.name or call["function"]["name"]
            call["function"]["arguments"] += event.arguments
        elif isinstance(event, UsageEvent):
            self.usage = _usage(event)
        elif isinstance(event, Finish):
            self.finish = event.reason if event.reason != "cancelled" else "stop"

    def completion(self, completion_id: str, model_ref: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text)}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_ref,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish}],
            "usage": dict(self.usage),
        }


async def collect(
    completion_id: str,
    model_ref: str,
    first: ProviderEvent,
    events: AsyncIterator[ProviderEvent],
) -> dict[str, Any]:
    """The provider's whole answer as one ``chat.completion`` (``ProviderError``
    propagates: nothing has been sent yet, the route answers with a problem)."""
    answer = AnswerBuilder()
    async for event in _chain(first, events):
        answer.see(event)
    return answer.completion(completion_id, model_ref)


# ---------------------------------------------------------------- response models


class OpenAIModel(BaseModel):
    id: str = Field(description="The model's ref, provider/model.")
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = Field(
        default=None, description="Present when the model reasoned."
    )
    tool_calls: list[ToolCallOut] | None = Field(
        default=None, description="Present when it called tools."
    )


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """A whole answer (``stream: false``); with ``stream: true`` the same content
    comes as ``chat.completion.chunk`` server-sent events ending with ``[DONE]``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
