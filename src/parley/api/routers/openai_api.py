"""An OpenAI-compatible endpoint served by Parley: ``/v1/models`` and
``/v1/chat/completions`` (streaming or not, client tools passed through).

Authenticated by Parley API keys only (``Authorization: Bearer pk-...``).
Chunks are framed from pre-built byte prefixes so the per-token cost is one
JSON string escape and a concatenation.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from parley import loopshare
from parley.errors import ModelNotFound, ProviderError
from parley.http.deps import DB, Principal, SettingsDep, Sync, principal_from_api_key
from parley.http.problems import Problem
from parley.messages import (
    Finish,
    ImagePart,
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from parley.providers.base import ChatModel, ChatRequest, ModelInfo
from parley.providers.registry import ModelRegistry

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


async def api_key_principal(request: Request, db: DB) -> Principal:
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Problem(
            401,
            "This endpoint takes a Parley API key: 'Authorization: Bearer pk-...'.",
            "missing_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="parley"'},
        )
    return await principal_from_api_key(db, authorization)


ApiKeyPrincipal = Annotated[Principal, Depends(api_key_principal)]


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


def _to_message(m: ChatMessageIn) -> Message:
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


def _to_tools(tools: list[dict[str, Any]] | None) -> list[ToolSpec]:
    specs = []
    for tool in tools or []:
        fn = tool.get("function") or {}
        if tool.get("type", "function") != "function" or not fn.get("name"):
            raise Problem(422, "Only function tools with a name are supported.", "invalid_tools")
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


async def _resolve(registry: ModelRegistry, name: str, preferred: str | None) -> ChatModel:
    if name in ("parley", "default"):
        ref = await registry.default_ref(preferred)
        if ref is None:
            raise Problem(503, "No model is configured on this Parley server.", "no_model")
        return await registry.resolve(ref)
    if "/" in name:
        try:
            return await registry.resolve(name)
        except ModelNotFound:
            pass
    matches = [m for m in await registry.list_models() if m.name == name or m.ref == name]
    if len(matches) == 1:
        return await registry.resolve(matches[0].ref)
    if len(matches) > 1:
        refs = ", ".join(m.ref for m in matches)
        raise Problem(404, f"Model {name!r} is ambiguous; use one of: {refs}.", "model_ambiguous")
    raise Problem(404, f"Unknown model {name!r}; GET /v1/models lists them.", "model_not_found")


def _model_entry(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.ref, "object": "model", "created": 0, "owned_by": info.provider}


@router.get("/models")
async def list_models(sync: Sync, principal: ApiKeyPrincipal, db: DB) -> dict[str, Any]:
    registry = await sync.ensure_fresh(db)
    return {"object": "list", "data": [_model_entry(m) for m in await registry.list_models()]}


def _provider_problem(exc: ProviderError) -> Problem:
    status = {"provider_rate_limited": 429, "provider_timeout": 504}.get(exc.code, 502)
    return Problem(status, exc.message, exc.code)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionIn,
    sync: Sync,
    principal: ApiKeyPrincipal,
    db: DB,
    settings: SettingsDep,
) -> Response:
    await loopshare.take_slice(start=True)  # admitting a stream is heavy: wait for a slice
    registry = await sync.ensure_fresh(db)
    model = await _resolve(registry, body.model, await sync.default_model(db))
    await db.close()  # release the connection before the long stream
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    chat_request = ChatRequest(
        messages=[_to_message(m) for m in body.messages],
        tools=_to_tools(body.tools),
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        response_format=_response_schema(body.response_format),
        stop=stop,
    )
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    events = model.stream(chat_request).__aiter__()
    try:
        first = await events.__anext__()
    except ProviderError as exc:
        raise _provider_problem(exc) from exc
    except StopAsyncIteration as exc:
        raise Problem(502, "The provider returned nothing.", "provider_protocol") from exc
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        stream = _stream_chunks(completion_id, model.info.ref, first, events, include_usage)
        return StreamingResponse(stream, media_type="text/event-stream")
    return JSONResponse(await _collect(completion_id, model.info.ref, first, events))


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for event in rest:
        yield event


async def _stream_chunks(
    completion_id: str,
    model_ref: str,
    first: Any,
    events: AsyncIterator[Any],
    include_usage: bool,
) -> AsyncIterator[bytes]:
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
                usage = {
                    "prompt_tokens": event.usage.input_tokens,
                    "completion_tokens": event.usage.output_tokens,
                    "total_tokens": event.usage.input_tokens + event.usage.output_tokens,
                }
            elif isinstance(event, Finish):
                reason = _dumps(event.reason if event.reason != "cancelled" else "stop").encode()
                yield (
                    head
                    + b',"choices":[{"index":0,"delta":{},"finish_reason":'
                    + reason
                    + b"}]}\n\n"
                )
    except ProviderError as exc:
        error = {"error": {"message": exc.message, "type": exc.code, "code": exc.code}}
        yield b"data: " + _dumps(error).encode() + b"\n\n"
    if include_usage and usage is not None:
        yield head + b',"choices":[],"usage":' + _dumps(usage).encode() + b"}\n\n"
    yield b"data: [DONE]\n\n"


async def _collect(
    completion_id: str, model_ref: str, first: Any, events: AsyncIterator[Any]
) -> dict[str, Any]:
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    finish = "stop"
    try:
        async for event in _chain(first, events):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning.append(event.text)
            elif isinstance(event, ToolCallDelta):
                call = calls.setdefault(
                    event.index,
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = event.id or call["id"]
                call["function"]["name"] = event.name or call["function"]["name"]
                call["function"]["arguments"] += event.arguments
            elif isinstance(event, UsageEvent):
                usage = {
                    "prompt_tokens": event.usage.input_tokens,
                    "completion_tokens": event.usage.output_tokens,
                    "total_tokens": event.usage.input_tokens + event.usage.output_tokens,
                }
            elif isinstance(event, Finish):
                finish = event.reason if event.reason != "cancelled" else "stop"
    except ProviderError as exc:
        raise _provider_problem(exc) from exc
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_ref,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
