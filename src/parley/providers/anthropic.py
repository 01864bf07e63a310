"""Anthropic provider over the official ``anthropic`` SDK (optional extra).

The SDK is imported on first use, so Parley installs and runs without it; a
provider of kind "anthropic" then fails with a message saying how to install
it. Maps system prompts, tool_use / tool_result blocks, images, thinking
(-> ``ReasoningDelta``) and usage; errors map exactly like the OpenAI adapter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx2

from parley import loopshare
from parley.config import ProviderConfig
from parley.errors import ProviderError
from parley.messages import (
    Finish,
    FinishReason,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatRequest, ModelInfo, ProviderKind
from parley.providers.discovery import DISCOVERY_TIMEOUT_S, DiscoveringProvider
from parley.providers.failures import protocol_error, retry_after_of, status_error
from parley.providers.openai_compat import NO_KEY
from parley.providers.pools import Shards, http_options

if TYPE_CHECKING:
    import anthropic as anthropic_sdk

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# error types Anthropic reports inside a 200 stream ("event: error")
_STREAM_ERROR_STATUS = {
    "overloaded_error": 529,
    "api_error": 500,
    "rate_limit_error": 429,
    "authentication_error": 401,
    "permission_error": 403,
    "invalid_request_error": 400,
    "not_found_error": 404,
}


def _sdk(provider: str) -> Any:
    try:
        import anthropic
    except ImportError as exc:
        raise ProviderError(
            f"The provider '{provider}' is of kind 'anthropic' but the anthropic package is "
            "not installed; install it with: pip install 'parley[anthropic]'."
        ) from exc
    return anthropic


def _image_block(url: str, media_type: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        head, data = url.split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": head[5:] or media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _arguments(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def messages_to_wire(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system prompt, alternating user/assistant messages with content blocks)."""
    system: list[str] = []
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
            continue
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        else:
            role = message.role
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for image in message.images:
                blocks.append(_image_block(image.url, image.media_type))
            for call in message.tool_calls:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": _arguments(call.arguments),
                    }
                )
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:  # the API wants roles to alternate
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), wire


# Responses' reasoning efforts as Anthropic's extended-thinking budgets (tokens).
THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32000}


