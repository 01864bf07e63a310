"""An in-process model that replays scripted replies: the test double Parley ships.

Tests (ours and plugin authors') need a model that streams like a real one,
with tool calls, reasoning, usage, delays and failures, but answers exactly
what the test says. ``ScriptedModel`` pops one ``Reply`` per request from a
queue (or asks a ``default`` function), records every request it saw, and
streams the reply in small deltas ending with exactly one ``Finish``.

    call = ToolCall("c1", "calculator", '{"expression": "2+2"}')
    model = ScriptedModel([Reply(tool_calls=[call]), "2 + 2 = 4."])
    provider = ScriptedProvider(models={"echo": model})
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from parley.errors import ModelNotFound, ProviderError
from parley.messages import (
    Finish,
    FinishReason,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatRequest, ModelInfo, ProviderKind

__all__ = ["Reply", "ReplyLike", "ScriptExhausted", "ScriptedModel", "ScriptedProvider"]

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


@dataclass(slots=True)
class Reply:
    """One scripted answer.

    ``error`` is raised after ``error_after`` deltas were streamed (``None``:
    before the first one). ``chunk_size`` counts words (``chunk_unit="word"``)
    or characters per delta. ``usage=None`` reports rough counts (4 chars per
    token). ``finish_reason=None`` means "tool_calls" when there are tool calls,
    else "stop". ``data`` (any JSON value) is streamed as JSON text instead of
    ``text``: the answer to a ``response_format`` request.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    error: ProviderError | None = None
    error_after: int | None = None
    chunk_size: int = 1
    chunk_unit: Literal["word", "char"] = "word"
    delay_s: float = 0.0
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    data: Any = None


ReplyLike = Reply | str | dict[str, Any] | Callable[[ChatRequest], "Reply | str | dict[str, Any]"]


class ScriptExhausted(AssertionError):
    """The model was asked for more replies than the test scripted.

    An ``AssertionError`` on purpose: it is a bug in the test, and the engine
    lets assertion errors propagate instead of turning them into error events.
    """


def _chunks(text: str, size: int, unit: Literal["word", "char"]) -> list[str]:
    if not text:
        return []
    size = max(1, size)
    if unit == "char":
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = _WORD_BOUNDARY.split(text)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _rough_tokens(text: str) -> int:
    return (len(text) + 3) // 4


class ScriptedModel:
    """A ``ChatModel`` answering from a queue of scripted replies.

    Queue items may be a ``Reply``, a plain string, a dict (streamed as JSON)
    or a function of the ``ChatRequest`` returning one of those, like
    pydantic-ai's ``FunctionModel``. When the queue is empty, ``default``
    answers; with no default, ``ScriptExhausted`` is raised.
    """

    def __init__(
        self,
        replies: Iterable[ReplyLike] = (),
        *,
        default: ReplyLike | None = None,
        info: ModelInfo | None = None,
    ) -> None:
        self.info = info or ModelInfo(provider="scripted", name="scripted")
        self.default = default
        self.requests: list[ChatRequest] = []
        self._queue: deque[ReplyLike] = deque(replies)

    def enqueue(self, *replies: ReplyLike) -> None:
        """Append replies, answered in order by the next requests."""
        self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        return len(self._queue)

    def _next_reply(self, request: ChatRequest) -> Reply:
        if self._queue:
            item: ReplyLike = self._queue.popleft()
        elif self.default is not None:
            item = self.default
        else:
            last = request.messages[-1].content[:80] if request.messages else ""
            raise ScriptExhausted(
                f"ScriptedModel {self.info.ref!r} has no reply queued for request "
                f"#{len(self.requests)} (last message: {last!r}); enqueue() more or set default="
            )
        if callable(item):
            item = item(request)
        if isinstance(item, Reply):
            return item
        if isinstance(item, str):
            return Reply(text=item)
        return Reply(data=item)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Stream the next reply: reasoning, text, tool-call pieces, usage, finish."""
        self.requests.append(replace(request, messages=list(request.messages)))
        reply = self._next_reply(request)
        text = reply.text if reply.data is None else json.dumps(reply.data)
        deltas: list[ProviderEvent] = [
            ReasoningDelta(piece)
            for piece in _chunks(reply.reasoning, reply.chunk_size, reply.chunk_unit)
        ]
        deltas.extend(
            TextDelta(piece) for piece in _chunks(text, reply.chunk_size, reply.chunk_unit)
        )
        for index, call in enumerate(reply.tool_calls):
            deltas.append(ToolCallDelta(index=index, id=call.id, name=call.name))
            # Split arguments in two so consumers must really assemble the pieces.
            half = len(call.arguments) // 2
            for piece in (call.arguments[:half], call.arguments[half:]):
                if piece:
                    deltas.append(ToolCallDelta(index=index, arguments=piece))

        fail_at = None if reply.error is None else (reply.error_after or 0)
        for count, delta in enumerate(deltas):
            if fail_at is not None and count >= fail_at and reply.error is not None:
                raise reply.error
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            yield delta
        if reply.error is not None:
            raise reply.error

        usage = reply.usage or Usage(
            input_tokens=sum(_rough_tokens(m.content) + 4 for m in request.messages),
            output_tokens=_rough_tokens(text)
            + _rough_tokens(reply.reasoning)
            + sum(_rough_tokens(c.arguments) for c in reply.tool_calls),
        )
        yield UsageEvent(usage)
        reason = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        yield Finish(reason)


class ScriptedProvider:
    """A ``Provider`` (kind "scripted") serving named ``ScriptedModel``s.

    Lets a ``ModelRegistry`` and the HTTP layer be tested end to end without
    a network: register it like any other provider. Each model's ``info`` is
    renamed to ``<provider>/<key>`` so refs resolve as the registry expects.
    """

    kind: ProviderKind = "scripted"

    def __init__(
        self, name: str = "scripted", models: dict[str, ScriptedModel] | None = None
    ) -> None:
        self.name = name
        self.models: dict[str, ScriptedModel] = dict(models or {})
        for model_name, model in self.models.items():
            if model.info.provider != name or model.info.name != model_name:
                model.info = replace(model.info, provider=name, name=model_name)
        self.closed = False

    async def list_models(self) -> list[ModelInfo]:
        return [model.info for model in self.models.values()]

    def model(self, name: str) -> ScriptedModel:
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFound(f"Provider {self.name!r} has no model {name!r}.") from None

    async def aclose(self) -> None:
        self.closed = True
