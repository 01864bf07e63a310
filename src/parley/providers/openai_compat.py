"""OpenAI-compatible provider over the official ``openai`` SDK.

Covers OpenAI itself and every server speaking its chat-completions API
(vLLM, llama.cpp server, Ollama, LM Studio, OpenRouter, ...). The SDK does the
HTTP and SSE work; this module maps Parley's messages to the wire format, the
chunks back to ``ProviderEvent``s, and every SDK failure to a ``ProviderError``
whose message tells the user what to do (``failures.py``, shared with the
other HTTP adapters). Retries are off: the engine decides. The bookkeeping of
configured and discovered models is ``discovery.py``'s.

The per-chunk path is deliberately plain attribute access on the SDK's chunk
objects: streaming throughput is benchmarked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, NamedTuple, cast

import httpx2
import openai

from parley import loopshare
from parley.config import ProviderConfig
from parley.errors import (
    ProviderError,
    ProviderUnavailable,
)
from parley.messages import (
    Finish,
    FinishReason,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatRequest, ModelInfo, ProviderKind
from parley.providers.discovery import (
    DISCOVERY_TIMEOUT_S,
    DiscoveringProvider,
    listed_meta,
    ollama_meta,
)
from parley.providers.failures import protocol_error, retry_after_of, short_detail, status_error
from parley.providers.pools import Shards, http_options

log = logging.getLogger(__name__)

OLLAMA_PORT = 11434
OLLAMA_SHOW_LIMIT = 64  # models described per discovery (one request each)
NO_KEY = "no-key-configured"

_DECODER = json.JSONDecoder()
# ``client.post`` with this header returns the response unread, to be streamed
# (what ``with_streaming_response`` does, without re-walking the body through
# the typed parameter transform: a quarter of a millisecond per request, more for
# long conversations, for wire dicts that are already in the API's own shape).
_RAW_STREAM: openai.RequestOptions = {"headers": {"X-Stainless-Raw-Response": "stream"}}
DRAIN_TIMEOUT_S = 0.1
MAX_BATCH = 16
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# ------------------------------------------------------------ failures


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return cast(str, error["message"])
    return exc.message


# ------------------------------------------------------------ wire mapping


def message_to_wire(message: Message) -> dict[str, Any]:
    """One Parley message in chat-completions form."""
    role = message.role
    if role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    wire: dict[str, Any] = {"role": role}
    if message.images and role == "user":
        parts: list[dict[str, Any]] = []
        if message.content:
            parts.append({"type": "text", "text": message.content})
        for image in message.images:
            parts.append({"type": "image_url", "image_url": {"url": image.url}})
        wire["content"] = parts
    else:
        wire["content"] = message.content
    if role == "assistant" and message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in message.tool_calls
        ]
    if message.name and role == "user":
        wire["name"] = message.name
    return wire


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    }
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def request_to_wire(model: str, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a streaming ``POST /chat/completions``."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [message_to_wire(m) for m in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        kwargs["tools"] = [tool_to_wire(t) for t in request.tools]
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    if request.stop:
        kwargs["stop"] = request.stop
    if request.response_format is not None:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.response_format},
        }
    if request.tool_choice is not None and request.tools:
        name = request.tool_choice.removeprefix("function:")
        kwargs["tool_choice"] = (
            {"type": "function", "function": {"name": name}}
            if request.tool_choice.startswith("function:")
            else request.tool_choice
        )
    if request.reasoning_effort is not None:
        kwargs["reasoning_effort"] = request.reasoning_effort
    if request.parallel_tool_calls is not None and request.tools:
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.extra:
        kwargs.update(request.extra)
    return kwargs


# ------------------------------------------------------------------ model


async def sse_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The ``data`` payloads of the server-sent events, one list per network read.

    Only the partial last line of each read is carried over, so the work per
    event is a split and a slice. Events that arrived together are handed on
    together, which lets the relay coalesce them into one delta, one frame and
    one socket write; at most ``MAX_BATCH`` at a time. Before each read and
    between batches the stream takes a slice of the loop (``parley.loopshare``)
    once it has used its quantum, so one huge read, or 500 busy streams, do not
    hold up everything else in the process.
    """
    tail = b""
    data: list[bytes] = []
    batch: list[bytes] = []
    slices = loopshare.stream()
    async for chunk in chunks:
        if slices.due():
            await slices.take_slice()
        if tail:
            chunk = tail + chunk
        lines = chunk.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif data and (not line or line == b"\r"):
                batch.append(data[0] if len(data) == 1 else b"\n".join(data))
                data = []
                if len(batch) == MAX_BATCH:
                    yield batch
                    batch = []
                    if slices.due():  # let other streams run if this one had its share
                        await slices.take_slice()
        if batch:
            yield batch
            batch = []
    if tail.startswith(b"data:"):
        data.append(tail[5:].lstrip(b" "))
    if data:
        yield [b"\n".join(data)]


