"""``FailoverModel``: retries before the first token, fallbacks, the breaker, and
the rule that a retry never runs a tool twice (scripted models: the model boundary)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.config import ModelConfig, ProviderConfig
from parley.engine import run_tool_loop
from parley.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from parley.messages import ErrorEvent, Message, TextDelta, ToolCall, ToolResult
from parley.providers.base import ChatRequest, ModelInfo
from parley.providers.failover import FailoverModel, MemoryBreaker, RetryPolicy
from parley.providers.registry import build_provider
from parley.providers.scripted import Reply, ScriptedModel
from parley.providers.testing import ScriptedUpstream, UpstreamReply
from parley.tools import ToolRegistry, tool

USER = [Message("user", "hi")]


def model(name: str, *replies: Any, default: Any = None) -> ScriptedModel:
    provider, _, short = name.partition("/")
    info = ModelInfo(provider=provider, name=short)
    return ScriptedModel(list(replies), default=default, info=info)


def rate_limited(after: float | None) -> ProviderRateLimited:
    error = ProviderRateLimited("slow down")
    error.retry_after = after
    return error


class Sleeps:
    """Records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def text_of(events: AsyncIterator[Any]) -> str:
    return "".join([e.text async for e in events if isinstance(e, TextDelta)])


async def test_a_server_error_before_the_first_token_is_retried_with_backoff() -> None:
    boom = ProviderUnavailable("HTTP 500")
    primary = model("a/m", Reply(error=boom), Reply(error=boom), "Fine now.")
    sleeps = Sleeps()
    chain = FailoverModel(
        [primary], policy=RetryPolicy(3, base_delay_s=1.0, max_delay_s=8.0), sleep=sleeps
    )
    assert await text_of(chain.stream(primary_request())) == "Fine now."
    assert len(primary.requests) == 3
    # jittered exponential: half of base*2**n fixed, half random
    assert 0.5 <= sleeps.waits[0] <= 1.0 and 1.0 <= sleeps.waits[1] <= 2.0
    assert [(a.model, a.code) for a in chain.attempts] == [
        ("a/m", "provider_unavailable"),
        ("a/m", "provider_unavailable"),
        ("a/m", None),
    ]
    assert chain.attempts[0].label == "unavailable" and chain.info.ref == "a/m"


async def test_retry_after_is_honoured_and_a_long_one_falls_over_at_once() -> None:
    primary = model("a/m", Reply(error=rate_limited(2.5)), "Patient answer.")
    sleeps = Sleeps()
    chain = FailoverModel([primary], policy=RetryPolicy(3, 0.1, 5.0), sleep=sleeps)
    assert await text_of(chain.stream(primary_request())) == "Patient answer."
    assert sleeps.waits == [2.5]  # exactly what the provider asked

    primary = model("a/m", Reply(error=rate_limited(60)))
    backup = model("b/m", "Backup answer.")
    sleeps = Sleeps()
    chain = FailoverModel([primary, backup], policy=RetryPolicy(3, 0.1, 5.0), sleep=sleeps)
    assert await text_of(chain.stream(primary_request())) == "Backup answer."
    assert sleeps.waits == [] and len(primary.requests) == 1  # a minute's wait: next model
    assert chain.info.ref == "b/m"
    assert [a.code for a in chain.attempts] == ["provider_rate_limited", None]


@pytest.mark.parametrize(
    "error", [ProviderAuthError("HTTP 401"), ProviderBadRequest("HTTP 400")], ids=["401", "400"]
)
async def test_auth_and_bad_request_are_not_retried(error: ProviderError) -> None:
    primary = model("a/m", Reply(error=error), "never")
    backup = model("b/m", "From the fallback.")
    sleeps = Sleeps()
    chain = FailoverModel([primary, backup], sleep=sleeps)
    assert await text_of(chain.stream(primary_request())) == "From the fallback."
    assert len(primary.requests) == 1 and sleeps.waits == []


async def test_after_the_first_token_the_error_is_the_callers() -> None:
    cut = ProviderProtocolError("dropped")
    primary = model("a/m", Reply(text="one two three four", error=cut, error_after=2))
    backup = model("b/m", "never")
    chain = FailoverModel([primary, backup], sleep=Sleeps())
    seen: list[str] = []
    with pytest.raises(ProviderProtocolError):
        async for event in chain.stream(primary_request()):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert "".join(seen) == "one two "  # what streamed stays with the caller
    assert len(primary.requests) == 1 and backup.requests == []


