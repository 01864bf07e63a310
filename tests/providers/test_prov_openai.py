"""The real OpenAI adapter against the scripted HTTP upstream."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from parley.config import ModelConfig, ProviderConfig
from parley.errors import (
    ModelNotFound,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
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
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatRequest
from parley.providers.openai_compat import OpenAIProvider
from parley.providers.testing import ScriptedUpstream, UpstreamReply


def hello() -> ChatRequest:
    return ChatRequest(messages=[Message("user", "Say hello please")])


async def collect(
    provider: OpenAIProvider, request: ChatRequest | None = None
) -> list[ProviderEvent]:
    return [e async for e in provider.model("scripted-model").stream(request or hello())]


async def test_streams_text_usage_and_one_finish(upstream: ScriptedUpstream, openai_config) -> None:
    upstream.enqueue(UpstreamReply(text="Hello there, how are you today?"))
    provider = OpenAIProvider(openai_config)
    events = await collect(provider)
    await provider.aclose()

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hello there, how are you today?"
    # six word-sized tokens, joined where they arrived in one read
    assert 1 <= sum(isinstance(e, TextDelta) for e in events) <= 6
    assert [type(e) for e in events][-1] is Finish
    assert sum(isinstance(e, Finish) for e in events) == 1
    assert events[-1] == Finish("stop")
    usage = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert len(usage) == 1
    assert usage[0].input_tokens == 4  # "Say hello please" = 3 words + 1
    assert usage[0].output_tokens == 6
    body = upstream.requests[-1].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert upstream.requests[-1].headers["authorization"] == "Bearer sk-test-secret"


async def test_finished_streams_reuse_one_connection(
    upstream: ScriptedUpstream, openai_config
) -> None:
    """After ``[DONE]`` the body is read to its end, so the connection is pooled."""
    provider = OpenAIProvider(openai_config)
    for word in ("one", "two", "three"):
        upstream.enqueue(UpstreamReply(text=word))
        events = await collect(provider)
        assert events[-1] == Finish("stop")
    await provider.aclose()
    peers = {r.client for r in list(upstream.requests)[-3:]}
    assert len(peers) == 1 and None not in peers


async def test_tool_call_deltas_assemble(upstream: ScriptedUpstream, openai_config) -> None:
    upstream.enqueue(
        UpstreamReply(
            tool_calls=[
                ("calculator", '{"expression": "2 + 2 * 10"}'),
                ("datetime", '{"timezone": "Europe/Paris"}'),
            ]
        )
    )
    provider = OpenAIProvider(openai_config)
    events = await collect(provider)
    await provider.aclose()

    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = event.id or call["id"]
            call["name"] = event.name or call["name"]
            call["arguments"] += event.arguments
    assert sum(isinstance(e, ToolCallDelta) for e in events) > 4  # arguments came in pieces
    assert calls[0] == {
        "id": "call_0",
        "name": "calculator",
        "arguments": '{"expression": "2 + 2 * 10"}',
    }
    assert calls[1]["name"] == "datetime"
    assert json.loads(calls[1]["arguments"]) == {"timezone": "Europe/Paris"}
    assert events[-1] == Finish("tool_calls")


async def test_reasoning_deltas(upstream: ScriptedUpstream, openai_config) -> None:
    upstream.enqueue(UpstreamReply(text="42", reasoning="Let me think step by step"))
    provider = OpenAIProvider(openai_config)
    events = await collect(provider)
    await provider.aclose()
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "Let me think step by step"
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(not isinstance(e, ReasoningDelta) for e in events[first_text:])


async def test_request_wire_format(upstream: ScriptedUpstream, openai_config) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = ChatRequest(
        messages=[
            Message("system", "Be brief."),
            Message(
                "user", "What is on this picture?", images=[ImagePart("data:image/png;base64,AAA")]
            ),
            Message("assistant", "", tool_calls=[ToolCall("c1", "calculator", '{"x": 1}')]),
            Message("tool", "2", tool_call_id="c1", name="calculator"),
        ],
        tools=[ToolSpec("calculator", "Evaluates arithmetic.", {"type": "object"})],
        temperature=0.3,
        max_tokens=77,
        response_format=schema,
        stop=["END"],
    )
    provider = OpenAIProvider(openai_config)
    await collect(provider, request)
    await provider.aclose()
    body = upstream.requests[-1].json
    assert body["model"] == "scripted-model"
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"] == [
        {"type": "text", "text": "What is on this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
    ]
    assert assistant["content"] is None
    assert assistant["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "calculator", "arguments": '{"x": 1}'},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": "c1", "content": "2"}
    assert body["tools"][0]["function"]["name"] == "calculator"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.3, 77, ["END"])


@pytest.mark.parametrize(
    ("fail", "error", "words"),
    [
        ("401", ProviderAuthError, "rejected the API key"),
        ("403", ProviderAuthError, "denied access to model 'scripted-model'"),
        ("429", ProviderRateLimited, "rate-limiting"),
        ("500", ProviderUnavailable, "HTTP 500"),
        ("400", ProviderBadRequest, "refused the request (HTTP 400)"),
        ("cut", ProviderProtocolError, "ended the stream before the answer finished"),
        ("malformed", ProviderProtocolError, "malformed"),
    ],
)
async def test_failures_map_to_provider_errors(
    upstream: ScriptedUpstream, openai_config, fail, error, words
) -> None:
    upstream.enqueue(UpstreamReply(text="one two three four five", fail=fail, cut_after=3))
    provider = OpenAIProvider(openai_config)
    seen: list[ProviderEvent] = []
    with pytest.raises(error) as caught:
        async for event in provider.model("scripted-model").stream(hello()):
            seen.append(event)
    await provider.aclose()
    assert words in caught.value.message
    assert "'up'" in caught.value.message  # names the provider
    assert not any(isinstance(e, Finish) for e in seen)
    if fail == "cut":
        assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "one two"


async def test_missing_key_says_so(upstream: ScriptedUpstream, openai_config) -> None:
    upstream.enqueue(UpstreamReply(fail="401"))
    provider = OpenAIProvider(openai_config.model_copy(update={"api_key": None}))
    with pytest.raises(ProviderAuthError, match="none is configured; set api_key or api_key_env"):
        await collect(provider)
    await provider.aclose()


async def test_timeout(upstream: ScriptedUpstream, openai_config) -> None:
    upstream.enqueue(UpstreamReply(fail="timeout"))
    provider = OpenAIProvider(openai_config.model_copy(update={"timeout_s": 0.3}))
    with pytest.raises(
        ProviderTimeout, match=r"did not answer within 0.3s; retry, or raise timeout_s"
    ):
        await collect(provider)
    await provider.aclose()
    assert len(upstream.requests) == 1


async def test_connection_refused(closed_url: str) -> None:
    provider = OpenAIProvider(ProviderConfig(name="gone", base_url=closed_url, api_key="k"))
    with pytest.raises(ProviderUnavailable, match="Could not reach the provider 'gone'"):
        await anext(provider.model("m").stream(hello()))
    await provider.aclose()


async def test_non_loopback_hosts_are_blocked_in_tests() -> None:
    provider = OpenAIProvider(
        ProviderConfig(name="real", base_url="https://api.openai.com/v1", api_key="k")
    )
    with pytest.raises(ProviderUnavailable) as caught:
        await anext(provider.model("gpt-4o").stream(hello()))
    assert "blocked in tests" in str(caught.value.__cause__.__cause__)
    await provider.aclose()


async def _wait_disconnected(upstream: ScriptedUpstream) -> bool:
    for _ in range(200):
        if upstream.requests and upstream.requests[-1].disconnected:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_cancelling_the_consumer_closes_the_upstream_stream(
    upstream: ScriptedUpstream, openai_config
) -> None:
    upstream.enqueue(UpstreamReply(tokens=500, rate=50))
    provider = OpenAIProvider(openai_config)
    got: list[ProviderEvent] = []

    async def consume() -> None:
        async for event in provider.model("scripted-model").stream(hello()):
            got.append(event)

    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_disconnected(upstream)
    assert upstream.requests[-1].completed is False
    assert len(got) < 50
    await provider.aclose()


async def test_breaking_out_early_closes_the_upstream_stream(
    upstream: ScriptedUpstream, openai_config
) -> None:
    upstream.enqueue(UpstreamReply(tokens=500, rate=50))
    provider = OpenAIProvider(openai_config)
    stream = provider.model("scripted-model").stream(hello())
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert await _wait_disconnected(upstream)
    await provider.aclose()


async def test_list_models_configured_plus_discovered_and_cached(
    upstream: ScriptedUpstream, openai_config
) -> None:
    provider = OpenAIProvider(openai_config)
    first = await provider.list_models()
    second = await provider.list_models()
    await provider.aclose()
    assert [m.name for m in first] == ["scripted-model", "other-model"]
    assert first[0].context_window == 32000 and first[0].input_price == 1.0  # configured info
    assert first[1].context_window == 8192  # discovered: defaults
    assert first == second
    assert [r.path for r in upstream.requests] == ["/v1/models"]  # cached


async def test_discovery_failure_falls_back_to_configured(
    closed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = ProviderConfig(name="down", base_url=closed_url, models=[ModelConfig(name="m1")])
    provider = OpenAIProvider(config)
    with caplog.at_level(logging.WARNING):
        models = await provider.list_models()
    await provider.aclose()
    assert [m.ref for m in models] == ["down/m1"]
    assert "model discovery for provider 'down' failed" in caplog.text


async def test_unknown_model_without_discovery(openai_config) -> None:
    provider = OpenAIProvider(openai_config.model_copy(update={"discover_models": False}))
    with pytest.raises(ModelNotFound, match="available: scripted-model"):
        provider.model("nope")
    assert provider.model("scripted-model").info.context_window == 32000
    await provider.aclose()


async def test_discovered_model_is_usable(upstream: ScriptedUpstream, openai_config) -> None:
    provider = OpenAIProvider(openai_config)
    await provider.list_models()
    model = provider.model("other-model")
    events = [e async for e in model.stream(hello())]
    await provider.aclose()
    assert upstream.requests[-1].json["model"] == "other-model"
    assert events[-1] == Finish("stop")
    with pytest.raises(ModelNotFound):
        provider.model("not-discovered")


async def test_concurrent_default_token_streams(openai_config) -> None:
    with ScriptedUpstream(default_tokens=2000) as server:
        provider = OpenAIProvider(openai_config.model_copy(update={"base_url": server.base_url}))

        async def count() -> int:
            stream = provider.model("scripted-model").stream(hello())
            text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
            return text.count(" ")  # each filler token is " word"

        counts = await asyncio.gather(*(count() for _ in range(20)))
        await provider.aclose()
    assert counts == [2000] * 20


def test_standalone_process_is_scriptable() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "parley.providers.testing", "--port", "0", "--default-tokens", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        root = base_url.removesuffix("/v1")
        script = json.dumps([{"text": "scripted over http", "tool_calls": [["f", "{}"]]}]).encode()
        for _ in range(100):
            try:
                post = urllib.request.Request(root + "/_script", data=script, method="POST")
                with urllib.request.urlopen(post, timeout=5) as answer:
                    assert json.loads(answer.read()) == {"queued": 1}
                break
            except OSError:
                time.sleep(0.05)

        async def run() -> tuple[list[ProviderEvent], list[ProviderEvent]]:
            provider = OpenAIProvider(ProviderConfig(name="proc", base_url=base_url, api_key="k"))
            scripted = [e async for e in provider.model("scripted-model").stream(hello())]
            default = [e async for e in provider.model("scripted-model").stream(hello())]
            await provider.aclose()
            return scripted, default

        scripted, default = asyncio.run(run())
        assert "".join(e.text for e in scripted if isinstance(e, TextDelta)) == "scripted over http"
        assert scripted[-1] == Finish("tool_calls")
        default_text = "".join(e.text for e in default if isinstance(e, TextDelta))
        assert default_text.count(" ") == 5  # five filler tokens
        with urllib.request.urlopen(root + "/_requests", timeout=5) as answer:
            recorded = json.loads(answer.read())
        assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 2
        assert recorded[0]["json"]["messages"][0]["content"] == "Say hello please"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_provider_errors_are_parley_errors() -> None:
    assert issubclass(ProviderProtocolError, ProviderError)
    assert ProviderProtocolError.retryable and not ProviderBadRequest.retryable


async def test_sse_parser_handles_split_reads_crlf_and_multiline_data() -> None:
    from parley.providers.openai_compat import sse_batches

    body = b'data: {"a":\r\ndata: 1}\r\n\r\n: comment\n\ndata:{"b":2}\n\nevent: x\ndata: [DONE]\n\n'

    async def reads(size: int):
        for i in range(0, len(body), size):
            yield body[i : i + size]

    for size in (1, 3, 7, len(body)):
        found = [
            json.loads(d) if d != b"[DONE]" else d
            async for batch in sse_batches(reads(size))
            for d in batch
        ]
        assert found == [{"a": 1}, {"b": 2}, b"[DONE]"], size


async def test_events_of_one_read_travel_together_in_bounded_batches() -> None:
    """What arrived together is handed on together, but never more than MAX_BATCH."""
    from parley.providers.openai_compat import MAX_BATCH, sse_batches

    body = b"".join(b'data: {"n":%d}\n\n' % i for i in range(MAX_BATCH * 2 + 5))

    async def one_read():
        yield body

    sizes = [len(batch) async for batch in sse_batches(one_read())]
    assert sizes == [MAX_BATCH, MAX_BATCH, 5]


def test_tokens_of_one_read_become_one_delta_in_order() -> None:
    from parley.providers.openai_compat import decode_batch

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return json.dumps({"choices": [{"delta": delta, "finish_reason": finish}]}).encode()

    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
    events, done, finish, error = decode_batch(
        "p",
        [
            chunk({"reasoning_content": "hm"}),
            chunk({"reasoning_content": "m"}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({"tool_calls": [call]}),
            chunk({"content": "!"}, "stop"),
            b"[DONE]",
            chunk({"content": "after done"}),
        ],
    )
    assert events == [
        ReasoningDelta("hmm"),
        TextDelta("Hello"),
        ToolCallDelta(0, "c1", "f", "{}"),
        TextDelta("!"),
    ]
    assert done and finish == "stop" and error is None


def test_a_bad_chunk_keeps_what_came_before_it() -> None:
    from parley.providers.openai_compat import decode_batch

    good = json.dumps({"choices": [{"delta": {"content": "kept"}}]}).encode()
    events, done, _, error = decode_batch("p", [good, b"{not json", good])
    assert events == [TextDelta("kept")] and not done
    assert isinstance(error, ProviderProtocolError) and "malformed" in error.message


async def test_extra_request_fields_reach_the_upstream_body(
    upstream: ScriptedUpstream, openai_config
) -> None:
    upstream.enqueue(UpstreamReply(text="ok"))
    provider = OpenAIProvider(openai_config)
    request = ChatRequest(messages=[Message("user", "hi")], extra={"tool_choice": "none"})
    events = await collect(provider, request)
    await provider.aclose()
    sent = upstream.requests[-1].json
    assert sent["tool_choice"] == "none" and "extra_body" not in sent
    assert sent["stream"] is True and sent["model"] == "scripted-model"
    assert events[-1] == Finish("stop")


def test_cached_prompt_tokens_are_read_from_the_usage_chunk() -> None:
    from parley.providers.openai_compat import decode_batch

    usage = {"prompt_tokens": 1200, "completion_tokens": 9}
    usage["prompt_tokens_details"] = {"cached_tokens": 1024}  # type: ignore[assignment]
    events, *_ = decode_batch("p", [json.dumps({"choices": [], "usage": usage}).encode()])
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(1200, 9, 1024)]
    plain = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    events, *_ = decode_batch("p", [json.dumps(plain).encode()])
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(5, 1, 0)]
