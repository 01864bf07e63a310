"""The tool loop: stream the model, run the tools it asks for, feed results back.

``run_tool_loop`` is what a chat turn (``parley.turns``) and the CLI call for
every assistant reply. (Named apart from the stored chat turn of ``parley.turns``
and from the event loop's time slices of ``parley.loopshare``.)
It yields engine events (text and reasoning deltas as they arrive, tool
start/result, one usage event per model call, errors) and always ends with
exactly one ``Done``, whatever happens: provider errors, tool failures, step
or time limits, cancellation. A stream that never finishes is the worst
failure a chat UI can have, so every exit path goes through one place.

The model is read by a pump task feeding a queue, so a stop request or the
deadline takes effect at once even while the provider is silent, without
wrapping each token in a timeout (the per-token path is one queue hop and
a type check; the delta objects are forwarded as is).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from parley.engine.mailbox import Mailbox
from parley.errors import LimitExceeded, ProviderError
from parley.messages import (
    Done,
    EngineEvent,
    ErrorEvent,
    Finish,
    FinishReason,
    Message,
    ModelCall,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatModel, ChatRequest
from parley.tools.base import ToolContext, ToolOutcome, ToolRegistry

from .context import wrap_tool_output
from .json_tools import json_tool_loop
from .tokens import counter_for, messages_tokens, tools_tokens
from .tool_calls import STOP_GRACE_S, Confirm, ToolCalls

if TYPE_CHECKING:
    from parley.config import Settings

__all__ = ["Confirm", "Limits", "run_tool_loop"]

logger = logging.getLogger(__name__)

_END = object()
_INTERRUPT = object()


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one reply: model calls, seconds per tool, seconds overall, and
    (``/v1/responses``' ``max_tool_calls``) Parley tool calls in all: once they are
    spent the model is asked for its answer with no tools, and calls beyond the
    bound in one answer are dropped, never run."""

    max_steps: int = 8
    tool_timeout_s: float = 30.0
    deadline_s: float = 600.0
    max_tool_calls: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_steps=settings.max_tool_steps,
            tool_timeout_s=settings.tool_timeout_s,
            deadline_s=settings.turn_deadline_s,
        )


@dataclass(slots=True)
class _Failure:
    error: BaseException


