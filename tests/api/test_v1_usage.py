"""Every ``/v1`` call writes a row of the usage ledger (tokens, cost, latency,
outcome, the key), and ``GET /api/me/usage`` sums them by day, model and key."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from parley.config import Settings
from parley.errors import ProviderUnavailable
from parley.messages import Usage
from parley.providers.base import ModelInfo
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage import Database
from parley.usage.tables import UsageEvent
from v1helpers import browser, make_key

HI = [{"role": "user", "content": "hi"}]
PRICED = ModelInfo(provider="scripted", name="scripted", input_price=2.0, output_price=8.0)


@pytest.fixture
def scripted() -> ScriptedModel:
    """The scripted model with prices (USD per million tokens)."""
    return ScriptedModel(default="Hello from the scripted model.", info=PRICED)


def _rows(settings: Settings, count: int, timeout_s: float = 10.0) -> list[UsageEvent]:
    """The ledger's rows, oldest first, once there are ``count`` (they are written
    just after the answer)."""

    async def read() -> list[UsageEvent]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                return list(await session.scalars(select(UsageEvent).order_by(UsageEvent.at)))
        finally:
            await db.dispose()

    deadline = time.monotonic() + timeout_s
    while True:
        rows = asyncio.run(read())
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) == count, [(r.endpoint, r.outcome) for r in rows]
            return rows
        time.sleep(0.05)


def test_a_completion_records_the_providers_usage_and_cost(
    live: tuple[str, str], scripted: ScriptedModel, settings: Settings
) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    scripted.enqueue(Reply(text="Four words of answer.", usage=Usage(1000, 250)))
    client.chat.completions.create(model="scripted/scripted", messages=HI)
    (row,) = _rows(settings, 1)
    assert (row.endpoint, row.provider, row.model, row.outcome) == (
        "chat.completions",
        "scripted",
        "scripted/scripted",
        "ok",
    )
    assert (row.input_tokens, row.output_tokens, row.conversation_id) == (1000, 250, None)
    assert row.cost == pytest.approx((1000 * 2.0 + 250 * 8.0) / 1_000_000)
    assert row.api_key_id is not None and row.latency_ms >= 0


def test_a_stream_without_a_usage_report_is_counted_never_zero(
    live: tuple[str, str], scripted: ScriptedModel, settings: Settings
) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    scripted.enqueue(Reply(text="a streamed answer of some length", usage=Usage(0, 0)))
    stream = client.chat.completions.create(model="scripted/scripted", messages=HI, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "a streamed answer of some length"
    (row,) = _rows(settings, 1)
    assert row.outcome == "ok" and row.output_tokens >= len(text) // 4 > 0
    assert row.input_tokens > 0 and row.cost > 0


def test_failures_and_abandoned_streams_are_recorded_with_their_outcome(
    live: tuple[str, str], scripted: ScriptedModel, settings: Settings
) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    scripted.enqueue(Reply(error=ProviderUnavailable("down")))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="scripted/scripted", messages=HI)
    scripted.enqueue(Reply(text="tick " * 500, chunk_size=1, delay_s=0.01))
    with httpx.stream(
        "POST",
        base + "/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "scripted/scripted", "messages": HI, "stream": True},
    ) as response:
        for chunk in response.iter_text():
            if "tick" in chunk:
                break  # the client goes away mid-answer
    failed, cancelled = _rows(settings, 2)
    assert failed.outcome == "provider_unavailable" and failed.output_tokens == 0
    assert cancelled.outcome == "cancelled" and cancelled.output_tokens > 0


def test_usage_totals_by_day_model_and_key(
    live: tuple[str, str], scripted: ScriptedModel, settings: Settings
) -> None:
    base, key = live
    with browser(base) as web:
        robot = make_key(web, name="robot")
    scripted.enqueue(Reply(text="one", usage=Usage(10, 5)), Reply(text="two", usage=Usage(20, 6)))
    openai.OpenAI(base_url=base, api_key=key).chat.completions.create(
        model="scripted/scripted", messages=HI
    )
    robot_client = openai.OpenAI(base_url=base, api_key=robot["key"])
    robot_client.chat.completions.create(model="scripted/scripted", messages=HI)
    robot_client.embeddings.create(model="embeddings/all-MiniLM-L6-v2", input="hello world")
    _rows(settings, 3)
    with browser(base) as web:
        summary: dict[str, Any] = web.get("/api/me/usage").json()
        week = web.get("/api/me/usage", params={"days": 7})
        bad = web.get("/api/me/usage", params={"days": 0})
    today = datetime.now(UTC).date().isoformat()
    assert summary["by_day"] == [
        {
            "key": today,
            "name": None,
            "requests": 3,
            "input_tokens": 30 + summary["by_model"][0]["input_tokens"],
            "cached_input_tokens": 0,
            "output_tokens": 11,
            "cost": pytest.approx((30 * 2.0 + 11 * 8.0) / 1_000_000),
        }
    ]
    by_model = {t["key"]: t for t in summary["by_model"]}
    assert set(by_model) == {"embeddings/all-MiniLM-L6-v2", "scripted/scripted"}
    assert by_model["scripted/scripted"]["requests"] == 2
    assert by_model["embeddings/all-MiniLM-L6-v2"]["input_tokens"] > 0
    by_key = {t["name"]: t for t in summary["by_key"]}
    assert by_key["robot"]["requests"] == 2 and by_key["robot"]["key"] == robot["id"]
    assert by_key["sdk"]["requests"] == 1 and by_key["sdk"]["output_tokens"] == 5
    assert week.status_code == 200 and bad.status_code == 422


def test_another_user_sees_none_of_it(
    live: tuple[str, str], scripted: ScriptedModel, settings: Settings
) -> None:
    base, key = live
    openai.OpenAI(base_url=base, api_key=key).chat.completions.create(
        model="scripted/scripted", messages=HI
    )
    _rows(settings, 1)
    root = base.removesuffix("/v1")
    with httpx.Client(base_url=root) as other:
        other.post("/api/auth/signup", json={"email": "other@example.com", "password": "12345678"})
        summary = other.get("/api/me/usage").json()
    assert summary["by_day"] == summary["by_model"] == summary["by_key"] == []
