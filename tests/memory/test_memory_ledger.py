"""Memory's model calls are usage-ledger rows of their own: an extraction is one
``memory`` row, a summary one ``summary`` row (the memory model's, charged to the
turn's user and chat), and each request to a remote embeddings endpoint one
``embeddings`` row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apihelpers import Client, ledger_rows
from parley.embeddings import OpenAIEmbedder
from parley.memory.feature import MemoryFeature
from parley.providers.base import ModelInfo
from parley.providers.scripted import ScriptedModel
from parley.providers.testing import ScriptedUpstream


@pytest.fixture
def chat() -> ScriptedModel:
    # A 1,000-token window: a summary is due after a few long turns.
    info = ModelInfo("scripted", "chat", context_window=1000, max_output_tokens=200)
    return ScriptedModel(default="Noted.", info=info)


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


@pytest.fixture
def features(upstream: ScriptedUpstream) -> list[Any]:
    """Memory with a remote embeddings endpoint (the scripted upstream's)."""
    return [
        lambda s: MemoryFeature(s, embedder=OpenAIEmbedder(upstream.base_url, "scripted-embed"))
    ]


def long_text(topic: str) -> str:
    return f"{topic}: " + "otters float on their backs and hold paws " * 14


async def test_extraction_is_a_memory_row(
    app: Any,
    client: Client,
    user: dict[str, Any],
    say: Any,
    extraction: list[dict[str, Any]],
) -> None:
    extraction.append({"action": "add", "fact": "I keep bees in my garden", "memory": 0})
    turn = await say("I keep bees in my garden; which flowers do they like?")
    memories = (await client.get("/api/memories")).json()["items"]
    assert [m["text"] for m in memories] == ["I keep bees in my garden."]
    rows = await ledger_rows(app)
    memory = [row for row in rows if row.endpoint == "memory"]
    assert len(memory) == 1
    (row,) = memory
    assert (row.user_id, row.conversation_id) == (user["id"], turn["conversation"])
    assert (row.provider, row.model, row.outcome) == ("scripted", "scripted/memory", "ok")
    assert row.input_tokens > 0 and row.output_tokens > 0  # counted (no report): never zero
    assert [row.endpoint for row in rows].count("chat") == 1


async def test_a_summary_is_a_summary_row(
    app: Any, client: Client, user: dict[str, Any], say: Any
) -> None:
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    for n in range(3):
        await say(long_text(f"turn {n}"), conv)
    assert (await client.get(f"/api/conversations/{conv}")).json()["summary"] is not None
    rows = await ledger_rows(app)
    summaries = [row for row in rows if row.endpoint == "summary"]
    assert len(summaries) == 1
    assert (summaries[0].model, summaries[0].conversation_id) == ("scripted/memory", conv)
    assert summaries[0].output_tokens > 0
    assert [row.endpoint for row in rows].count("chat") == 3


async def test_each_remote_embeddings_request_is_an_embeddings_row(
    app: Any, client: Client, user: dict[str, Any], upstream: ScriptedUpstream
) -> None:
    before = len([r for r in upstream.requests if r.path.endswith("/embeddings")])
    r = await client.post("/api/memories", json={"text": "My sister is called Ines"})
    assert r.status_code in (200, 201), r.text
    rows = [row for row in await ledger_rows(app) if row.endpoint == "embeddings"]
    sent = len([r for r in upstream.requests if r.path.endswith("/embeddings")]) - before
    assert sent >= 1 and len(rows) == sent  # one row per request the endpoint got
    for row in rows:
        assert (row.user_id, row.provider, row.model, row.outcome) == (
            user["id"],
            "embeddings",
            "embeddings/scripted-embed",
            "ok",
        )
        assert row.input_tokens > 0
