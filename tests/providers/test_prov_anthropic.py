"""The real Anthropic adapter against the scripted ``/v1/messages`` endpoint."""

from __future__ import annotations

import sys

import pytest

from parley.config import ModelConfig, ProviderConfig
from parley.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from parley.messages import (
    Finish,
    ImagePart,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from parley.providers.anthropic import AnthropicProvider, messages_to_wire
from parley.providers.base import ChatRequest
from parley.providers.testing import ScriptedUpstream, UpstreamReply


@pytest.fixture
def config(upstream: ScriptedUpstream) -> ProviderConfig:
    return ProviderConfig(
        name="claude",
        kind="anthropic",
        base_url=upstream.base_url,  # ".../v1": the adapter strips it for the SDK
        api_key="sk-ant-test",
        models=[ModelConfig(name="scripted-model", max_output_tokens=321)],
        timeout_s=5,
    )


async def run(provider: AnthropicProvider, request: ChatRequest) -> list[ProviderEvent]:
    return [e async for e in provider.model("scripted-model").stream(request)]


async def test_text_thinking_tool_use_and_usage(upstream: ScriptedUpstream, config) -> None:
    upstream.enqueue(
        UpstreamReply(
            text="Let me compute that.",
            reasoning="The user wants arithmetic",
            tool_calls=[("calculator", '{"expression": "6 * 7"}')],
        )
    )
    provider = AnthropicProvider(config)
    events = await run(provider, ChatRequest([Message("user", "What is 6 times 7?")]))
    await provider.aclose()

    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == (
        "The user wants arithmetic"
    )
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me compute that."
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert (calls[0].index, calls[0].id, calls[0].name) == (0, "toolu_0", "calculator")
    assert "".join(c.arguments for c in calls) == '{"expression": "6 * 7"}'
    usage = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usage[-1].input_tokens == 6 and usage[-1].output_tokens > 0
    assert events[-1] == Finish("tool_calls")
    assert sum(isinstance(e, Finish) for e in events) == 1
    assert upstream.requests[-1].path == "/v1/messages"
    headers = upstream.requests[-1].headers
    assert "sk-ant-test" in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert "anthropic-version" in headers


async def test_request_mapping(upstream: ScriptedUpstream, config) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    request = ChatRequest(
        messages=[
            Message("system", "You are terse."),
            Message(
                "user", "Look", images=[ImagePart("data:image/jpeg;base64,QUJD", "image/jpeg")]
            ),
            Message("assistant", "Checking.", tool_calls=[ToolCall("t1", "lookup", '{"q": "x"}')]),
            Message("tool", "found", tool_call_id="t1", name="lookup"),
            Message("tool", "also", tool_call_id="t2", name="lookup"),
            Message("user", "Thanks"),
        ],
        tools=[ToolSpec("lookup", "Looks things up.", {"type": "object"})],
        temperature=0.5,
        response_format=schema,
    )
    provider = AnthropicProvider(config)
    events = await run(provider, request)
    await provider.aclose()
    assert events[-1] == Finish("stop")
    body = upstream.requests[-1].json
    assert body["system"] == "You are terse."
    assert body["max_tokens"] == 321  # from the model config
    assert body["temperature"] == 0.5
    assert body["tools"] == [
        {"name": "lookup", "description": "Looks things up.", "input_schema": {"type": "object"}}
    ]
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]  # tool results merged with the next user turn
    image = body["messages"][0]["content"][1]
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
    }
    assert body["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "t1",
        "name": "lookup",
        "input": {"q": "x"},
    }
    results = body["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]
    assert results[0] == {"type": "tool_result", "tool_use_id": "t1", "content": "found"}


@pytest.mark.parametrize(
    ("fail", "error", "words"),
    [
        ("401", ProviderAuthError, "rejected the API key"),
        ("429", ProviderRateLimited, "rate-limiting"),
        ("500", ProviderUnavailable, "HTTP 500"),
        ("cut", ProviderProtocolError, "ended the stream before the answer finished"),
        ("malformed", ProviderProtocolError, "malformed"),
    ],
)
async def test_failures(upstream: ScriptedUpstream, config, fail, error, words) -> None:
    upstream.enqueue(UpstreamReply(text="a b c d e f", fail=fail, cut_after=3))
    provider = AnthropicProvider(config)
    with pytest.raises(error) as caught:
        await run(provider, ChatRequest([Message("user", "hi")]))
    await provider.aclose()
    assert words in caught.value.message
    assert "'claude'" in caught.value.message


async def test_connection_refused(closed_url: str) -> None:
    provider = AnthropicProvider(
        ProviderConfig(name="claude", kind="anthropic", base_url=closed_url, api_key="k")
    )
    with pytest.raises(ProviderUnavailable, match="Could not reach the provider 'claude'"):
        await run(provider, ChatRequest([Message("user", "hi")]))
    await provider.aclose()


async def test_discovery(upstream: ScriptedUpstream, config) -> None:
    provider = AnthropicProvider(config)
    names = [m.name for m in await provider.list_models()]
    await provider.aclose()
    assert names == ["scripted-model", "other-model"]
    assert upstream.requests[-1].path == "/v1/models"


async def test_missing_sdk_gives_install_hint(config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)
    provider = AnthropicProvider(config)
    with pytest.raises(ProviderError, match=r"pip install 'parley\[anthropic\]'"):
        await run(provider, ChatRequest([Message("user", "hi")]))


def test_system_messages_join_and_empty_messages_drop() -> None:
    system, wire = messages_to_wire(
        [Message("system", "A"), Message("system", "B"), Message("user", ""), Message("user", "x")]
    )
    assert system == "A\n\nB"
    assert wire == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
