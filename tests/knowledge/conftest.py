"""Fixtures for files-and-knowledge tests: the app of ``tests/conftest.py`` with only
this feature, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from knhelpers import Upload

from apihelpers import Client
from parley.knowledge.feature import KnowledgeFeature
from parley.providers.scripted import ScriptedModel


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Scripted answer [1].")


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Knowledge settings for these tests (a test module may redefine this fixture)."""
    return {"knowledge_wait_s": 2.0}


@pytest.fixture
def features() -> list[Any]:
    return [KnowledgeFeature]


@pytest.fixture
def feature(app: Any) -> KnowledgeFeature:
    found: KnowledgeFeature = app.state.features["knowledge"]
    return found


@pytest.fixture
def upload(client: Client) -> Upload:
    async def do(
        name: str,
        data: bytes,
        *,
        c: Client | None = None,
        conversation_id: str | None = None,
        collection_id: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> Any:
        form: dict[str, str] = {}
        if conversation_id:
            form["conversation_id"] = conversation_id
        if collection_id:
            form["collection_id"] = collection_id
        return await (c or client).post(
            "/api/files", files={"file": (name, data, content_type)}, data=form
        )

    return do