async def test_every_model_failing_names_each_attempt() -> None:
    primary = model("a/m", Reply(error=ProviderUnavailable("down")))
    backup = model("b/m", Reply(error=ProviderUnavailable("down too")))
    chain = FailoverModel([primary, backup], policy=RetryPolicy(1), sleep=Sleeps())
    with pytest.raises(ProviderUnavailable) as failed:
        await text_of(chain.stream(primary_request()))
    assert "a/m: unavailable; b/m: unavailable" in failed.value.message
    assert chain.info.ref == "a/m"


async def test_the_breaker_opens_skips_half_opens_with_one_probe_and_closes() -> None:
    now = [0.0]
    breaker = MemoryBreaker(threshold=2, cooldown_s=10, clock=lambda: now[0])
    down = ProviderUnavailable("down")
    primary = model("a/m", Reply(error=down), Reply(error=down))
    backup = model("b/m", default="backup")
    chain = FailoverModel([primary, backup], policy=RetryPolicy(2), breaker=breaker, sleep=Sleeps())
    assert await text_of(chain.stream(primary_request())) == "backup"
    assert breaker.state("a") == "open"

    # open: the primary is not even asked
    fresh = FailoverModel([primary, backup], breaker=breaker, sleep=Sleeps())
    assert await text_of(fresh.stream(primary_request())) == "backup"
    assert len(primary.requests) == 2
    assert fresh.attempts[0].code == "circuit_open"

    # after the cooldown one caller probes; the others still skip
    now[0] = 11
    assert await breaker.allow("a") is True
    assert breaker.state("a") == "half_open"
    assert await breaker.allow("a") is False
    await breaker.failed("a")  # the probe failed: open again for a cooldown
    assert breaker.state("a") == "open" and await breaker.allow("a") is False
    now[0] = 22
    primary.enqueue("primary is back")
    probe = FailoverModel([primary, backup], breaker=breaker, sleep=Sleeps())
    assert await text_of(probe.stream(primary_request())) == "primary is back"
    assert breaker.state("a") == "closed"


async def test_a_retry_never_runs_a_side_effecting_tool_twice() -> None:
    """Retries wrap one model call; tools run between calls, outside of it."""
    sent: list[str] = []

    @tool(side_effecting=True)
    async def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return "sent"

    call = ToolCall("c1", "send_email", '{"to": "ada@example.com"}')
    boom = ProviderUnavailable("HTTP 500")
    primary = model(
        "a/m",
        Reply(tool_calls=[call]),
        Reply(error=boom),  # the second model call fails before answering...
        Reply(error=boom),
    )
    backup = model("b/m", "Email sent.")  # ...and the fallback finishes the reply
    chain = FailoverModel([primary, backup], policy=RetryPolicy(2), sleep=Sleeps())
    events = [e async for e in run_tool_loop(chain, USER, tools=ToolRegistry([send_email]))]
    assert sent == ["ada@example.com"]  # once, though the call after it was tried 3 times
    assert len([e for e in events if isinstance(e, ToolResult)]) == 1
    assert not any(isinstance(e, ErrorEvent) for e in events)
    # the fallback got the history with the tool's result: nothing to run again
    assert [m.role for m in backup.requests[0].messages] == ["user", "assistant", "tool"]
    assert chain.info.ref == "b/m"
    assert [(a.model, a.code) for a in chain.attempts] == [
        ("a/m", "provider_unavailable"),
        ("a/m", "provider_unavailable"),
        ("b/m", None),
    ]
    # the turn's next call starts at the model that answered (no retries paid again)
    backup.enqueue("Again from b.")
    assert await text_of(chain.stream(primary_request())) == "Again from b."
    assert len(primary.requests) == 3 and len(chain.attempts) == 3


def primary_request() -> ChatRequest:
    return ChatRequest(messages=list(USER))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0.25", 0.25), (None, None)])
async def test_the_adapters_read_retry_after(
    kind: str, header: str | None, seconds: float | None
) -> None:
    """Both adapters put a 429's ``Retry-After`` on the error (a real HTTP server)."""
    with ScriptedUpstream(models=["m"]) as up:
        up.enqueue(UpstreamReply(fail="429", retry_after=header))
        config = ProviderConfig(
            name="up", kind=kind, base_url=up.base_url, api_key="k", models=[ModelConfig(name="m")]
        )
        provider = build_provider(config)
        with pytest.raises(ProviderRateLimited) as limited:
            async for _ in provider.model("m").stream(primary_request()):
                pass
        await provider.aclose()
    assert limited.value.retry_after == seconds
