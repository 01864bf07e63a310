"""Fixtures for memory tests: the app of ``tests/conftest.py`` with only the memory
feature (a hashing embedder, so results are deterministic), on both backends, with
two scripted models: ``scripted/chat`` answers, ``scripted/memory`` extracts and
summarizes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from apihelpers import Client, parse_sse
from parley.jobs.runner import Jobs
from parley.memory.feature import MemoryFeature
from parley.memory.testing import HashingEmbedder
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel
from parley.turns import TurnService


@pytest.fixture
def chat() -> ScriptedModel:
    return ScriptedModel(default="Noted.")


@pytest.fixture
def extraction() -> list[dict[str, Any]]:
    """Operations the memory model returns to the next extraction request."""
    return []


@pytest.fixture
def memory_model(extraction: list[dict[str, Any]]) -> ScriptedModel:
    def answer(request: ChatRequest) -> Reply | dict[str, Any]:
        if request.response_format is not None:
            ops = list(extraction)
            extraction.clear()
            return {"memories": ops}
        return Reply(text="Summary: the user and the assistant talked about otters.")

    return ScriptedModel(default=answer)


@pytest.fixture
def scripted_models(chat: ScriptedModel, memory_model: ScriptedModel) -> dict[str, ScriptedModel]:
    return {"chat": chat, "memory": memory_model}


@pytest.fixture
def overrides() -> dict[str, Any]:
    # No relevance floor: it is calibrated for a real embedder (MiniLM), and the
    # hashing one scores related words apart ("job" / "work") at 0; the floor's
    # own tests (test_memory_chip.py) use MiniLM.
    return {
        "default_model": "scripted/chat",
        "memory_model": "scripted/memory",
        "memory_recall_floor": 0.0,
    }


@pytest.fixture
def features() -> list[Any]:
    return [lambda s: MemoryFeature(s, embedder=HashingEmbedder())]


@pytest.fixture
def feature(app: Any) -> MemoryFeature:
    found: MemoryFeature = app.state.features["memory"]
    return found


Say = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def say(client: Client, app: Any) -> Say:
    """Send a message (new conversation unless given) and wait for the turn and
    its after-turn hooks; returns ``{conversation, events, done}``."""

    async def send(
        content: str, conversation: str | None = None, *, temporary: bool = False
    ) -> dict[str, Any]:
        if conversation is None:
            created = await client.post("/api/conversations", json={"temporary": temporary})
            conversation = created.json()["id"]
        response = await client.post(
            f"/api/conversations/{conversation}/messages", json={"content": content}
        )
        assert response.status_code == 200, response.text
        events = parse_sse(response.text)
        await settle(app)
        return {"conversation": conversation, "events": events, "done": dict(events)["done"]}

    return send


@pytest.fixture
def settled(app: Any) -> Callable[[], Awaitable[None]]:
    """Wait for background after-turn work (extraction, summaries) to finish."""
    return lambda: settle(app)


async def settle(app: Any) -> None:
    """Wait until background after-turn work (extraction, summaries) is finished."""
    turns = app.state.services.require(TurnService)
    for _ in range(200):
        if not turns._tasks:
            break
        await asyncio.wait(set(turns._tasks), timeout=5)
    else:
        raise AssertionError("after-turn work did not finish")
    await app.state.services.require(Jobs).drain(limit_s=30)  # summaries are jobs
