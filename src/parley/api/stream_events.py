"""The chat turn stream's events, typed for the OpenAPI document.

The chat routes (``routers/chat.py``) answer ``text/event-stream``: each event is
``event: <name>`` and ``data: <JSON>``. The payloads are declared here, one model
per event name, field for field after what ``parley.api.turn_stream`` writes
(from the event classes of ``parley.messages``), so the document describes them
and the web app's types are generated from it (``web/src/lib/api/events.ts``).

These models are the contract only: the stream itself is framed by
``turn_stream`` straight from the dataclasses (the per-token path stays one
string concatenation); nothing here runs per event. ``tests/api/test_stream_events.py``
encodes one of each event with the real encoder and validates it against these
models, so they cannot drift apart.

``ChatStreamEvent`` is the union the routes declare: one ``...Frame`` per event
name, ``{event, data}``, as ``EventSource`` and the web app's reader see an event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import FastAPI
from pydantic import BaseModel, Field, RootModel
from pydantic.json_schema import models_json_schema

from parley.api.schemas import MessagePublic
from parley.messages import MemorySource, Source, StepAttachment, ToolStep

__all__ = [
    "REATTACH_RESPONSE",
    "SSE_RESPONSE",
    "STREAM_EVENTS",
    "ChatStreamEvent",
    "ContextEvent",
    "DoneEvent",
    "ErrorEvent",
    "MemoryUpdatedEvent",
    "ReasoningEvent",
    "ResyncEvent",
    "SourcesEvent",
    "TextEvent",
    "TitleEvent",
    "TokenUsage",
    "ToolConfirmEvent",
    "ToolResultEvent",
    "ToolStartEvent",
    "TurnStart",
    "UsageEvent",
    "document_stream_events",
]


# ---------------------------------------------------------------- payloads


class TurnStart(BaseModel):
    """``start``, the first event: the stored user message (already committed) and
    the assistant message being written."""

    user_message: MessagePublic
    assistant_message: MessagePublic


class TextEvent(BaseModel):
    """``text``: the next piece of the answer."""

    text: str


class ReasoningEvent(BaseModel):
    """``reasoning``: the next piece of the model's reasoning (shown apart)."""

    text: str


class ToolStartEvent(BaseModel):
    """``tool_start``: a tool is about to run."""

    id: str
    name: str
    arguments: str = Field(description="The JSON text the model wrote (a string, not an object).")
    offset: int | None = Field(
        description="Characters (code points) of the answer's text written before this step: "
        "the step is shown there, between the text before it and the text after it."
    )


class ToolConfirmEvent(BaseModel):
    """``tool_confirm``: a side-effecting call waits for the user's decision
    (``POST /api/conversations/{id}/tool-calls/{call_id}``)."""

    id: str
    name: str
    arguments: str = Field(description="The JSON text the model wrote (a string, not an object).")


class ToolResultEvent(BaseModel):
    """``tool_result``: what the tool answered."""

    id: str
    name: str
    output: str
    is_error: bool
    duration_ms: float
    attachments: list[StepAttachment] = Field(description="Files the tool made (may be empty).")


class SourcesEvent(BaseModel):
    """``sources``: the answer's full source list so far (sent before the answer for
    the context sources, and again after each tool that cites)."""

    sources: list[Source]


class MemoryUpdatedEvent(BaseModel):
    """``memory_updated``: the turn saved, changed or deleted saved memories (the user
    asked "remember that ...", or the model called ``remember``; or, after ``done``,
    automatic extraction learned one from the message); the web app shows a
    "Memory updated" chip linking to ``url``. The stored answer's ``sources`` hold
    them too, each with its ``action`` (during the turn, a ``sources`` event listing
    them comes first)."""

    memories: list[MemorySource]
    url: str = Field(description="Where the user manages memories (the web app's page).")


class TokenUsage(BaseModel):
    """Token counts of a turn (``usage`` and ``done``)."""

    input_tokens: int
    output_tokens: int


class UsageEvent(BaseModel):
    """``usage``: the token counts so far."""

    usage: TokenUsage


class ContextEvent(BaseModel):
    """``context``: older history was dropped or summarized to fit the model."""

    dropped_messages: int
    summarized: bool
    message: str


class ErrorEvent(BaseModel):
    """``error``: the turn failed; ``code`` is stable (``parley.errors``), ``message``
    says what to do. The stream still ends with ``done``."""

    code: str
    message: str
    retryable: bool


class DoneEvent(BaseModel):
    """``done``: the stored answer. Only events about the finished answer may follow
    it, while the stream stays open for them (60 s at most): ``title`` and
    ``memory_updated`` (a memory learned from the message after the answer)."""

    finish_reason: str
    usage: TokenUsage | None
    message: MessagePublic | None = Field(
        description="The stored answer with its siblings; null only when it could not be "
        "stored (after an `error` with code `storage_error`)."
    )


class ResyncEvent(BaseModel):
    """``resync``: only on a reattached stream whose missed events were already dropped
    (a long answer): the answer so far, to show instead of what the reader had; the
    events after it follow as usual."""

    content: str
    reasoning: str
    steps: list[ToolStep]
    sources: list[Source]


class TitleEvent(BaseModel):
    """``title``: the conversation got an automatic title (after ``done``)."""

    conversation_id: str
    title: str


# ---------------------------------------------------------------- frames


class _Frame(BaseModel):
    """One event: its name and its payload."""


class StartFrame(_Frame):
    event: Literal["start"]
    data: TurnStart


