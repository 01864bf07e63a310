"""One real chat turn through the embedded model: load, stream, persist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from apihelpers import Client, MakeApp, MakeSettings, make_client, parse_sse, signup


@pytest.fixture
async def local_client(make_app: MakeApp, make_settings: MakeSettings) -> AsyncIterator[Client]:
    settings = make_settings(local_model_enabled=True, local_context_window=2048)
    async with make_app(settings, extra_providers=[]) as app, make_client(app) as client:
        yield client


@pytest.mark.slow
async def test_embedded_model_answers_streams_and_persists(local_client: Client) -> None:
    await signup(local_client)
    models = (await local_client.get("/api/models")).json()
    assert models["default"] == "local/smollm2-135m-instruct"
    assert models["local"]["status"] == "not_loaded"  # lazily loaded: start-up stays fast

    conv = (await local_client.post("/api/conversations", json={})).json()["id"]
    response = await local_client.post(
        f"/api/conversations/{conv}/messages", json={"content": "Say hello in one sentence."}
    )
    events = parse_sse(response.text)
    texts = [data["text"] for name, data in events if name == "text"]
    assert len(texts) > 1, "the answer should arrive in several streamed pieces"
    done: dict[str, Any] = dict(events)["done"]
    record = done["message"]
    assert record["status"] == "complete"
    assert record["content"] == "".join(texts)
    assert record["provider"] == "local" and record["model"] == "local/smollm2-135m-instruct"
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0
    assert record["cost"] == 0 and record["ttft_ms"] is not None

    view = (await local_client.get(f"/api/conversations/{conv}")).json()
    assert view["messages"][-1]["content"] == record["content"]
    assert (await local_client.get("/api/models")).json()["local"]["status"] == "ready"
