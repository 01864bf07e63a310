"""``POST /v1/embeddings`` with the official SDK, served by the embedded
all-MiniLM-L6-v2 (the embedder knowledge indexes with), and its limits."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import openai
import pytest

from v1helpers import browser, make_key

MODEL = "embeddings/all-MiniLM-L6-v2"


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"embeddings_max_inputs": 4, "embeddings_max_input_chars": 200}


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def test_texts_become_normalized_vectors_listed_in_models(live: tuple[str, str]) -> None:
    base, key = live
    client = _sdk(base, key)
    assert MODEL in [m.id for m in client.models.list()]
    texts = [
        "The cat sat on the mat.",
        "A kitten rested on the rug.",
        "Quarterly tax filing rules.",
    ]
    result = client.embeddings.create(model=MODEL, input=texts)
    assert result.model == MODEL and [d.index for d in result.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # meaning, not noise
    assert (
        result.usage.prompt_tokens > 0 and result.usage.total_tokens == result.usage.prompt_tokens
    )

    single = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0], dimensions=384)
    assert np.allclose(single.data[0].embedding, vectors[0], atol=1e-5)


def test_base64_encoding_async(live: tuple[str, str]) -> None:
    base, key = live

    async def run() -> tuple[list[float], str]:
        async with openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0) as client:
            floats = await client.embeddings.create(model=MODEL, input="hello there")
            packed = await client.with_raw_response.embeddings.create(
                model=MODEL, input="hello there", encoding_format="base64"
            )
            return floats.data[0].embedding, packed.http_response.json()["data"][0]["embedding"]

    floats, packed = asyncio.run(run())
    decoded = np.frombuffer(base64.b64decode(packed), dtype="<f4")
    assert decoded.shape == (384,) and np.allclose(decoded, floats, atol=1e-6)


def test_what_is_not_supported_is_a_clear_bad_request(live: tuple[str, str]) -> None:
    base, key = live
    client = _sdk(base, key)
    with pytest.raises(openai.BadRequestError) as tokens:
        client.embeddings.create(model=MODEL, input=[[101, 2023, 102]])
    assert tokens.value.code == "token_input_unsupported" and tokens.value.param == "input"
    assert "send the text itself" in tokens.value.message
    with pytest.raises(openai.BadRequestError) as dims:
        client.embeddings.create(model=MODEL, input="x", dimensions=128)
    assert dims.value.param == "dimensions" and "384-dimensional" in dims.value.message
    with pytest.raises(openai.BadRequestError) as many:
        client.embeddings.create(model=MODEL, input=["a"] * 5)
    assert many.value.code == "too_many_inputs" and "at most 4" in many.value.message
    with pytest.raises(openai.BadRequestError) as long:
        client.embeddings.create(model=MODEL, input=["short", "x" * 201])
    assert long.value.code == "input_too_long" and long.value.param == "input[1]"
    with pytest.raises(openai.BadRequestError) as empty:
        client.embeddings.create(model=MODEL, input=[])
    assert "empty" in empty.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        client.embeddings.create(model="text-embedding-3-large", input="x")
    assert MODEL in unknown.value.message and unknown.value.param == "model"


def test_embedding_scopes(live: tuple[str, str]) -> None:
    base, _key = live
    with browser(base) as web:
        chat_only = make_key(web, scopes={"endpoints": ["chat"]})["key"]
        other_model = make_key(web, scopes={"models": ["scripted/scripted"]})["key"]
        this_model = make_key(web, scopes={"endpoints": ["embeddings"], "models": [MODEL]})["key"]
    with pytest.raises(openai.PermissionDeniedError):
        _sdk(base, chat_only).embeddings.create(model=MODEL, input="x")
    with pytest.raises(openai.PermissionDeniedError) as model:
        _sdk(base, other_model).embeddings.create(model=MODEL, input="x")
    assert model.value.code == "model_not_allowed"
    assert _sdk(base, this_model).embeddings.create(model=MODEL, input="x").data