class OpenAIChatModel:
    """One model of an ``OpenAIProvider``.

    The request goes through the SDK (auth, headers, timeouts, status errors);
    the streamed body is read raw and each chunk decoded with ``json.loads``
    into plain dicts: the SDK's typed chunk objects cost ~60 us each, which
    would dominate a 2,000-token stream.
    """

    def __init__(self, provider: OpenAIProvider, info: ModelInfo) -> None:
        self.info = info
        self._provider = provider

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        return self._provider.shards.stream(lambda client: self._stream(client, request))

    async def _stream(
        self, client: openai.AsyncOpenAI, request: ChatRequest
    ) -> AsyncGenerator[ProviderEvent]:
        provider = self._provider
        name = provider.name
        model = self.info.name
        await loopshare.take_slice(start=True)  # building and sending the request is a heavy step
        try:
            response = await client.post(
                "/chat/completions",
                body=request_to_wire(model, request),
                cast_to=httpx2.Response,
                options=_RAW_STREAM,
            )
        except openai.APIStatusError as exc:
            raise provider.map_status(exc, model) from exc
        except (openai.APIConnectionError, httpx2.HTTPError) as exc:
            raise provider.map_transport(exc, started=False) from exc
        finish: FinishReason | None = None
        started = False
        try:
            body = response.aiter_bytes()
            async for batch in sse_batches(body):
                started = True
                events, done, reason, error = decode_batch(name, batch)
                finish = reason or finish
                for event in events:
                    yield event
                if error is not None:
                    raise error
                if done:
                    await _drain(body)
                    break
        except (openai.APIConnectionError, httpx2.HTTPError) as exc:
            raise provider.map_transport(exc, started=started) from exc
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            raise protocol_error(name, f"sent malformed streaming data ({exc})") from exc
        finally:
            await response.aclose()
        if finish is None:
            raise protocol_error(name, "ended the stream before the answer finished")
        yield Finish(finish)


class Decoded(NamedTuple):
    events: list[ProviderEvent]
    done: bool  # ``[DONE]`` came
    finish: FinishReason | None
    error: ProviderError | None  # raise it after relaying ``events``