def request_to_wire(info: ModelInfo, request: ChatRequest) -> dict[str, Any]:
    system, messages = messages_to_wire(request.messages)
    kwargs: dict[str, Any] = {
        "model": info.name,
        "messages": messages,
        "max_tokens": request.max_tokens or info.max_output_tokens,
        "stream": True,
    }
    if system:
        kwargs["system"] = system
    if request.tools:
        kwargs["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    if request.stop:
        kwargs["stop_sequences"] = request.stop
    if request.response_format is not None:
        kwargs["output_config"] = {
            "format": {"type": "json_schema", "schema": request.response_format}
        }
    if request.tool_choice is not None and request.tools:
        choice = request.tool_choice
        kwargs["tool_choice"] = (
            {"type": "tool", "name": choice.removeprefix("function:")}
            if choice.startswith("function:")
            else {"type": {"required": "any"}.get(choice, choice)}
        )
    if request.parallel_tool_calls is False and request.tools:
        # Anthropic says it on the tool choice (not allowed with "none")
        choice_obj = kwargs.setdefault("tool_choice", {"type": "auto"})
        if choice_obj.get("type") != "none":
            choice_obj["disable_parallel_tool_use"] = True
    if request.reasoning_effort in THINKING_BUDGET and info.supports_reasoning:
        budget = THINKING_BUDGET[request.reasoning_effort]
        kwargs["thinking"] = {"type": "enabled", "budget_tokens": budget}
        kwargs["max_tokens"] = max(kwargs["max_tokens"], budget + 1024)
    extra = dict(request.extra)
    if request.temperature is not None:
        extra["temperature"] = request.temperature
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


class AnthropicChatModel:
    """One model of an ``AnthropicProvider``."""

    def __init__(self, provider: AnthropicProvider, info: ModelInfo) -> None:
        self.info = info
        self._provider = provider

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        return self._provider.shards.stream(lambda client: self._stream(client, request))

    async def _stream(self, client: Any, request: ChatRequest) -> AsyncGenerator[ProviderEvent]:
        provider = self._provider
        sdk = _sdk(provider.name)
        model = self.info.name
        await loopshare.take_slice(start=True)  # building and sending the request is a heavy step
        try:
            stream = await client.messages.create(**request_to_wire(self.info, request))
        except sdk.APIStatusError as exc:
            raise provider.map_status(exc, model) from exc
        except (sdk.APIConnectionError, httpx2.HTTPError) as exc:
            raise provider.map_transport(exc, started=False) from exc
        started = False
        finish: FinishReason | None = None
        input_tokens = 0
        tool_index: dict[int, int] = {}
        slices = loopshare.stream()
        try:
            async for event in stream:
                if slices.due():
                    await slices.take_slice()
                started = True
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    dkind = delta.type
                    if dkind == "text_delta":
                        yield TextDelta(delta.text)
                    elif dkind == "thinking_delta":
                        yield ReasoningDelta(delta.thinking)
                    elif dkind == "input_json_delta":
                        index = tool_index.get(event.index)
                        if index is not None and delta.partial_json:
                            yield ToolCallDelta(index, arguments=delta.partial_json)
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        index = tool_index[event.index] = len(tool_index)
                        yield ToolCallDelta(index, block.id, block.name, "")
                elif kind == "message_start":
                    # Anthropic counts cache reads and writes apart from input_tokens
                    given = event.message.usage
                    cached = getattr(given, "cache_read_input_tokens", None) or 0
                    written = getattr(given, "cache_creation_input_tokens", None) or 0
                    input_tokens = (given.input_tokens or 0) + cached + written
                elif kind == "message_delta":
                    reason = event.delta.stop_reason
                    if reason is not None:
                        finish = _STOP.get(reason, "stop")
                    yield UsageEvent(Usage(input_tokens, event.usage.output_tokens or 0, cached))
                elif kind == "message_stop" and finish is None:
                    finish = "stop"
        except sdk.APIStatusError as exc:
            raise provider.map_status(exc, model) from exc
        except (sdk.APIConnectionError, httpx2.HTTPError) as exc:
            raise provider.map_transport(exc, started=started) from exc
        except (ValueError, AttributeError, TypeError) as exc:
            raise protocol_error(provider.name, f"sent malformed streaming data ({exc})") from exc
        finally:
            await stream.close()
        if finish is None:
            raise protocol_error(provider.name, "ended the stream before the answer finished")
        yield Finish(finish)


class AnthropicProvider(DiscoveringProvider):
    """A provider speaking Anthropic's Messages API."""

    kind: ProviderKind = "anthropic"

    def __init__(
        self, config: ProviderConfig, *, client: anthropic_sdk.AsyncAnthropic | None = None
    ) -> None:
        base_url = (config.base_url or "https://api.anthropic.com").rstrip("/")
        base_url = base_url.removesuffix("/v1")  # the SDK adds /v1 itself
        super().__init__(config, base_url)
        self._shards: Shards[Any] | None = Shards(client) if client is not None else None

    @property
    def shards(self) -> Shards[Any]:
        """SDK clients with a connection pool each (see ``providers.pools``), made
        on first use: the SDK is an optional extra."""
        if self._shards is None:
            sdk = _sdk(self.name)
            tls = httpx2.create_ssl_context()  # one per provider, shared by its shards

            def make() -> Any:
                return sdk.AsyncAnthropic(
                    api_key=self.config.resolved_api_key() or NO_KEY,
                    base_url=self.base_url,
                    timeout=self.config.timeout_s,
                    max_retries=0,
                    default_headers=self.config.headers or None,
                    http_client=sdk.DefaultAsyncHttpxClient(
                        **http_options(tls, self.config.timeout_s)
                    ),
                )

            self._shards = Shards(make(), make)
        return self._shards

    def get_client(self) -> anthropic_sdk.AsyncAnthropic:
        return self.shards.first

    def map_status(self, exc: Any, model: str | None = None) -> ProviderError:
        status: int = exc.status_code
        body = exc.body
        detail = str(exc.message)
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                detail = str(error.get("message") or detail)
                if status < 400:  # an error event inside a 200 stream
                    status = _STREAM_ERROR_STATUS.get(str(error.get("type")), 500)
        return status_error(
            self.name,
            status,
            detail,
            model=model,
            has_key=self.has_key,
            admin=self.config.source == "database",
            retry_after=retry_after_of(exc),
        )

    async def discover_model_names(self) -> list[str]:
        sdk = _sdk(self.name)
        client = self.get_client()
        try:
            page = await client.models.list(
                limit=1000, timeout=min(self.config.timeout_s, DISCOVERY_TIMEOUT_S)
            )
        except sdk.APIStatusError as exc:
            raise self.map_status(exc) from exc
        except (sdk.APIConnectionError, httpx2.HTTPError) as exc:
            raise self.map_transport(exc, started=False) from exc
        except (sdk.APIError, ValueError, TypeError, AttributeError) as exc:
            # the SDK builds its page from whatever JSON came back (a list, a string...)
            raise protocol_error(self.name, "answered GET /v1/models with unexpected data") from exc
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise protocol_error(self.name, "answered GET /v1/models with unexpected data")
        entries = [m for m in data if isinstance(getattr(m, "id", None), str)]
        self.endpoint_meta = {
            m.id: {"display_name": m.display_name}
            for m in entries
            if isinstance(getattr(m, "display_name", None), str) and m.display_name != m.id
        }
        return sorted({m.id for m in entries})

    def model(self, name: str) -> AnthropicChatModel:
        return AnthropicChatModel(self, self.model_info(name))

    async def aclose(self) -> None:
        if self._shards is not None:
            await self._shards.aclose(lambda client: client.close())
