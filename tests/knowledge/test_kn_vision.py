"""Images reach vision-capable models as an ImagePart on the question."""

from __future__ import annotations

from typing import Any

import pytest
from knhelpers import Upload
from test_kn_api import PNG

from apihelpers import Client, parse_sse
from parley.providers.base import ModelInfo
from parley.providers.scripted import ScriptedModel


@pytest.fixture
def scripted() -> ScriptedModel:
    info = ModelInfo(provider="scripted", name="scripted", supports_vision=True)
    return ScriptedModel(default="A one-pixel image.", info=info)


async def test_attached_image_goes_to_a_vision_model(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    response = await upload("dot.png", PNG, conversation_id=conv["id"])
    assert response.status_code == 201
    text = (
        await client.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "What is this?"}
        )
    ).text
    sources = dict(parse_sse(text))["sources"]["sources"]
    assert sources[0]["mode"] == "image" and sources[0]["filename"] == "dot.png"
    question = scripted.requests[-1].messages[-1]
    assert question.role == "user" and len(question.images) == 1
    assert question.images[0].url.startswith("data:image/png;base64,")
    assert question.images[0].media_type == "image/png"