@dataclass(slots=True)
class CallResult:
    """What one model call produced (kept for the loop to inspect)."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish: FinishReason | None = None
    error: ErrorEvent | None = None
    interrupted: bool = False


def _error_event(exc: BaseException) -> ErrorEvent:
    if isinstance(exc, ProviderError):
        return ErrorEvent(exc.code, exc.message, exc.retryable)
    logger.error("model stream failed unexpectedly", exc_info=exc)
    return ErrorEvent(
        ProviderError.code,
        f"The model failed unexpectedly ({type(exc).__name__}: {exc}).",
        False,
    )


class ToolLoop(ToolCalls):
    """State shared by the native and the JSON tool loops (internal).

    ``call_model`` and ``run_tools`` (``ToolCalls``, in ``tool_calls.py``) are async
    generators of events; their results are left in ``result`` and ``outcomes`` for
    the loop to read.
    """

    def __init__(
        self,
        model: ChatModel,
        messages: Sequence[Message],
        *,
        tools: ToolRegistry | None,
        enabled_tools: Iterable[str] | None,
        tool_context: ToolContext | None,
        limits: Limits,
        cancel: asyncio.Event | None,
        temperature: float | None,
        max_tokens: int | None,
        confirm: Confirm | None = None,
        client_tools: Sequence[ToolSpec] = (),
        extra: dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
        tool_choice: str | None = None,
        reasoning_effort: str | None = None,
        parallel_tool_calls: bool | None = None,
    ) -> None:
        self.model = model
        self.parallel_tool_calls = parallel_tool_calls
        self.response_format = response_format
        self.tool_choice = tool_choice
        self.reasoning_effort = reasoning_effort if model.info.supports_reasoning else None
        self.confirm = confirm
        self.convo: list[Message] = list(messages)
        self.registry = tools
        self.specs = tools.specs(enabled_tools) if tools is not None else []
        self.enabled = {spec.name for spec in self.specs}
        # Tools the caller runs itself (``/v1/responses`` function tools): offered to
        # the model, never run here; a call to one ends the reply (``tool_calls``).
        self.client = {spec.name for spec in client_tools} - self.enabled
        self.specs += [spec for spec in client_tools if spec.name in self.client]
        self.extra = dict(extra or {})
        self.tool_context = tool_context
        self.limits = limits
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.usage = Usage()
        self.calls = 0
        self.tools_run = 0  # Parley tool calls run so far (``Limits.max_tool_calls``)
        self.reports: list[ModelCall] = []  # one per model call, for the usage ledger
        self._call_ids: set[str] = set()  # tool call ids used so far in this reply
        self.finish: FinishReason = "stop"
        self.reason: Literal["cancelled", "deadline"] | None = None
        self.result = CallResult()
        self.outcomes: list[ToolOutcome] = []
        self._cancel = cancel
        self._count = counter_for(model)
        self._queue: Mailbox[object] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._interrupted: asyncio.Future[str] | None = None
        self._watchers: list[asyncio.TimerHandle | asyncio.Task[bool]] = []

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._interrupted = loop.create_future()
        self._watchers.append(loop.call_later(self.limits.deadline_s, self.interrupt, "deadline"))
        if self._cancel is not None:
            if self._cancel.is_set():
                self.interrupt("cancelled")
            else:
                waiter = asyncio.create_task(self._cancel.wait())
                waiter.add_done_callback(
                    lambda t: None if t.cancelled() else self.interrupt("cancelled")
                )
                self._watchers.append(waiter)

    def interrupt(self, reason: Literal["cancelled", "deadline"]) -> None:
        """Stop the loop at the next opportunity (now, if waiting on the model or tools)."""
        if self.reason is not None:
            return
        self.reason = reason
        if self._interrupted is not None and not self._interrupted.done():
            self._interrupted.set_result(reason)
        if self._queue is not None:
            self._queue.put_nowait(_INTERRUPT)

    async def stop(self) -> None:
        """Cancel watchers and any model stream or tool still running, and wait briefly."""
        for watcher in self._watchers:
            watcher.cancel()
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=STOP_GRACE_S)

    def fail(self, code: str, message: str, retryable: bool = False) -> ErrorEvent:
        self.finish = "error"
        return ErrorEvent(code, message, retryable)

    def interrupt_events(self) -> list[EngineEvent]:
        """Events that end an interrupted loop; sets ``finish``."""
        if self.reason == "deadline":
            return [
                self.fail(
                    LimitExceeded.code,
                    f"The reply took longer than {self.limits.deadline_s:g} s and was stopped.",
                )
            ]
        self.finish = "cancelled"
        return []

    def stopped(self, result: CallResult) -> list[EngineEvent] | None:
        """End events when a model call was interrupted or failed, else ``None``."""
        if result.interrupted:
            return self.interrupt_events()
        if result.error is not None:
            self.finish = "error"
            return [result.error]
        return None

    # ------------------------------------------------------------ model calls

    def tools_left(self) -> int | None:
        """Parley tool calls this reply may still run (None: no bound)."""
        bound = self.limits.max_tool_calls
        return None if bound is None else max(0, bound - self.tools_run)

    def request(self, *, final: bool = False) -> ChatRequest:
        """A native-tools request over the conversation so far."""
        choice = self.tool_choice if self.specs and not self.calls else None  # first call
        if (final or self.tools_left() == 0) and self.specs:
            choice = "none"
        return ChatRequest(
            messages=self.convo,
            tools=self.specs,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            response_format=self.response_format,
            tool_choice=choice,
            reasoning_effort=self.reasoning_effort,
            parallel_tool_calls=self.parallel_tool_calls,
            extra=self.extra,
        )

    async def _pump(self, request: ChatRequest, queue: Mailbox[object]) -> None:
        stream = self.model.stream(request)
        try:
            async for event in stream:
                queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            queue.put_nowait(_Failure(exc))
            if not isinstance(exc, Exception):
                raise
        else:
            queue.put_nowait(_END)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def call_model(
        self, request: ChatRequest, *, forward: bool = True
    ) -> AsyncIterator[EngineEvent]:
        """Stream one model call, forwarding deltas when ``forward``; ends with
        one ``UsageEvent``. Assertion errors (test scripts) propagate.

        Whatever happens, the call leaves one ``ModelCall`` in ``reports``: its
        tokens (the provider's report, else counted: a non-empty answer is never
        zero), latency and outcome; a call whose consumer went away (the turn's
        task cancelled) is reported ``cancelled`` with what it streamed so far."""
        self.calls += 1
        started = time.monotonic()
        result = self.result = CallResult()
        queue: Mailbox[object] = Mailbox()
        self._queue = queue
        pump = asyncio.create_task(self._pump(request, queue))
        self._tasks.add(pump)
        text: list[str] = []
        out_chars = 0
        pieces: dict[int, tuple[list[str | None], list[str]]] = {}
        reported: Usage | None = None
        failure: BaseException | None = None
        reported_call = False
        try:
            while True:
                item = await queue.get()
                if self.reason is not None:
                    result.interrupted = True
                    break
                if isinstance(item, TextDelta):  # the hot path: one check, no copies
                    text.append(item.text)
                    out_chars += len(item.text)
                    if forward:
                        yield item
                elif isinstance(item, ReasoningDelta):
                    out_chars += len(item.text)
                    if forward:
                        yield item
                elif isinstance(item, ToolCallDelta):
                    head, args = pieces.setdefault(item.index, ([None, None], []))
                    head[0] = item.id or head[0]
                    head[1] = item.name or head[1]
                    if item.arguments:
                        args.append(item.arguments)
                        out_chars += len(item.arguments)
                elif isinstance(item, UsageEvent):
                    reported = item.usage
                elif isinstance(item, Finish):
                    result.finish = item.reason
                elif isinstance(item, _Failure):
                    failure = item.error
                    break
                elif item is _END:
                    break
        except BaseException:  # closed or cancelled mid-call: still one report
            usage = self._usage(request, reported, out_chars)
            self.reports.append(self._report(usage, reported, started, "cancelled"))
            reported_call = True
            raise
        finally:
            self._queue = None
            if not pump.done():
                pump.cancel()
        if isinstance(failure, AssertionError):
            raise failure
        if failure is not None:
            result.error = _error_event(failure)
        elif result.finish is None and not result.interrupted:
            result.error = ErrorEvent(
                "provider_protocol", "The model's stream ended without finishing.", True
            )
        result.text = "".join(text)
        result.tool_calls = [
            ToolCall(
                id=self._unique_id(head[0] or f"call_{self.calls}_{index}"),
                name=head[1] or "",
                arguments="".join(args) or "{}",
            )
            for index, (head, args) in sorted(pieces.items())
        ]
        usage = self._usage(request, reported, out_chars)
        if not reported_call:
            if result.interrupted:
                outcome = "cancelled" if self.reason == "cancelled" else LimitExceeded.code
            else:
                outcome = result.error.code if result.error is not None else "ok"
            self.reports.append(self._report(usage, reported, started, outcome))
        self.usage.input_tokens += usage.input_tokens
        self.usage.output_tokens += usage.output_tokens
        self.usage.cached_input_tokens += usage.cached_input_tokens
        yield UsageEvent(usage)

    def _usage(self, request: ChatRequest, reported: Usage | None, out_chars: int) -> Usage:
        """The call's tokens: the provider's counts, each missing one counted (the
        request with the model's counter, the answer's characters / 4), so a
        non-empty answer is never zero tokens."""
        given = reported or Usage()
        input_tokens = given.input_tokens
        if input_tokens <= 0:
            input_tokens = messages_tokens(request.messages, self._count) + tools_tokens(
                request.tools, self._count
            )
        output_tokens = given.output_tokens
        if output_tokens <= 0 and out_chars:
            output_tokens = max(1, (out_chars + 3) // 4)
        cached = min(given.cached_input_tokens, input_tokens) if given.input_tokens > 0 else 0
        return Usage(input_tokens, output_tokens, cached)

    def _report(
        self, usage: Usage, reported: Usage | None, started: float, outcome: str
    ) -> ModelCall:
        info = self.model.info
        return ModelCall(
            provider=info.provider,
            model=info.ref,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            latency_ms=(time.monotonic() - started) * 1000,
            outcome=outcome,
            ended_at=datetime.now(UTC),
            counted=reported is None
            or reported.input_tokens <= 0
            or (reported.output_tokens <= 0 and usage.output_tokens > 0),
        )

    def _unique_id(self, call_id: str) -> str:
        """Some servers number calls per response (``call_0`` every round): steps,
        results and confirmations are keyed by id, so a repeat gets a suffix."""
        unique, n = call_id, 1
        while unique in self._call_ids:
            n += 1
            unique = f"{call_id}~{n}"
        self._call_ids.add(unique)
        return unique

    # ------------------------------------------------------------ native loop

    async def native_loop(self) -> AsyncGenerator[EngineEvent, None]:
        """Model -> tools -> model ... for models with native tool calling."""
        max_steps = max(1, self.limits.max_steps)
        for step in range(1, max_steps + 1):
            async for event in self.call_model(self.request(final=step == max_steps)):
                yield event
            result = self.result
            ended = self.stopped(result)
            if ended is not None:
                for event in ended:
                    yield event
                return
            if not result.tool_calls:
                self.finish = "stop" if result.finish in (None, "tool_calls") else result.finish
                return
            if self.parallel_tool_calls is False:  # held here too: not every provider can
                del result.tool_calls[1:]
            if any(call.name in self.client for call in result.tool_calls):
                async for event in self.hand_over(result.text, result.tool_calls):
                    yield event
                return
            if step == max_steps:
                yield self.fail(
                    LimitExceeded.code,
                    f"Stopped after {max_steps} model calls: the model kept asking for tools "
                    "without giving a final answer. Try rephrasing, or disable some tools.",
                )
                return
            left = self.tools_left()
            calls = result.tool_calls if left is None else result.tool_calls[:left]
            if not calls:  # the bound is spent and the model asked anyway: answer now
                self.finish = "stop"
                return
            self.convo.append(Message("assistant", result.text, tool_calls=calls))
            async for event in self.run_tools(calls):
                yield event
            for call, outcome in zip(calls, self.outcomes, strict=True):
                content = wrap_tool_output(call.name, outcome.output, is_error=outcome.is_error)
                self.convo.append(Message("tool", content, tool_call_id=call.id, name=call.name))
            if self.reason is not None:
                for event in self.interrupt_events():
                    yield event
                return


async def run_tool_loop(
    model: ChatModel,
    messages: list[Message],
    *,
    tools: ToolRegistry | None = None,
    enabled_tools: list[str] | None = None,
    tool_context: ToolContext | None = None,
    limits: Limits = Limits(),  # frozen, so one shared default is safe
    cancel: asyncio.Event | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    confirm: Confirm | None = None,
    client_tools: Sequence[ToolSpec] = (),
    extra: dict[str, Any] | None = None,
    response_format: dict[str, Any] | None = None,
    tool_choice: str | None = None,
    reasoning_effort: str | None = None,
    parallel_tool_calls: bool | None = None,
) -> AsyncIterator[EngineEvent]:
    """Produce one assistant reply over ``messages`` (already assembled, system first).

    ``enabled_tools=None`` offers every tool in ``tools``. Models whose
    ``info.supports_tools`` is false get tools through JSON-constrained
    decisions (``parley.engine.json_tools``); models whose ``info.tool_use`` is
    false get no tools and no decision pass (one streamed call). Setting ``cancel`` stops the loop
    with ``Done("cancelled")``. With ``confirm``, side-effecting tools run only
    once it returns true (denied calls report an error result to the model);
    its ``ToolConfirm`` event is yielded first. ``client_tools`` are offered but
    run by the caller: a call to one ends the reply with ``Done("tool_calls")``
    after a ``ToolStart`` for it (``ToolLoop.hand_over``). ``extra`` goes into every
    model request (``top_p``), ``tool_choice`` applies to the first call only,
    ``reasoning_effort`` to models that reason, and ``response_format`` (a JSON
    schema) shapes every answer. ``parallel_tool_calls=False`` asks the provider for
    one call per answer (and keeps only the first if it sends more);
    ``limits.max_tool_calls`` bounds the Parley tool calls of the whole reply. If the consuming task
    itself is cancelled, ``Done("cancelled")`` is still yielded (so the partial reply can be saved)
    and ``CancelledError`` is raised when the consumer asks for the next event.
    ``messages`` is not modified.
    """
    run = ToolLoop(
        model,
        messages,
        tools=tools,
        enabled_tools=enabled_tools,
        tool_context=tool_context,
        limits=limits,
        cancel=cancel,
        temperature=temperature,
        max_tokens=max_tokens,
        confirm=confirm,
        client_tools=client_tools,
        extra=extra,
        response_format=response_format,
        tool_choice=tool_choice,
        reasoning_effort=reasoning_effort,
        parallel_tool_calls=parallel_tool_calls,
    )
    if not model.info.tool_use:  # a model that cannot follow a tool schema gets none
        run.specs, run.enabled, run.client = [], set(), set()
    run.start()
    cancelled_outside = False
    try:
        if run.reason is not None:
            for event in run.interrupt_events():
                yield event
        else:
            use_json = bool(run.specs) and not model.info.supports_tools
            body = json_tool_loop(run) if use_json else run.native_loop()
            async with aclosing(body):
                async for event in body:
                    yield event
    except asyncio.CancelledError:
        cancelled_outside = True
        run.finish = "cancelled"
    finally:
        await run.stop()
    yield Done(run.finish, run.usage, calls=run.reports)
    if cancelled_outside:
        raise asyncio.CancelledError
