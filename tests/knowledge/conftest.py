"""Fixtures for files-and-knowledge tests: an app with only this feature, on both backends."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from knhelpers import Upload

from apihelpers import Client, make_client, signup
from parley.api.app import create_app
from parley.config import load_settings
from parley.knowledge.feature import KnowledgeFeature
from parley.providers.scripted import ScriptedModel, ScriptedProvider


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Scripted answer [1].")


@pytest.fixture
def knowledge_config() -> dict[str, Any]:
    """Overrides of the knowledge settings (a test module may redefine this fixture)."""
    return {"knowledge_wait_s": 2.0}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, knowledge_config: dict[str, Any]) -> Any:
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        local_model_enabled=False,
        flush_interval_s=0.05,
        providers=[],
        **knowledge_config,
    )


@pytest.fixture
async def app(settings: Any, scripted: ScriptedModel) -> AsyncIterator[Any]:
    application = create_app(
        settings,
        extra_providers=[ScriptedProvider("scripted", {"scripted": scripted})],
        features=[KnowledgeFeature],
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def feature(app: Any) -> KnowledgeFeature:
    found: KnowledgeFeature = app.state.features["knowledge"]
    return found


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Client]:
    async with make_client(app) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    return await signup(client)


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
