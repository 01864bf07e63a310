"""``/v1`` calls in the usage ledger through a real provider adapter: a stream from an
upstream that sends no usage chunk is counted, never zero; ``/v1/responses/compact``
is a ``compact`` row charged to the key. The official ``openai`` SDK against the
server over HTTP, the upstream a scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from sqlalchemy import select

from parley.config import ModelConfig, ProviderConfig, Settings
from parley.providers.scripted import ScriptedModel
from parley.providers.testing import ScriptedUpstream, UpstreamReply
from parley.storage import Database
from parley.usage.tables import UsageEvent


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


@pytest.fixture
def overrides(upstream: ScriptedUpstream) -> dict[str, Any]:
    upstream.reset()
    model = ModelConfig(name="scripted-model", input_price=3.0, output_price=15.0)
    provider = ProviderConfig(
        name="up",
        base_url=upstream.base_url,
        api_key="sk-up",
        models=[model],
        discover_models=False,
        timeout_s=10,
    )
    return {"providers": [provider]}


def rows(settings: Settings, count: int, timeout_s: float = 10.0) -> list[UsageEvent]:
    """The ledger's rows once there are ``count`` (written just after the answer)."""

    async def read() -> list[UsageEvent]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return list(await session.scalars(select(UsageEvent).order_by(UsageEvent.at)))
        finally:
            await db.dispose()

    deadline = time.monotonic() + timeout_s
    while True:
        found = asyncio.run(read())
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, [(r.endpoint, r.outcome) for r in found]
            return found
        time.sleep(0.05)


def test_a_stream_whose_upstream_sends_no_usage_is_counted(
    live: tuple[str, str], upstream: ScriptedUpstream, settings: Settings
) -> None:
    base, key = live
    answer = "An answer streamed by a server that ignores stream_options entirely."
    upstream.enqueue(UpstreamReply(text=answer, usage=False))
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    stream = client.chat.completions.create(
        model="up/scripted-model",
        messages=[{"role": "user", "content": "say something"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}
    (row,) = rows(settings, 1)
    assert (row.endpoint, row.provider, row.model, row.outcome) == (
        "chat.completions",
        "up",
        "up/scripted-model",
        "ok",
    )
    assert row.input_tokens > 0 and row.output_tokens >= len(answer) // 8
    assert row.cost == pytest.approx((row.input_tokens * 3 + row.output_tokens * 15) / 1e6)
    assert row.cost > 0


def test_compaction_is_a_compact_row(
    live: tuple[str, str], scripted: ScriptedModel, settings: Settings
) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    scripted.enqueue("We picked Lisbon for May.")
    first = client.responses.create(model="scripted/scripted", input="Where do we go in May?")
    scripted.enqueue("The user plans a May trip to Lisbon.")
    client.responses.compact(model="scripted/scripted", previous_response_id=first.id)
    found = rows(settings, 2)
    assert [row.endpoint for row in found] == ["responses", "compact"]
    turn, compact = found
    assert compact.api_key_id == turn.api_key_id is not None
    assert compact.conversation_id == turn.conversation_id is not None
    assert (compact.model, compact.outcome) == ("scripted/scripted", "ok")
    assert compact.input_tokens > 0 and compact.output_tokens > 0
