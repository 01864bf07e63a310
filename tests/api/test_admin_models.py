"""Admin: testing configured providers, and going back to the automatic default model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apihelpers import make_client, signup
from parley.config import ProviderConfig
from parley.providers.scripted import ScriptedModel
from parley.providers.testing import ScriptedUpstream

SECRET = "sk-config-secret-123"


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


@pytest.fixture
def overrides(upstream: ScriptedUpstream) -> dict[str, Any]:
    return {"providers": [ProviderConfig(name="up", base_url=upstream.base_url, api_key=SECRET)]}


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="hi")


async def test_a_provider_from_the_config_file_can_be_tested(app: Any) -> None:
    async with make_client(app) as admin:
        await signup(admin, "admin@example.com")
        response = await admin.post("/api/admin/providers/up/test")
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is True and "scripted-model" in body["models"]
        assert SECRET not in response.text  # the key stays on the server
        assert (await admin.post("/api/admin/providers/nope/test")).status_code == 404


async def test_automatic_default_model_clears_the_stored_choice(app: Any) -> None:
    async with make_client(app) as admin:
        await signup(admin, "admin@example.com")
        chosen = await admin.patch(
            "/api/admin/settings", json={"default_model": "up/scripted-model"}
        )
        assert chosen.status_code == 200
        assert (await admin.get("/api/admin/settings")).json()[
            "default_model"
        ] == "up/scripted-model"
        cleared = await admin.patch("/api/admin/settings", json={"default_model": None})
        assert cleared.status_code == 200
        assert (await admin.get("/api/admin/settings")).json()[
            "default_model"
        ] != "up/scripted-model"
        # leaving the field out changes nothing
        await admin.patch("/api/admin/settings", json={"default_model": "scripted/scripted"})
        await admin.patch("/api/admin/settings", json={"signup": "closed"})
        assert (await admin.get("/api/admin/settings")).json()[
            "default_model"
        ] == "scripted/scripted"
