"""Fixtures for memory tests: an app with only the memory feature (a hashing
embedder, so results are deterministic), on both backends, with two scripted
models: ``scripted/chat`` answers, ``scripted/memory`` extracts and summarizes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from apihelpers import Client, make_client, parse_sse, signup
from parley.api.app import create_app
from parley.config import load_settings
from parley.memory.feature import MemoryFeature
from parley.memory.testing import HashingEmbedder
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel, ScriptedProvider
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
def settings(tmp_path: Path, database_url: str) -> Any:
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        local_model_enabled=False,
        flush_interval_s=0.05,
        providers=[],
        default_model="scripted/chat",
        memory_model="scripted/memory",
    )


@pytest.fixture
async def app(
    settings: Any, chat: ScriptedModel, memory_model: ScriptedModel
) -> AsyncIterator[Any]:
    application = create_app(
        settings,
        extra_providers=[ScriptedProvider("scripted", {"chat": chat, "memory": memory_model})],
        features=[lambda s: MemoryFeature(s, embedder=HashingEmbedder())],
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def feature(app: Any) -> MemoryFeature:
    found: MemoryFeature = app.state.features["memory"]
    return found


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Client]:
    async with make_client(app) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    return await signup(client)


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
            return
        await asyncio.wait(set(turns._tasks), timeout=5)
    raise AssertionError("after-turn work did not finish")
