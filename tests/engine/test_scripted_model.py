"""The scripted model and provider that tests across Parley rely on."""

from __future__ import annotations

import json

import pytest

from parley.errors import ModelNotFound, ProviderTimeout
from parley.messages import (
    Finish,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatModel, ChatRequest, ModelInfo, Provider
from parley.providers.scripted import Reply, ScriptedModel, ScriptedProvider, ScriptExhausted


def request(text: str = "hi", **extra: object) -> ChatRequest:
    return ChatRequest(messages=[Message("user", text)], **extra)  # type: ignore[arg-type]


async def events_of(model: ScriptedModel, req: ChatRequest | None = None) -> list[ProviderEvent]:
    return [event async for event in model.stream(req or request())]


async def test_replies_stream_in_word_or_char_chunks_with_one_finish() -> None:
    model = ScriptedModel(
        [
            Reply(text="one two three", chunk_size=2),
            Reply(text="abcde", chunk_size=2, chunk_unit="char"),
        ]
    )
    words = await events_of(model)
    assert [e.text for e in words if isinstance(e, TextDelta)] == ["one two ", "three"]
    assert isinstance(words[-1], Finish) and words[-1].reason == "stop"
    assert sum(isinstance(e, Finish) for e in words) == 1
    chars = await events_of(model)
    assert [e.text for e in chars if isinstance(e, TextDelta)] == ["ab", "cd", "e"]


async def test_reasoning_tool_calls_and_usage() -> None:
    call = ToolCall("c1", "calculator", '{"expression": "2+2"}')
    model = ScriptedModel([Reply(reasoning="Need math.", tool_calls=[call], usage=Usage(7, 3))])
    events = await events_of(model)
    assert isinstance(events[0], ReasoningDelta)
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert pieces[0].id == "c1" and pieces[0].name == "calculator"
    assert len(pieces) >= 3 and "".join(p.arguments for p in pieces) == call.arguments
    assert events[-2] == UsageEvent(Usage(7, 3)) and events[-1] == Finish("tool_calls")


async def test_dicts_stream_json_and_strings_and_callables_work() -> None:
    model = ScriptedModel([{"tool": "none", "arguments": {}}])
    model.enqueue(lambda req: f"echo: {req.messages[-1].content}")
    first = await events_of(model, request(response_format={"type": "object"}))
    text = "".join(e.text for e in first if isinstance(e, TextDelta))
    assert json.loads(text) == {"tool": "none", "arguments": {}}
    second = await events_of(model, request("ping"))
    assert "".join(e.text for e in second if isinstance(e, TextDelta)) == "echo: ping"
    assert model.pending == 0


async def test_requests_are_recorded_as_snapshots() -> None:
    model = ScriptedModel(default="ok")
    messages = [Message("user", "first")]
    await events_of(model, ChatRequest(messages=messages))
    messages.append(Message("user", "later"))
    assert [m.content for m in model.requests[0].messages] == ["first"]


async def test_default_rough_usage_counts_something() -> None:
    events = await events_of(ScriptedModel(["a fairly long answer here"]))
    usage = next(e.usage for e in events if isinstance(e, UsageEvent))
    assert usage.input_tokens > 0 and usage.output_tokens == 7  # 25 characters


async def test_errors_before_and_after_deltas() -> None:
    model = ScriptedModel(
        [
            Reply(text="a b c", error=ProviderTimeout("slow")),
            Reply(text="a b c", error=ProviderTimeout("slow"), error_after=2),
        ]
    )
    seen: list[ProviderEvent] = []
    with pytest.raises(ProviderTimeout):
        async for event in model.stream(request()):
            seen.append(event)
    assert seen == []
    with pytest.raises(ProviderTimeout):
        async for event in model.stream(request()):
            seen.append(event)
    assert seen == [TextDelta("a "), TextDelta("b ")]


async def test_empty_queue_without_default_raises_a_clear_assertion() -> None:
    model = ScriptedModel(["only one"])
    await events_of(model)
    with pytest.raises(ScriptExhausted, match=r"no reply queued.*'second'") as info:
        await events_of(model, request("second"))
    assert isinstance(info.value, AssertionError)


async def test_scripted_provider_serves_named_models() -> None:
    echo = ScriptedModel(default="hi")
    provider = ScriptedProvider(models={"echo": echo})
    assert isinstance(provider, Provider) and isinstance(echo, ChatModel)
    assert provider.kind == "scripted" and provider.name == "scripted"
    infos = await provider.list_models()
    assert [i.ref for i in infos] == ["scripted/echo"]
    assert provider.model("echo") is echo
    with pytest.raises(ModelNotFound, match="no model 'nope'"):
        provider.model("nope")
    await provider.aclose()
    assert provider.closed


def test_custom_info_is_kept() -> None:
    info = ModelInfo("scripted", "small", context_window=512, supports_tools=False)
    assert ScriptedModel(info=info).info is info
