"""Auto is not offered over the demo starter alone: there is nothing to choose
between, and the first-run setup must still see an instance without a real model."""

from __future__ import annotations

from typing import Any

import pytest

from apihelpers import Client
from parley.providers.base import ModelInfo
from parley.providers.scripted import ScriptedModel


@pytest.fixture
def scripted_models() -> dict[str, ScriptedModel]:
    info = ModelInfo(provider="scripted", name="starter", demo=True)
    return {"starter": ScriptedModel(default="Hi.", info=info)}


async def test_no_auto_over_the_demo_model_alone(client: Client, user: dict[str, Any]) -> None:
    items = (await client.get("/api/models")).json()["items"]
    assert [m["ref"] for m in items] == ["scripted/starter"]