class TextFrame(_Frame):
    event: Literal["text"]
    data: TextEvent


class ReasoningFrame(_Frame):
    event: Literal["reasoning"]
    data: ReasoningEvent


class ToolStartFrame(_Frame):
    event: Literal["tool_start"]
    data: ToolStartEvent


class ToolConfirmFrame(_Frame):
    event: Literal["tool_confirm"]
    data: ToolConfirmEvent


class ToolResultFrame(_Frame):
    event: Literal["tool_result"]
    data: ToolResultEvent


class SourcesFrame(_Frame):
    event: Literal["sources"]
    data: SourcesEvent


class MemoryUpdatedFrame(_Frame):
    event: Literal["memory_updated"]
    data: MemoryUpdatedEvent


class UsageFrame(_Frame):
    event: Literal["usage"]
    data: UsageEvent


class ContextFrame(_Frame):
    event: Literal["context"]
    data: ContextEvent


class ErrorFrame(_Frame):
    event: Literal["error"]
    data: ErrorEvent


class DoneFrame(_Frame):
    event: Literal["done"]
    data: DoneEvent


class TitleFrame(_Frame):
    event: Literal["title"]
    data: TitleEvent


class ResyncFrame(_Frame):
    event: Literal["resync"]
    data: ResyncEvent


_FRAMES: tuple[type[_Frame], ...] = (
    StartFrame,
    TextFrame,
    ReasoningFrame,
    ToolStartFrame,
    ToolConfirmFrame,
    ToolResultFrame,
    SourcesFrame,
    MemoryUpdatedFrame,
    UsageFrame,
    ContextFrame,
    ErrorFrame,
    DoneFrame,
    TitleFrame,
    ResyncFrame,
)


class ChatStreamEvent(
    RootModel[
        Annotated[
            StartFrame
            | TextFrame
            | ReasoningFrame
            | ToolStartFrame
            | ToolConfirmFrame
            | ToolResultFrame
            | SourcesFrame
            | MemoryUpdatedFrame
            | UsageFrame
            | ContextFrame
            | ErrorFrame
            | DoneFrame
            | TitleFrame
            | ResyncFrame,
            Field(discriminator="event"),
        ]
    ]
):
    """One event of a chat turn's stream: ``event: <event>`` and ``data: <data as
    JSON>``. ``start`` first; then any of ``text``, ``reasoning``, ``tool_start``,
    ``tool_confirm``, ``tool_result``, ``sources``, ``memory_updated``, ``usage``,
    ``context``, ``error``; always ``done``; after it ``title`` when an automatic title
    was made and ``memory_updated`` when a memory was learned after the answer. Each has
    an ``id:`` (``start`` 0, then increasing) a reader sends back as ``Last-Event-ID``
    to reattach; ``resync`` comes only on a reattached stream."""


def _name_and_payload(frame: type[_Frame]) -> tuple[str, type[BaseModel]]:
    (name,) = get_args(frame.model_fields["event"].annotation)
    payload = frame.model_fields["data"].annotation
    assert isinstance(payload, type) and issubclass(payload, BaseModel)
    return str(name), payload


STREAM_EVENTS: dict[str, type[BaseModel]] = dict(map(_name_and_payload, _FRAMES))
"""Event name -> payload model, for every event the chat routes send."""


# ---------------------------------------------------------------- the document

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatStreamEvent"}}
        },
        "description": (
            "The turn's events, each `event: <name>` and `data: <JSON>` "
            "(`ChatStreamEvent` names every event and its payload): `start` first, then "
            "any of `text`, `reasoning`, `tool_start`, `tool_confirm`, `tool_result`, "
            "`sources`, `memory_updated`, `usage`, `context`, `error`; always `done`; "
            "after it, on a stream kept open for them (60 s at most), `title` when an "
            "automatic title was made and `memory_updated` when a memory was learned "
            "after the answer. Every event has an `id:` (`start` "
            "is 0); send the last one seen as `Last-Event-ID` to "
            "`GET .../messages/{message_id}/events` to reattach."
        ),
    }
}

REATTACH_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": SSE_RESPONSE[200]["content"],
        "description": (
            "The same events as the stream that started the turn, with the same ids: "
            "those after `Last-Event-ID` (all of them, `start` included, without it), "
            "then the live ones; `resync` (the answer so far) first when the missed "
            "events are no longer kept. Ends like the original: `done`, and the `title` "
            "or `memory_updated` that follow it; a reader that had seen `done` gets those, "
            "then `done` again from the stored message. "
            "A turn that finished earlier, or runs on another worker, answers one `done` "
            "with the stored message."
        ),
    }
}
"""The ``responses`` of the chat routes (their ``response_class`` stays a plain
``StreamingResponse``: FastAPI would otherwise also declare the body a string)."""


def document_stream_events(app: FastAPI) -> None:
    """Put ``ChatStreamEvent`` and the models it uses into ``app``'s OpenAPI components.

    FastAPI adds a model to the document only when a route declares it as a body
    or a JSON answer; the stream's events are neither, so ``SSE_RESPONSE`` refers
    to them by name and this adds them. A model the routes already put there must
    come out the same (else this raises: two models with one name).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()  # FastAPI keeps it as app.openapi_schema
        _, defs = models_json_schema(
            [(ChatStreamEvent, "serialization")], ref_template="#/components/schemas/{model}"
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise RuntimeError(f"Two different OpenAPI schemas are named {name!r}.")
        return document

    app.openapi = openapi  # type: ignore[method-assign]
