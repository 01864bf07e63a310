"""Parley as an OpenAI endpoint, driven by the official openai SDK over real HTTP."""

from __future__ import annotations

import asyncio

import openai
import pytest

from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


def test_sync_sdk_models_and_completion(live: tuple[str, str], scripted: ScriptedModel) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key)
    ids = [m.id for m in client.models.list()]
    assert "scripted/scripted" in ids
    scripted.enqueue("Hello, SDK.")
    completion = client.chat.completions.create(
        model="scripted/scripted", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "Hello, SDK."
    assert completion.choices[0].finish_reason == "stop"
    assert scripted.requests[-1].messages[-1].content == "hi"


def test_sync_sdk_streaming_with_usage(live: tuple[str, str], scripted: ScriptedModel) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key)
    scripted.enqueue(Reply(text="one two three four", chunk_size=4))
    stream = client.chat.completions.create(
        model="scripted",  # a bare model name resolves when unambiguous
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert "".join(text) == "one two three four"
    assert usage is not None and usage.completion_tokens > 0


def test_async_sdk_streams_tool_calls_through(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    scripted.enqueue(Reply(tool_calls=[ToolCall("call_9", "get_weather", '{"city": "Oslo"}')]))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]

    async def run() -> tuple[str, str, str | None]:
        client = openai.AsyncOpenAI(base_url=base, api_key=key)
        stream = await client.chat.completions.create(
            model="scripted/scripted",
            messages=[{"role": "user", "content": "weather?"}],
            tools=tools,
            stream=True,
        )
        name, args, finish = "", "", None
        async for chunk in stream:
            if not chunk.choices:
                continue
            for call in chunk.choices[0].delta.tool_calls or []:
                name += call.function.name or "" if call.function else ""
                args += call.function.arguments or "" if call.function else ""
            finish = chunk.choices[0].finish_reason or finish
        await client.close()
        return name, args, finish

    name, args, finish = asyncio.run(run())
    assert name == "get_weather" and args == '{"city": "Oslo"}' and finish == "tool_calls"
    assert scripted.requests[-1].tools[0].name == "get_weather"


def test_bad_key_and_unknown_model_are_clear_errors(live: tuple[str, str]) -> None:
    base, key = live
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key="pk-wrong").models.list()
    with pytest.raises(openai.NotFoundError) as info:
        openai.OpenAI(base_url=base, api_key=key).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    assert "GET /v1/models" in str(info.value)
