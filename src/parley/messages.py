"""Typed messages and stream events: the lingua franca of every layer.

Providers turn these into their wire formats, the engine produces and consumes
them, storage persists them, the HTTP API serializes them. This module does no
I/O and imports nothing from the rest of Parley, so every layer can depend on it.

Messages are plain dataclasses (cheap to build on the per-token path); events
carry a ``type`` tag that is also the SSE event name. The tool steps and sources
of an answer are TypedDicts: they are stored as JSON on the message row and
served as is, so the dict is the JSON (no conversion per event), and a pydantic
response model can use them as field types (``typing_extensions.TypedDict``,
which pydantic accepts on Python 3.11). Pydantic drops keys a TypedDict does not
declare, so every key sent today is declared here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict  # pydantic needs it (not typing.TypedDict) before 3.12

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    """A model's request to run a tool; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """Arguments as a dict; raises ValueError on malformed JSON."""
        try:
            value = json.loads(self.arguments or "{}")
        except RecursionError:  # nested deeper than the parser's stack: not a sane value
            raise ValueError("tool arguments are nested too deeply") from None
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
    """A tool as offered to a model: name, description, JSON schema of arguments.
    ``strict``: the caller asked the provider to hold the arguments to the schema
    exactly (OpenAI's structured function calling); adapters that cannot ignore it."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = False


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # cached ones included, as providers count them
    output_tokens: int = 0
    cached_input_tokens: int = 0  # of ``input_tokens``, read from the provider's cache


# ---------------------------------------------------------------- steps and sources
# What an answer records besides its text (``steps`` and ``sources`` of a stored
# message; ``tool_result.attachments`` and ``sources`` events carry the same shapes).


class StepAttachment(TypedDict):
    """A file a tool made (a sandbox chart or file), downloaded from ``url``."""

    id: str
    filename: str
    media_type: str
    kind: str  # "image" (shown inline) or "file"
    size: int
    url: str


class ToolStep(TypedDict):
    """One tool call of an answer: opened by ``tool_start``, completed by ``tool_result``.

    ``arguments`` is the JSON text the model sent (a string, not an object). Until
    the result arrives (a periodic flush) only ``id``, ``name``, ``arguments``,
    ``offset`` and perhaps ``needs_confirmation`` are set.

    ``offset`` is where the step falls in the answer: how many characters (Unicode
    code points) of the message's ``content`` had been written when it started, so
    the answer reads text, step, text in the order it happened. Steps stored before
    it was recorded have none (they are shown before the text).
    """

    id: str
    name: str
    arguments: str
    offset: NotRequired[int]
    output: NotRequired[str]
    is_error: NotRequired[bool]
    duration_ms: NotRequired[float]
    attachments: NotRequired[list[StepAttachment]]  # only when the tool made files
    needs_confirmation: NotRequired[bool]  # a side-effecting call waited for the user


class MemoryWhy(TypedDict):
    """Why recall put a memory in the context: its rank, its score and the parts
    of it (``parley.memory.recall``), and the floor it had to reach."""

    rank: int
    score: float
    semantic: float
    keyword: float
    topic: float
    profile: float
    floor: float


class MemorySource(TypedDict):
    """A saved memory put in the context, or changed at the user's explicit request.

    Recalled ones carry ``why`` (the "why" view under the answer), and
    ``recall: "keywords"`` when the question could not be embedded in time."""

    kind: Literal["memory"]
    id: str
    title: str
    action: NotRequired[
        Literal["added", "merged", "updated", "proposed", "deleted", "forget_proposed"]
    ]
    request: NotRequired[str]
    """``forget_proposed``: the forget request (``/api/memories/forget-requests/{id}``)
    that asks the user to approve deleting this memory."""
    why: NotRequired[MemoryWhy]
    recall: NotRequired[Literal["keywords"]]


class ConversationSource(TypedDict):
    """An earlier conversation the ``search_conversations`` tool found."""

    kind: Literal["conversation"]
    id: str
    title: str
    url: str


class WebSource(TypedDict):
    """A page a web tool read or a search result it cited; ``ref`` is the number
    the model was told to cite it by (``[ref]``), when it was given one."""

    kind: Literal["web"]
    url: str
    title: str
    snippet: str
    ref: NotRequired[int]


class FileSource(TypedDict):
    """A passage or whole file cited as ``[ref]``; ``ref`` is None for a file that
    could not be used (``mode`` pending, failed, unsupported or image, with
    ``status`` and ``detail``)."""

    kind: Literal["file"]
    title: str
    ref: int | None
    file_id: str
    filename: str
    page: int | None
    section: str | None
    chunk_id: int | None
    snippet: str
    mode: Literal["whole", "retrieved", "pending", "failed", "unsupported", "image"]
    char_start: NotRequired[int]  # retrieved passages: offsets into the file's text
    char_end: NotRequired[int]
    status: NotRequired[str]
    detail: NotRequired[str]


Source = MemorySource | ConversationSource | WebSource | FileSource
"""What an answer cites or used; ``kind`` tells the shapes apart."""


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
    """The engine is about to run a tool (arguments complete and parsed).

    ``offset``: the characters of answer text written before it (set by the turn's
    recorder, which counts them; the engine leaves it None)."""

    id: str
    name: str
    arguments: str
    offset: int | None = None
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
    attachments: list[StepAttachment] = field(default_factory=list)  # files a tool made
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ContextNotice:
    """Context assembly had to drop or summarize history; the user is told."""

    dropped_messages: int
    summarized: bool
    message: str
    type: Literal["context"] = "context"


@dataclass(slots=True)
class SourcesEvent:
    """The answer's full source list so far: sent before the answer for the context
    the features added, and again after each tool that cites (web search)."""

    sources: list[Source]
    type: Literal["sources"] = "sources"


@dataclass(slots=True)
class MemoryUpdated:
    """Memories the turn saved, changed or deleted (an explicit "remember that ...",
    the ``remember`` tool), shown as the "Memory updated" chip linking to ``url``.
    They are also in the answer's ``sources`` with their ``action``, so the stored
    message shows the chip after a reload (``memory_changes``)."""

    memories: list[MemorySource]
    url: str = "/settings/memory"
    type: Literal["memory_updated"] = "memory_updated"


def memory_changes(sources: list[Source]) -> list[MemorySource]:
    """The memories in ``sources`` the turn changed (those with an ``action``)."""
    return [s for s in sources if s["kind"] == "memory" and "action" in s]


@dataclass(slots=True)
class ErrorEvent:
    """A turn failed; ``code`` is stable (see ``parley.errors``), ``message`` actionable."""

    code: str
    message: str
    retryable: bool = False
    type: Literal["error"] = "error"


@dataclass(slots=True)
class ModelCall:
    """One model call of a reply, as the usage ledger keeps it: the tool loop makes
    one per step, and ``Done.calls`` lists them all (a call cut short by a stop
    included), so a turn writes one ledger row per call, not one per answer.

    ``outcome``: ``ok``, the provider's error code, ``cancelled``, or
    ``limit_exceeded`` (the reply's deadline); ``counted``: the provider sent no
    usage report and Parley counted the tokens."""

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    outcome: str = "ok"
    cached_input_tokens: int = 0
    counted: bool = False
    ended_at: datetime | None = None  # UTC: the ledger row's time


@dataclass(slots=True)
class Done:
    finish_reason: FinishReason
    usage: Usage
    type: Literal["done"] = "done"
    # Every model call of the reply, in order (the usage ledger); not sent to clients.
    calls: list[ModelCall] = field(default_factory=list)


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

TurnEvent = EngineEvent | SourcesEvent | MemoryUpdated
"""What a chat turn (``parley.turns``) streams: the engine's events, the sources and
the memories it changed."""


def event_to_dict(event: EngineEvent | ProviderEvent) -> dict[str, Any]:
    """JSON-ready payload of an event (dataclasses nest cleanly)."""
    return asdict(event)
