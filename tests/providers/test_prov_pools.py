"""Connection-pool shards: no upstream pool grows past a few dozen streams."""

from __future__ import annotations

import asyncio

import openai
import pytest

from parley.config import ModelConfig, ProviderConfig
from parley.errors import ProviderError
from parley.messages import Message, TextDelta
from parley.providers.anthropic import AnthropicProvider
from parley.providers.base import ChatRequest
from parley.providers.openai_compat import OpenAIProvider
from parley.providers.pools import PER_SHARD, Shards
from parley.providers.testing import ScriptedUpstream, UpstreamReply


def hello() -> ChatRequest:
    return ChatRequest(messages=[Message("user", "Say hello please")])


def test_least_busy_shard_until_all_are_full_then_a_new_one() -> None:
    made: list[str] = []

    def make() -> str:
        made.append(f"client{len(made) + 1}")
        return made[-1]

    shards = Shards("client0", make, per_shard=2)
    leases = [shards.acquire() for _ in range(5)]
    assert [lease.client for lease in leases] == [
        "client0",
        "client0",
        "client1",
        "client1",
        "client2",
    ]
    shards.release(leases[0])
    assert shards.acquire().client == "client0"  # room again in the first
    assert len(shards) == 3


def test_a_client_handed_in_is_the_only_one() -> None:
    shards = Shards("mine", None, per_shard=1)
    assert {shards.acquire().client for _ in range(10)} == {"mine"}
    assert len(shards) == 1


async def test_concurrent_streams_spread_over_shards_and_all_return(openai_config) -> None:
    count = PER_SHARD * 2 + 5
    with ScriptedUpstream(default_tokens=50) as server:
        provider = OpenAIProvider(openai_config.model_copy(update={"base_url": server.base_url}))
        clients: set[int] = set()

        async def one() -> str:
            stream = provider.model("scripted-model").stream(hello())
            parts = []
            async for event in stream:
                clients.update(id(s.client) for s in provider.shards._shards if s.active)
                if isinstance(event, TextDelta):
                    parts.append(event.text)
            return "".join(parts)

        texts = await asyncio.gather(*(one() for _ in range(count)))
        shards = list(provider.shards._shards)
        await provider.aclose()
    assert all(text.count(" ") == 50 for text in texts)
    assert len(shards) >= 3  # 69 streams at once need three pools of 32
    assert all(shard.active == 0 for shard in shards)  # every lease returned
    assert len(clients) == len(shards)
    assert all(isinstance(s.client, openai.AsyncOpenAI) for s in shards)
    assert all(s.client.api_key == "sk-test-secret" for s in shards)  # same credentials


async def test_failed_and_abandoned_streams_return_their_lease(
    upstream: ScriptedUpstream, openai_config
) -> None:
    provider = OpenAIProvider(openai_config)
    upstream.enqueue(UpstreamReply(fail="500"))
    with pytest.raises(ProviderError):
        [e async for e in provider.model("scripted-model").stream(hello())]
    upstream.enqueue(UpstreamReply(tokens=200, rate=100))
    stream = provider.model("scripted-model").stream(hello())
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert [s.active for s in provider.shards._shards] == [0]
    await provider.aclose()


async def test_anthropic_streams_spread_over_shards_too() -> None:
    with ScriptedUpstream(default_tokens=20) as server:
        config = ProviderConfig(
            name="claude",
            kind="anthropic",
            base_url=server.base_url,
            api_key="sk-ant-test",
            models=[ModelConfig(name="scripted-model")],
            timeout_s=5,
        )
        provider = AnthropicProvider(config)

        async def one() -> str:
            stream = provider.model("scripted-model").stream(hello())
            return "".join([e.text async for e in stream if isinstance(e, TextDelta)])

        texts = await asyncio.gather(*(one() for _ in range(PER_SHARD + 3)))
        shards = list(provider.shards._shards)
        await provider.aclose()
    assert all(text.count(" ") == 20 for text in texts)
    assert len(shards) >= 2 and all(shard.active == 0 for shard in shards)
