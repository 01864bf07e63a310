"""Typed messages and stream events: the lingua franca of every layer.

Providers turn these into their wire formats, the engine produces and consumes
them, storage persists them, the HTTP API serializes them. This module does no
I/O and imports nothing from the rest of Parley, so every layer can depend on it.

Messages are plain dataclasses (cheap to build on the per-token path); events
carry a ``type`` tag that is also the SSE event name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    """A model's request to run a tool; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """Arguments as a dict; raises ValueError on malformed JSON."""
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError("tool arguments must be a JSON object")
        return value


@dataclass(slots=True)
class ImagePart:
    """An image for vision-capable models: a data URL or an https URL."""

    url: str
    media_type: str = "image/png"


@dataclass(slots=True)
class Message:
    """One chat message as providers see it.

    ``tool_call_id`` and ``name`` are set on ``role == "tool"`` messages;
    ``tool_calls`` on assistant messages that asked for tools.
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    images: list[ImagePart] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ToolSpec:
    """A tool as offered to a model: name, description, JSON schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


# ---------------------------------------------------------------- stream events
# What a provider yields while streaming: text, reasoning, tool-call pieces,
# usage, and exactly one finish at the end (or a ProviderError is raised).


@dataclass(slots=True)
class TextDelta:
    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ReasoningDelta:
    text: str
    type: Literal["reasoning"] = "reasoning"


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call; ``index`` ties pieces together.

    The first piece for an index carries ``id`` and ``name``; later pieces
    append to ``arguments``.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(slots=True)
class UsageEvent:
    usage: Usage
    type: Literal["usage"] = "usage"


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "cancelled", "error"]


@dataclass(slots=True)
class Finish:
    reason: FinishReason = "stop"
    type: Literal["finish"] = "finish"


ProviderEvent = TextDelta | ReasoningDelta | ToolCallDelta | UsageEvent | Finish


# ---------------------------------------------------------------- engine events
# What the turn engine yields to the API and CLI. Each has a ``type`` used as
# the SSE event name; ``to_dict`` gives the JSON payload.


@dataclass(slots=True)
class ToolStart:
    """The engine is about to run a tool (arguments complete and parsed)."""

    id: str
    name: str
    arguments: str
    type: Literal["tool_start"] = "tool_start"


@dataclass(slots=True)
class ToolConfirm:
    """A side-effecting tool call waits for the user to approve or deny it."""

    id: str
    name: str
    arguments: str
    type: Literal["tool_confirm"] = "tool_confirm"


@dataclass(slots=True)
class ToolResult:
    id: str
    name: str
    output: str
    is_error: bool = False
    duration_ms: float = 0.0
    attachments: list[dict[str, Any]] = field(default_factory=list)  # files a tool made
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ContextNotice:
    """Context assembly had to drop or summarize history; the user is told."""

    dropped_messages: int
    summarized: bool
    message: str
    type: Literal["context"] = "context"


@dataclass(slots=True)
class ErrorEvent:
    """A turn failed; ``code`` is stable (see ``parley.errors``), ``message`` actionable."""

    code: str
    message: str
    retryable: bool = False
    type: Literal["error"] = "error"


@dataclass(slots=True)
class Done:
    finish_reason: FinishReason
    usage: Usage
    type: Literal["done"] = "done"


EngineEvent = (
    TextDelta
    | ReasoningDelta
    | ToolStart
    | ToolConfirm
    | ToolResult
    | UsageEvent
    | ContextNotice
    | ErrorEvent
    | Done
)


def event_to_dict(event: EngineEvent | ProviderEvent) -> dict[str, Any]:
    """JSON-ready payload of an event (dataclasses nest cleanly)."""
    return asdict(event)
