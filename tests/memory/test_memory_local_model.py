"""Extraction with the embedded small model (SmolLM2 through llama.cpp): the request
is JSON-schema constrained, so whatever the tiny model proposes parses against
``SCHEMA``, and only facts the user's message supports are stored. Nothing here
depends on how good the model's judgement is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonschema
import pytest

from parley.config import Settings
from parley.memory.extract import SCHEMA, MemoryExtractor
from parley.memory.service import MemoryService
from parley.memory.store import MemoryStore
from parley.memory.text import supported_by
from parley.messages import TextDelta
from parley.providers.base import ChatRequest
from parley.providers.local import LocalProvider
from parley.storage.db import Database
from parley.storage.tables import User
from parley.turns.hooks import TurnInfo

pytestmark = pytest.mark.slow

MESSAGES = [
    "I'm vegetarian and I live in Lyon with my two cats.",
    "My daughter Lea starts school in September; any tips for the first week?",
]


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProvider]:
    provider = LocalProvider(Settings(data_dir=tmp_path_factory.mktemp("smol")))  # type: ignore[call-arg]
    yield provider
    asyncio.run(provider.aclose())


class Recording:
    """The embedded model, keeping each request and the raw text it produced."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.info = inner.info
        self.calls: list[tuple[ChatRequest, str]] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[Any]:
        parts: list[str] = []
        async for event in self.inner.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            yield event
        self.calls.append((request, "".join(parts)))


async def test_the_embedded_model_extracts_schema_valid_supported_facts(
    smol: LocalProvider, db: Database
) -> None:
    async with db.session() as session:
        session.add(User(id="u1", email="u1@example.com", password_hash="x"))
        await session.commit()
    model = Recording(smol.model(smol.info.name))

    async def resolve(_: TurnInfo) -> Any:
        return model

    extractor = MemoryExtractor(MemoryService(db, None), resolve)
    for n, message in enumerate(MESSAGES):
        info = TurnInfo("u1", None, f"m{n}", f"a{n}", message, model.info)  # type: ignore[arg-type]
        await extractor.extract(info)
    assert len(model.calls) == len(MESSAGES)
    for request, raw in model.calls:
        assert request.response_format == SCHEMA
        jsonschema.validate(json.loads(raw), SCHEMA)  # constrained output always parses
    async with db.session() as session:
        stored = (await MemoryStore(session, "u1").list(limit=100))[0]
    said = " ".join(MESSAGES)
    assert all(supported_by(m.text, said) for m in stored), [m.text for m in stored]
