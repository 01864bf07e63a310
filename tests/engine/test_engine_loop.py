"""The model<->tool loop (``run_tool_loop``): streaming, tools, limits, failures, cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.engine import Limits, run_tool_loop
from parley.errors import ProviderRateLimited, ProviderUnavailable, ToolError
from parley.messages import (
    Done,
    EngineEvent,
    ErrorEvent,
    Finish,
    Message,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolStart,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatRequest, ModelInfo
from parley.providers.scripted import Reply, ScriptedModel, ScriptExhausted
from parley.tools import ToolRegistry, default_registry, tool

USER = [Message("system", "You are helpful."), Message("user", "hi")]


def calc(expression: str, call_id: str = "c1") -> ToolCall:
    return ToolCall(call_id, "calculator", f'{{"expression": "{expression}"}}')


async def collect(events: AsyncIterator[EngineEvent]) -> list[EngineEvent]:
    return [event async for event in events]


def kinds(events: list[EngineEvent]) -> list[str]:
    return [event.type for event in events]


def text_of(events: list[EngineEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def done_of(events: list[EngineEvent]) -> Done:
    dones = [e for e in events if isinstance(e, Done)]
    assert len(dones) == 1 and events[-1] is dones[0], "exactly one Done, at the end"
    return dones[0]


async def test_plain_text_turn_streams_deltas_and_finishes() -> None:
    model = ScriptedModel([Reply(text="Hello there, friend.", usage=Usage(10, 4))])
    events = await collect(run_tool_loop(model, USER))
    assert text_of(events) == "Hello there, friend."
    assert kinds(events) == ["text", "text", "text", "usage", "done"]
    done = done_of(events)
    assert done.finish_reason == "stop" and done.usage == Usage(10, 4)
    assert len(model.requests) == 1 and model.requests[0].tools == []


async def test_deltas_are_forwarded_as_the_same_objects() -> None:
    sent = [TextDelta("a"), TextDelta("b")]

    class Exact:
        info = ModelInfo("x", "y")

        async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
            for delta in sent:
                yield delta
            yield Finish("stop")

    events = await collect(run_tool_loop(Exact(), USER))
    assert [e for e in events if isinstance(e, TextDelta)] == sent
    assert all(a is b for a, b in zip(events[:2], sent, strict=True))


async def test_tool_call_runs_calculator_and_feeds_the_result_back() -> None:
    model = ScriptedModel(
        [Reply(text="Computing.", tool_calls=[calc("6*7")]), Reply(text="It is 42.")]
    )
    messages = list(USER)
    events = await collect(run_tool_loop(model, messages, tools=default_registry()))
    assert kinds(events) == [
        "text", "usage", "tool_start", "tool_result", "text", "text", "text", "usage", "done",
    ]  # fmt: skip
    start = next(e for e in events if isinstance(e, ToolStart))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert (start.id, start.name, start.arguments) == ("c1", "calculator", '{"expression": "6*7"}')
    assert result.output == "42" and not result.is_error and result.duration_ms >= 0
    assert done_of(events).finish_reason == "stop"
    assert {s.name for s in model.requests[0].tools} == {"calculator", "current_datetime"}
    second = model.requests[1].messages
    assert second[-2].role == "assistant" and second[-2].tool_calls == [calc("6*7")]
    assert second[-2].content == "Computing."
    assert second[-1].role == "tool" and second[-1].tool_call_id == "c1"
    assert second[-1].content.startswith('<tool_output name="calculator" status="ok">')
    assert "\n42\n" in second[-1].content
    assert messages == USER  # the caller's list is left alone


async def test_two_tools_in_one_step_report_in_call_order() -> None:
    calls = [calc("2+3", "a"), ToolCall("b", "current_datetime", '{"timezone": "Asia/Tokyo"}')]
    model = ScriptedModel([Reply(tool_calls=calls), "Done."])
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    assert kinds(events)[:5] == ["usage", "tool_start", "tool_start", "tool_result", "tool_result"]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.id for r in results] == ["a", "b"]
    assert results[0].output == "5" and "Asia/Tokyo" in results[1].output
    tool_messages = [m for m in model.requests[1].messages if m.role == "tool"]
    assert [m.tool_call_id for m in tool_messages] == ["a", "b"]


async def test_read_only_tools_run_concurrently_side_effecting_in_order() -> None:
    log: list[str] = []

    @tool
    async def slow(label: str) -> str:
        """Sleep a little."""
        log.append(f"begin {label}")
        await asyncio.sleep(0.05)
        log.append(f"finish {label}")
        return label

    @tool(side_effecting=True)
    async def write(label: str) -> str:
        """Record a write."""
        log.append(f"start {label}")
        await asyncio.sleep(0.05)
        log.append(f"end {label}")
        return label

    registry = ToolRegistry([slow, write])
    calls = [
        ToolCall("1", "slow", '{"label": "x"}'),
        ToolCall("2", "slow", '{"label": "y"}'),
        ToolCall("3", "write", '{"label": "p"}'),
        ToolCall("4", "write", '{"label": "q"}'),
    ]
    model = ScriptedModel([Reply(tool_calls=calls), "ok"])
    events = await collect(run_tool_loop(model, USER, tools=registry))
    # the read-only tools overlap; the side-effecting ones run one after the other
    assert max(log.index("begin x"), log.index("begin y")) < log.index("finish x")
    assert max(log.index("begin x"), log.index("begin y")) < log.index("finish y")
    assert [e for e in log if e[-1] in "pq"] == ["start p", "end p", "start q", "end q"]
    assert [e.output for e in events if isinstance(e, ToolResult)] == ["x", "y", "p", "q"]


async def test_max_steps_stops_with_limit_exceeded() -> None:
    model = ScriptedModel(default=Reply(tool_calls=[calc("1+1")]))
    events = await collect(run_tool_loop(model, USER, tools=default_registry(), limits=Limits(3)))
    assert len(model.requests) == 3
    assert model.requests[-1].tool_choice == "none"  # last call asks for an answer
    assert model.requests[0].extra == {}
    assert len([e for e in events if isinstance(e, ToolResult)]) == 2
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.code == "limit_exceeded" and "3 model calls" in error.message
    assert done_of(events).finish_reason == "error"
    assert kinds(events).count("usage") == 3


async def test_last_step_can_still_answer() -> None:
    model = ScriptedModel([Reply(tool_calls=[calc("1+1")]), "The answer is 2."])
    events = await collect(run_tool_loop(model, USER, tools=default_registry(), limits=Limits(2)))
    assert text_of(events) == "The answer is 2."
    assert done_of(events).finish_reason == "stop"
    assert not any(isinstance(e, ErrorEvent) for e in events)


async def test_max_tool_calls_bounds_the_tools_run_then_asks_for_the_answer() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[calc("1+1", "a"), calc("2+2", "b"), calc("3+3", "c")]),
            Reply(tool_calls=[calc("4+4", "d")]),
            "Done: 2 and 4.",
        ]
    )
    limits = Limits(8, max_tool_calls=2)
    events = await collect(run_tool_loop(model, USER, tools=default_registry(), limits=limits))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.id for r in results] == ["a", "b"]  # the third call was dropped, never run
    assert len(model.requests) == 2  # the bound is spent: the next call gets no tool
    assert model.requests[0].tool_choice is None and model.requests[1].tool_choice == "none"
    sent = model.requests[1].messages
    assert [c.id for c in sent[-3].tool_calls] == ["a", "b"]  # no dangling call ids
    assert done_of(events).finish_reason == "stop"


async def test_a_model_asking_after_the_bound_is_spent_ends_the_reply() -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[calc("1+1", "a")]), Reply(text="Hm.", tool_calls=[calc("2+2", "b")])]
    )
    limits = Limits(8, max_tool_calls=1)
    events = await collect(run_tool_loop(model, USER, tools=default_registry(), limits=limits))
    assert [r.id for r in events if isinstance(r, ToolResult)] == ["a"]
    assert text_of(events) == "Hm." and done_of(events).finish_reason == "stop"


async def test_parallel_tool_calls_false_asks_for_one_and_keeps_one() -> None:
    model = ScriptedModel([Reply(tool_calls=[calc("1+1", "a"), calc("2+2", "b")]), "Two."])
    events = await collect(
        run_tool_loop(model, USER, tools=default_registry(), parallel_tool_calls=False)
    )
    assert model.requests[0].parallel_tool_calls is False
    assert [r.id for r in events if isinstance(r, ToolResult)] == ["a"]
    assert [c.id for c in model.requests[1].messages[-2].tool_calls] == ["a"]


async def test_tool_timeout_becomes_an_error_result_and_the_turn_goes_on() -> None:
    @tool
    async def sleepy() -> str:
        """Never returns in time."""
        await asyncio.sleep(10)
        return "late"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("t", "sleepy", "{}")]), "Sorry."])
    started = time.monotonic()
    events = await collect(
        run_tool_loop(model, USER, tools=ToolRegistry([sleepy]), limits=Limits(tool_timeout_s=0.05))
    )
    assert time.monotonic() - started < 5  # the tool sleeps 10 s
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.is_error and "timed out after 0.05 s" in result.output
    assert done_of(events).finish_reason == "stop" and text_of(events) == "Sorry."
    assert "timed out" in model.requests[1].messages[-1].content


async def test_raising_tool_is_reported_not_fatal() -> None:
    @tool
    def explode(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(reason)

    @tool
    def refuse() -> str:
        """Fails politely."""
        raise ToolError("Nothing to refuse today.")

    calls = [ToolCall("1", "explode", '{"reason": "boom"}'), ToolCall("2", "refuse", "{}")]
    model = ScriptedModel([Reply(tool_calls=calls), "Recovered."])
    events = await collect(run_tool_loop(model, USER, tools=ToolRegistry([explode, refuse])))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert results[0].is_error and results[0].output == "Tool 'explode' failed: RuntimeError: boom"
    assert results[1].is_error and results[1].output == "Nothing to refuse today."
    assert done_of(events).finish_reason == "stop"


async def test_bad_tool_arguments_are_explained_to_the_model() -> None:
    calls = [
        ToolCall("1", "calculator", "{not json"),
        ToolCall("2", "calculator", '{"expression": 12}'),
        ToolCall("3", "calculator", "{}"),
        ToolCall("4", "no_such_tool", "{}"),
    ]
    model = ScriptedModel([Reply(tool_calls=calls), "ok"])
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    outputs = [e.output for e in events if isinstance(e, ToolResult)]
    assert all(e.is_error for e in events if isinstance(e, ToolResult))
    assert "not a JSON object" in outputs[0]
    assert "'expression' must be string, got integer" in outputs[1]
    assert "missing required argument 'expression'" in outputs[2]
    assert "not available" in outputs[3] and "calculator" in outputs[3]
    fed_back = [m.content for m in model.requests[1].messages if m.role == "tool"]
    assert 'status="error"' in fed_back[1] and "must be string" in fed_back[1]


async def test_disabled_tool_is_not_offered_nor_run() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("1", "current_datetime", "{}")]), "fine"])
    events = await collect(
        run_tool_loop(model, USER, tools=default_registry(), enabled_tools=["calculator"])
    )
    assert [s.name for s in model.requests[0].tools] == ["calculator"]
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.is_error and "not available" in result.output


async def test_deadline_stops_a_slow_stream() -> None:
    model = ScriptedModel([Reply(text="slow " * 100, delay_s=0.02)])
    events = await collect(run_tool_loop(model, USER, limits=Limits(deadline_s=0.15)))
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.code == "limit_exceeded" and "0.15 s" in error.message
    assert done_of(events).finish_reason == "error"
    assert 0 < len(text_of(events)) < len("slow " * 100)


async def test_deadline_stops_a_running_tool() -> None:
    @tool
    async def forever() -> str:
        """Hangs."""
        await asyncio.sleep(30)
        return "never"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("f", "forever", "{}")])])
    started = time.monotonic()
    events = await collect(
        run_tool_loop(model, USER, tools=ToolRegistry([forever]), limits=Limits(deadline_s=0.1))
    )
    assert time.monotonic() - started < 10  # the tool hangs for 30 s
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.is_error and "time ran out" in result.output
    assert kinds(events)[-2:] == ["error", "done"] and done_of(events).finish_reason == "error"
    assert len(model.requests) == 1


async def test_cancel_event_mid_stream_keeps_what_was_produced() -> None:
    model = ScriptedModel([Reply(text="word " * 200, delay_s=0.005)])
    cancel = asyncio.Event()
    events: list[EngineEvent] = []
    async for event in run_tool_loop(model, USER, cancel=cancel):
        events.append(event)
        if len(events) == 3:
            cancel.set()
    done = done_of(events)
    assert done.finish_reason == "cancelled"
    assert 3 <= len(text_of(events).split()) < 200
    assert kinds(events)[-2:] == ["usage", "done"]
    assert not any(isinstance(e, ErrorEvent) for e in events)


async def test_cancel_event_while_provider_is_silent_is_prompt() -> None:
    closed = asyncio.Event()

    class Silent:
        info = ModelInfo("x", "silent")

        async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
            try:
                yield TextDelta("thinking")
                await asyncio.sleep(30)
                yield Finish("stop")
            finally:
                closed.set()  # the upstream request is released

    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, cancel.set)
    started = time.monotonic()
    events = await collect(run_tool_loop(Silent(), USER, cancel=cancel))
    assert time.monotonic() - started < 10  # the provider is silent for 30 s
    assert done_of(events).finish_reason == "cancelled" and text_of(events) == "thinking"
    assert closed.is_set()


async def test_cancel_already_set_calls_no_model() -> None:
    model = ScriptedModel()
    cancel = asyncio.Event()
    cancel.set()
    events = await collect(run_tool_loop(model, USER, cancel=cancel))
    assert kinds(events) == ["done"] and done_of(events).finish_reason == "cancelled"
    assert model.requests == []


async def test_task_cancellation_yields_done_then_propagates() -> None:
    model = ScriptedModel([Reply(text="tick " * 500, delay_s=0.005)])
    seen: list[EngineEvent] = []

    async def consume() -> None:
        async for event in run_tool_loop(model, USER):
            seen.append(event)

    task = asyncio.create_task(consume())
    # cancel once some text has arrived (not after a fixed sleep: a loaded machine
    # may not have produced any by then)
    async with asyncio.timeout(30):
        while not text_of(seen):
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert done_of(seen).finish_reason == "cancelled"
    assert 0 < len(text_of(seen)) < len("tick " * 500)


async def test_provider_error_before_first_token() -> None:
    model = ScriptedModel([Reply(text="never", error=ProviderRateLimited("Slow down."))])
    events = await collect(run_tool_loop(model, USER))
    assert kinds(events) == ["usage", "error", "done"]
    error = events[1]
    assert isinstance(error, ErrorEvent)
    assert (error.code, error.message, error.retryable) == (
        "provider_rate_limited",
        "Slow down.",
        True,
    )
    assert done_of(events).finish_reason == "error"


async def test_provider_error_mid_stream_keeps_partial_text() -> None:
    reply = Reply(
        text="one two three four", error=ProviderUnavailable("Upstream 502."), error_after=2
    )
    events = await collect(run_tool_loop(ScriptedModel([reply]), USER))
    assert text_of(events) == "one two "
    assert kinds(events) == ["text", "text", "usage", "error", "done"]
    assert isinstance(events[3], ErrorEvent) and events[3].code == "provider_unavailable"
    assert done_of(events).finish_reason == "error"


async def test_unexpected_model_exception_and_missing_finish_become_errors() -> None:
    class Broken:
        info = ModelInfo("x", "broken")

        def __init__(self, fail: bool) -> None:
            self.fail = fail

        async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
            yield TextDelta("partial")
            if self.fail:
                raise KeyError("oops")

    crashed = await collect(run_tool_loop(Broken(True), USER))
    error = next(e for e in crashed if isinstance(e, ErrorEvent))
    assert error.code == "provider_error" and "KeyError" in error.message
    cut = await collect(run_tool_loop(Broken(False), USER))
    error = next(e for e in cut if isinstance(e, ErrorEvent))
    assert error.code == "provider_protocol" and error.retryable
    assert done_of(crashed).finish_reason == done_of(cut).finish_reason == "error"


async def test_exhausted_script_fails_the_test_loudly() -> None:
    with pytest.raises(ScriptExhausted, match="no reply queued"):
        await collect(run_tool_loop(ScriptedModel(), USER))


async def test_usage_is_reported_per_call_and_totalled() -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[calc("1")], usage=Usage(100, 5)), Reply(text="1", usage=Usage(120, 2))]
    )
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    usages = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usages == [Usage(100, 5), Usage(120, 2)]
    assert done_of(events).usage == Usage(220, 7)


async def test_usage_is_estimated_when_the_provider_reports_none() -> None:
    class Quiet:
        info = ModelInfo("x", "quiet")

        def count_tokens(self, text: str) -> int:
            return 1000 if text else 0

        async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
            yield TextDelta("x" * 40)
            yield Finish("length")

    events = await collect(run_tool_loop(Quiet(), USER))
    usage = next(e.usage for e in events if isinstance(e, UsageEvent))
    assert usage.output_tokens == 10
    assert usage.input_tokens >= 2000  # the model's own tokenizer counted the prompt
    assert done_of(events).finish_reason == "length"


def test_limits_from_settings() -> None:
    class FakeSettings:
        max_tool_steps = 3
        tool_timeout_s = 1.5
        turn_deadline_s = 20.0

    settings: Any = FakeSettings()
    assert Limits.from_settings(settings) == Limits(3, 1.5, 20.0)


async def test_closing_the_stream_early_releases_the_upstream() -> None:
    closed = asyncio.Event()

    class Endless:
        info = ModelInfo("x", "endless")

        async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
            try:
                while True:
                    yield TextDelta("more ")
                    await asyncio.sleep(0.001)
            finally:
                closed.set()

    events = run_tool_loop(Endless(), USER)
    first = await anext(events)
    assert isinstance(first, TextDelta)
    await events.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()