def decode_batch(provider: str, batch: list[bytes]) -> Decoded:
    """The events in the chunks of one network read.

    Consecutive text (or reasoning) deltas are joined: tokens that arrived
    together reach the client together, as one frame instead of one each. A
    failure keeps what came before it in the read.
    """
    events: list[ProviderEvent] = []
    text: list[str] = []
    thought: list[str] = []
    finish: FinishReason | None = None
    decode = _DECODER.decode
    for data in batch:
        if data.startswith(b"[DONE]"):
            _flush(events, text, thought)
            return Decoded(events, True, finish, None)
        try:
            chunk = decode(data.decode())
            if not isinstance(chunk, dict):
                raise TypeError(f"a chunk is {type(chunk).__name__}, not an object")
        except (ValueError, TypeError) as exc:
            _flush(events, text, thought)
            return Decoded(
                events,
                False,
                finish,
                protocol_error(provider, f"sent malformed streaming data ({exc})"),
            )
        choices = chunk.get("choices")
        delta = choices[0].get("delta") if choices else None
        if delta:
            content = delta.get("content")
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                _flush(events, text=text)
                thought.append(reasoning)
            if content:
                _flush(events, thought=thought)
                text.append(content)
            calls = delta.get("tool_calls")
            if calls:
                _flush(events, text, thought)
                for call in calls:
                    fn = call.get("function") or {}
                    events.append(
                        ToolCallDelta(
                            call["index"], call.get("id"), fn.get("name"), fn.get("arguments") or ""
                        )
                    )
        usage = chunk.get("usage")
        if usage:
            _flush(events, text, thought)
            events.append(
                UsageEvent(
                    Usage(
                        usage.get("prompt_tokens") or 0,
                        usage.get("completion_tokens") or 0,
                        (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
                    )
                )
            )
        if not choices:
            if "error" in chunk:
                _flush(events, text, thought)
                return Decoded(events, False, finish, _stream_error(provider, chunk["error"]))
            continue
        reason = choices[0].get("finish_reason")
        if reason is not None:
            finish = _FINISH.get(reason, "stop")
    _flush(events, text, thought)
    return Decoded(events, False, finish, None)


def _flush(
    events: list[ProviderEvent], text: list[str] | None = None, thought: list[str] | None = None
) -> None:
    """Emit the pending reasoning, then text, as one delta each, and empty them."""
    if thought:
        events.append(ReasoningDelta("".join(thought)))
        thought.clear()
    if text:
        events.append(TextDelta("".join(text)))
        text.clear()


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (normally only the end of the body).

    A response closed unread cannot go back to the pool, so stopping at ``[DONE]``
    would cost a new connection per request. A server still talking after a
    moment is cut off instead.
    """
    with contextlib.suppress(TimeoutError, httpx2.HTTPError, openai.APIConnectionError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in body:
                pass


def _stream_error(provider: str, error: Any) -> ProviderError:
    message = error.get("message") if isinstance(error, dict) else str(error)
    return ProviderUnavailable(
        f"The provider '{provider}' reported an error in the middle of the answer: "
        f"{short_detail(str(message))}; retry the message."
    )


# --------------------------------------------------------------- provider


class OpenAIProvider(DiscoveringProvider):
    """A provider speaking the OpenAI chat-completions API."""

    kind: ProviderKind = "openai"

    def __init__(self, config: ProviderConfig, *, client: openai.AsyncOpenAI | None = None) -> None:
        super().__init__(config, config.base_url or "https://api.openai.com/v1")
        if client is not None:
            self.shards = Shards(client)
        else:
            tls = httpx2.create_ssl_context()  # one per provider, shared by its shards
            first = self._new_client(tls)
            self.shards = Shards(first, lambda: self._new_client(tls))
        self.client = self.shards.first

    def _new_client(self, tls: ssl.SSLContext) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.config.resolved_api_key() or NO_KEY,
            base_url=self.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,
            default_headers=self.config.headers or None,
            http_client=openai.DefaultAsyncHttpxClient(**http_options(tls, self.config.timeout_s)),
        )

    def map_status(self, exc: openai.APIStatusError, model: str | None = None) -> ProviderError:
        return status_error(
            self.name,
            exc.status_code,
            _detail(exc),
            model=model,
            has_key=self.has_key,
            admin=self.config.source == "database",
            retry_after=retry_after_of(exc),
        )

    async def discover_model_names(self) -> list[str]:
        """``GET /models`` now, raising ``ProviderError`` on failure."""
        try:
            page = await self.client.models.list(
                timeout=min(self.config.timeout_s, DISCOVERY_TIMEOUT_S)
            )
        except openai.APIStatusError as exc:
            raise self.map_status(exc) from exc
        except (openai.APIConnectionError, httpx2.HTTPError) as exc:
            raise self.map_transport(exc, started=False) from exc
        except (openai.APIError, ValueError, TypeError, AttributeError) as exc:
            # the SDK builds its page from whatever JSON came back (a list, a string...)
            raise protocol_error(self.name, "answered GET /models with unexpected data") from exc
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise protocol_error(self.name, "answered GET /models with unexpected data")
        entries = [m for m in data if isinstance(getattr(m, "id", None), str)]
        meta = {m.id: listed_meta(getattr(m, "model_extra", None) or {}) for m in entries}
        if self._looks_like_ollama(entries):
            for name, shown in (await self._ollama_show([m.id for m in entries])).items():
                meta[name] = {**meta.get(name, {}), **shown}
        self.endpoint_meta = {name: found for name, found in meta.items() if found}
        return sorted(meta)

    def _looks_like_ollama(self, entries: list[Any]) -> bool:
        port = httpx2.URL(self.base_url).port
        return port == OLLAMA_PORT or any(
            getattr(m, "owned_by", None) == "library" for m in entries
        )

    async def _ollama_show(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Ollama's ``POST /api/show`` per model: its context length and capabilities.
        Best effort: a model it cannot describe keeps the table's values."""
        root = self.base_url.rstrip("/").removesuffix("/v1")
        gate = asyncio.Semaphore(4)
        timeout = min(self.config.timeout_s, DISCOVERY_TIMEOUT_S)

        async def show(name: str) -> tuple[str, dict[str, Any]]:
            async with gate:
                try:
                    answer = await self.client.post(
                        f"{root}/api/show",
                        body={"model": name},
                        cast_to=object,
                        options={"timeout": timeout},
                    )
                except (openai.APIError, httpx2.HTTPError, ValueError, TypeError) as exc:
                    log.info("ollama /api/show for %r failed: %s", name, exc)
                    return name, {}
            return name, ollama_meta(answer)

        found = await asyncio.gather(*(show(n) for n in names[:OLLAMA_SHOW_LIMIT]))
        return dict(found)

    def model(self, name: str) -> OpenAIChatModel:
        return OpenAIChatModel(self, self.model_info(name))

    async def aclose(self) -> None:
        await self.shards.aclose(lambda client: client.close())
