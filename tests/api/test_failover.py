"""Failover end to end: two scripted upstreams (real HTTP servers speaking the
OpenAI API) as providers ``alpha`` and ``beta``, failing on cue; the chat route,
``/v1/chat/completions`` through the official SDK, the admin's lists and the
breaker shared by two app instances on one database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from apihelpers import Client, MakeApp, make_client, parse_sse, signup
from parley.config import ModelConfig, ProviderConfig
from parley.providers.testing import ScriptedUpstream, UpstreamReply
from v1helpers import browser, make_key


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream]]:
    with (
        ScriptedUpstream(models=["m"], default_text="Alpha answers.") as alpha,
        ScriptedUpstream(models=["m"], default_text="Beta answers.") as beta,
    ):
        yield alpha, beta


@pytest.fixture
def alpha(upstreams: tuple[ScriptedUpstream, ScriptedUpstream]) -> ScriptedUpstream:
    upstreams[0].reset()
    return upstreams[0]


@pytest.fixture
def beta(upstreams: tuple[ScriptedUpstream, ScriptedUpstream]) -> ScriptedUpstream:
    upstreams[1].reset()
    return upstreams[1]


def provider(name: str, up: ScriptedUpstream, fallbacks: list[str] | None = None) -> Any:
    return ProviderConfig(
        name=name,
        base_url=up.base_url,
        api_key="sk-test",
        timeout_s=0.5,
        models=[ModelConfig(name="m", fallbacks=fallbacks or [])],
    )


@pytest.fixture
def overrides(alpha: ScriptedUpstream, beta: ScriptedUpstream) -> dict[str, Any]:
    return {
        "providers": [provider("alpha", alpha, ["beta/m"]), provider("beta", beta)],
        "retry_attempts": 2,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 1.0,
        "breaker_failures": 100,
        "breaker_cooldown_s": 0.5,
    }


def chats(up: ScriptedUpstream) -> int:
    return len([r for r in up.requests if r.path.endswith("/chat/completions")])


async def ask(client: Client, model: str = "alpha/m", text: str = "hello") -> dict[str, Any]:
    """One chat turn; the stored answer of its ``done`` frame."""
    conv = (await client.post("/api/conversations", json={"model": model})).json()
    response = await client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": text}
    )
    frames = dict(parse_sse(response.text))
    message: dict[str, Any] = frames["done"]["message"]
    return message


async def test_retry_after_is_waited_then_the_same_model_answers(
    client: Client, user: Any, alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    alpha.enqueue(UpstreamReply(fail="429", retry_after="0.3"))
    started = time.monotonic()
    answer = await ask(client)
    assert time.monotonic() - started >= 0.3  # the provider's Retry-After was honoured
    assert answer["content"] == "Alpha answers." and answer["model"] == "alpha/m"
    assert [(a["model"], a["error"], a["label"]) for a in answer["attempts"]] == [
        ("alpha/m", "provider_rate_limited", "rate limited"),
        ("alpha/m", None, ""),
    ]
    assert chats(alpha) == 2 and chats(beta) == 0


async def test_server_errors_fall_over_to_the_fallback_which_is_charged(
    client: Client, user: Any, alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    alpha.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    answer = await ask(client)
    assert answer["status"] == "complete" and answer["content"] == "Beta answers."
    assert answer["model"] == "beta/m" and answer["provider"] == "beta"
    assert [(a["model"], a["error"]) for a in answer["attempts"]] == [
        ("alpha/m", "provider_unavailable"),
        ("alpha/m", "provider_unavailable"),
        ("beta/m", None),
    ]
    assert chats(alpha) == 2 and chats(beta) == 1
    # the conversation as read back, and the usage ledger, name the model that answered
    conv = (await client.get(f"/api/conversations/{answer['conversation_id']}")).json()
    assert conv["messages"][-1]["attempts"] == answer["attempts"]
    for _ in range(100):
        usage = (await client.get("/api/me/usage")).json()
        if usage["by_model"]:
            break
        await asyncio.sleep(0.05)
    assert [row["key"] for row in usage["by_model"]] == ["beta/m"]


async def test_a_rejected_key_is_not_retried_but_falls_over(
    client: Client, user: Any, alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    alpha.enqueue(UpstreamReply(fail="401"))
    answer = await ask(client)
    assert answer["model"] == "beta/m"
    assert [a["error"] for a in answer["attempts"]] == ["provider_auth", None]
    assert chats(alpha) == 1


async def test_a_timeout_and_a_stream_cut_before_the_first_token_are_retried(
    client: Client, user: Any, alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    alpha.enqueue(UpstreamReply(fail="timeout"), UpstreamReply(fail="cut", cut_after=1))
    answer = await ask(client)  # timeout, then a cut after only the role chunk: fallback
    assert [a["error"] for a in answer["attempts"]] == [
        "provider_timeout",
        "provider_protocol",
        None,
    ]
    assert answer["model"] == "beta/m"


async def test_a_stream_cut_after_the_first_token_is_reported_and_kept(
    client: Client, user: Any, alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    alpha.enqueue(UpstreamReply(text="one two three four five", fail="cut", cut_after=3))
    answer = await ask(client)
    assert answer["status"] == "failed" and answer["error_code"] == "provider_protocol"
    assert answer["content"] == "one two"  # what streamed is kept; the user can retry
    assert answer["model"] == "alpha/m" and answer["attempts"] is None
    assert chats(alpha) == 1 and chats(beta) == 0


async def test_the_breaker_is_shared_by_two_instances_on_one_database(
    make_app: MakeApp,
    make_settings: Any,
    overrides: dict[str, Any],
    alpha: ScriptedUpstream,
    beta: ScriptedUpstream,
) -> None:
    # a cooldown long enough that a busy machine still asks again before it ends
    settings = make_settings(**(overrides | {"breaker_failures": 2, "breaker_cooldown_s": 2.0}))
    async with (
        make_app(settings) as first,
        make_app(settings) as second,
        make_client(first) as one,
        make_client(second) as two,
    ):
        await signup(one)
        await signup(two, "bob@example.com")
        alpha.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
        assert (await ask(one))["model"] == "beta/m"  # two failures: alpha's circuit opens

        # the other instance skips alpha without asking it
        answer = await ask(two)
        assert answer["model"] == "beta/m" and chats(alpha) == 2
        assert [a["error"] for a in answer["attempts"]] == ["circuit_open", None]
        state = (await one.get("/api/admin/failover")).json()["breakers"]
        assert [(b["provider"], b["state"], b["failures"]) for b in state] == [("alpha", "open", 2)]
        assert state[0]["retry_at"] is not None

        # after the cooldown one probe goes to alpha; it answers and the circuit closes
        await asyncio.sleep(2.1)
        probe = await ask(two)
        assert probe["model"] == "alpha/m" and probe["attempts"] is None
        assert (await one.get("/api/admin/failover")).json()["breakers"] == []  # closed, clean
        assert (await ask(one))["model"] == "alpha/m"


async def test_the_admin_sets_a_models_fallbacks(
    client: Client, user: Any, alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    overview = (await client.get("/api/admin/failover")).json()
    entry = {e["model"]: e for e in overview["fallbacks"]}
    assert entry["alpha/m"] == {"model": "alpha/m", "fallbacks": ["beta/m"], "source": "config"}
    assert entry["beta/m"]["source"] == "none"

    set_ = await client.put(
        "/api/admin/failover/fallbacks", json={"model": "beta/m", "fallbacks": ["alpha/m"]}
    )
    assert set_.status_code == 200
    beta.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    assert (await ask(client, "beta/m"))["model"] == "alpha/m"

    # [] overrides the config file's list: no fallback, the error is reported
    await client.put("/api/admin/failover/fallbacks", json={"model": "alpha/m", "fallbacks": []})
    alpha.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    failed = await ask(client)
    assert failed["status"] == "failed" and failed["error_code"] == "provider_unavailable"
    assert chats(beta) == 2  # beta was not asked this time

    bad = await client.put(
        "/api/admin/failover/fallbacks", json={"model": "alpha/m", "fallbacks": ["alpha/m"]}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "fallback_loop"
    unknown = await client.put(
        "/api/admin/failover/fallbacks", json={"model": "alpha/m", "fallbacks": ["nope/x"]}
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_model"
    # null: the config file's list again
    await client.put("/api/admin/failover/fallbacks", json={"model": "alpha/m", "fallbacks": None})
    entry = {e["model"]: e for e in (await client.get("/api/admin/failover")).json()["fallbacks"]}
    assert entry["alpha/m"]["source"] == "config"


async def test_ordinary_users_cannot_see_or_set_failover(
    client: Client, user: Any, app: Any
) -> None:
    async with make_client(app) as other:
        await signup(other, "bob@example.com")
        assert (await other.get("/api/admin/failover")).status_code == 403
        denied = await other.put(
            "/api/admin/failover/fallbacks", json={"model": "alpha/m", "fallbacks": []}
        )
        assert denied.status_code == 403


def test_v1_chat_completions_falls_over_and_names_the_model_that_answered(
    live: tuple[str, str], alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    base, key = live
    sdk = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    alpha.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    completion = sdk.chat.completions.create(
        model="alpha/m", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "Beta answers."
    assert completion.model == "beta/m"
    with browser(base) as signed_in:  # the ledger charges the model that answered
        for _ in range(100):
            by_model = signed_in.get("/api/me/usage").json()["by_model"]
            if by_model:
                break
            time.sleep(0.05)
    assert [(row["key"], row["requests"]) for row in by_model] == [("beta/m", 1)]

    alpha.enqueue(UpstreamReply(fail="429", retry_after="0.1"))
    stream = sdk.chat.completions.create(
        model="alpha/m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Alpha answers."
    )
    assert chunks[0].model == "alpha/m" and chats(alpha) == 4  # 2 failures, a 429, a retry

    # a cut after the first token reaches the client as a broken stream, not a fallback
    alpha.enqueue(UpstreamReply(text="one two three", fail="cut", cut_after=3))
    with pytest.raises(openai.APIError):
        list(
            sdk.chat.completions.create(
                model="alpha/m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert chats(beta) == 1


def test_v1_responses_falls_over_and_a_scoped_key_only_to_models_it_may_use(
    live: tuple[str, str], alpha: ScriptedUpstream, beta: ScriptedUpstream
) -> None:
    base, key = live
    sdk = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    alpha.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    response = sdk.responses.create(model="alpha/m", input="hi")
    assert response.output_text == "Beta answers." and chats(beta) == 1
    with browser(base) as signed_in:  # the turn's ledger row charges the fallback
        for _ in range(100):
            by_model = signed_in.get("/api/me/usage").json()["by_model"]
            if by_model:
                break
            time.sleep(0.05)
    assert [row["key"] for row in by_model] == ["beta/m"]

    # a key limited to alpha/m is not answered by beta/m: the failure is reported
    with browser(base) as signed_in:
        scoped = make_key(signed_in, scopes={"models": ["alpha/m"]})["key"]
    limited = openai.OpenAI(base_url=base, api_key=scoped, max_retries=0)
    alpha.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    with pytest.raises(openai.APIStatusError) as refused:
        limited.chat.completions.create(
            model="alpha/m", messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.status_code == 502 and chats(beta) == 1
