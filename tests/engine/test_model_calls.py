"""Every model call of a reply is reported once in ``Done.calls`` (the usage ledger's
rows for a chat turn): its tokens (the provider's, else counted: never zero for a
non-empty answer), latency and outcome, however the call ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from parley.engine import run_tool_loop
from parley.errors import ProviderRateLimited
from parley.messages import (
    Done,
    EngineEvent,
    Finish,
    Message,
    ModelCall,
    ProviderEvent,
    TextDelta,
    ToolCall,
    Usage,
)
from parley.providers.base import ChatRequest, ModelInfo
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import default_registry

USER = [Message("system", "You are helpful."), Message("user", "hi")]


def calc(expression: str) -> ToolCall:
    return ToolCall("c1", "calculator", f'{{"expression": "{expression}"}}')


async def done_of(events: AsyncIterator[EngineEvent]) -> Done:
    found = [event async for event in events]
    assert isinstance(found[-1], Done)
    return found[-1]


async def test_a_tool_loop_with_two_model_calls_reports_two_calls() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[calc("6*7")], usage=Usage(100, 5)),
            Reply(text="42", usage=Usage(130, 2)),
        ]
    )
    done = await done_of(run_tool_loop(model, USER, tools=default_registry()))
    assert [(c.input_tokens, c.output_tokens, c.outcome, c.counted) for c in done.calls] == [
        (100, 5, "ok", False),
        (130, 2, "ok", False),
    ]
    assert {(c.provider, c.model) for c in done.calls} == {("scripted", "scripted/scripted")}
    assert all(c.latency_ms >= 0 for c in done.calls)
    # the message's totals are the sum of the calls
    assert done.usage == Usage(230, 7)


async def test_a_call_without_a_usage_report_is_counted_never_zero() -> None:
    class Quiet:
        info = ModelInfo("x", "quiet")

        async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
            yield TextDelta("a short answer")
            yield Finish("stop")

    done = await done_of(run_tool_loop(Quiet(), USER))
    (call,) = done.calls
    assert call.counted and call.input_tokens > 0 and call.output_tokens > 0
    assert (call.model, call.outcome) == ("x/quiet", "ok")


async def test_a_report_of_zero_output_tokens_for_text_is_counted() -> None:
    model = ScriptedModel([Reply(text="twelve characters", usage=Usage(50, 0))])
    done = await done_of(run_tool_loop(model, USER))
    (call,) = done.calls
    assert call.input_tokens == 50 and call.output_tokens > 0 and call.counted


async def test_a_failed_call_reports_the_providers_code() -> None:
    failing = Reply(error=ProviderRateLimited("slow down"))
    done = await done_of(run_tool_loop(ScriptedModel([failing]), USER))
    assert [c.outcome for c in done.calls] == ["provider_rate_limited"]
    assert done.finish_reason == "error"


async def test_a_stopped_call_is_reported_cancelled() -> None:
    model = ScriptedModel([Reply(text="word " * 400, delay_s=0.01)])
    cancel = asyncio.Event()
    events = run_tool_loop(model, USER, cancel=cancel)
    seen: list[EngineEvent] = []
    async for event in events:
        seen.append(event)
        if isinstance(event, TextDelta) and len(seen) == 3:
            cancel.set()
    done = seen[-1]
    assert isinstance(done, Done) and done.finish_reason == "cancelled"
    (call,) = done.calls
    assert call.outcome == "cancelled" and call.output_tokens > 0


async def test_a_reply_whose_consumer_is_cancelled_still_reports_the_open_call() -> None:
    model = ScriptedModel([Reply(text="word " * 400, delay_s=0.01)])
    seen: list[EngineEvent] = []

    async def consume() -> None:
        async for event in run_tool_loop(model, USER):
            seen.append(event)

    task = asyncio.create_task(consume())
    while not any(isinstance(e, TextDelta) for e in seen):
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    done = seen[-1]
    assert isinstance(done, Done)
    assert [c.outcome for c in done.calls] == ["cancelled"]
    assert isinstance(done.calls[0], ModelCall) and done.calls[0].output_tokens > 0
