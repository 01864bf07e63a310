"""Providers added in Admin are first-class: edited (a rotated key, headers), tested
before they are saved, Anthropic as well as OpenAI-compatible, per-model settings
stored and applied (context window, vision, enabled, visibility), the known-model
table and the endpoint's own description filling discovered models, and a default
model that only an admin changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apihelpers import Client, make_client, parse_sse, signup
from parley.providers.base import Provider
from parley.providers.testing import ScriptedUpstream, write_tiny_gguf

KEY = "sk-right-key-123"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(models=["scripted-model", "other-model"], api_key=KEY) as server:
        yield server


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"summarize_history": False, "memory_auto": False, "knowledge_wait_s": 2.0}


def _provider(listing: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in listing["items"] if p["name"] == name), None)


def _settings(info: dict[str, Any], model: str) -> dict[str, Any]:
    return next(m for m in info["model_settings"] if m["name"] == model)


async def _ask(client: Client, conversation: str, text: str) -> list[tuple[str, Any]]:
    response = await client.post(
        f"/api/conversations/{conversation}/messages", json={"content": text}
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert events[-1][0] in ("done", "title"), events
    return events


def _chat_requests(upstream: ScriptedUpstream) -> list[Any]:
    return [r for r in upstream.requests if r.method == "POST" and "models" not in r.path]


async def test_a_wrong_key_is_refused_at_save_and_the_key_rotates(
    client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    body = {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-wrong"}
    refused = await client.post("/api/admin/providers", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "provider_test_failed"
    assert "rejected the API key" in refused.json()["detail"]
    assert _provider((await client.get("/api/admin/providers")).json(), "up") is None

    # "Save anyway" stores it (the page warns first); it lists no models yet.
    forced = await client.post("/api/admin/providers", json={**body, "force": True})
    assert forced.status_code == 201, forced.text
    assert forced.json()["models"] == []

    # The edit dialog: a wrong key is refused, the right one is saved and tested.
    wrong = await client.patch("/api/admin/providers/up", json={"api_key": "sk-still-wrong"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "provider_test_failed"
    fixed = await client.patch("/api/admin/providers/up", json={"api_key": KEY})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["models"] == ["other-model", "scripted-model"]
    assert KEY not in fixed.text

    # Rotation: the upstream takes a new key; the old one fails, the new one is saved.
    upstream.app.api_key = "sk-rotated-456"
    assert (await client.post("/api/admin/providers/up/test")).json()["ok"] is False
    rotated = await client.patch(
        "/api/admin/providers/up",
        json={"api_key": "sk-rotated-456", "headers": {"X-Title": "Parley"}},
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["header_names"] == ["X-Title"] and "Parley" not in rotated.text
    # A blank key and a blank header value keep what is stored (both are write-only).
    kept = await client.patch(
        "/api/admin/providers/up",
        json={"api_key": "", "base_url": upstream.base_url, "headers": {"X-Title": ""}},
    )
    assert kept.status_code == 200 and kept.json()["has_key"] is True
    assert (await client.post("/api/admin/providers/up/test")).json()["ok"] is True

    conv = (await client.post("/api/conversations", json={"model": "up/scripted-model"})).json()
    await _ask(client, conv["id"], "Hello?")
    sent = _chat_requests(upstream)[-1]
    assert sent.headers["authorization"] == "Bearer sk-rotated-456"
    assert sent.headers["x-title"] == "Parley"


async def test_an_anthropic_provider_is_added_and_answers(
    client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    added = await client.post(
        "/api/admin/providers",
        json={"name": "claude", "kind": "anthropic", "base_url": upstream.root_url, "api_key": KEY},
    )
    assert added.status_code == 201, added.text
    assert added.json()["kind"] == "anthropic" and "scripted-model" in added.json()["models"]
    conv = (await client.post("/api/conversations", json={"model": "claude/scripted-model"})).json()
    events = await _ask(client, conv["id"], "Hi Claude")
    assert dict(events)["done"]["message"]["content"] == "Hello from the scripted upstream."
    sent = _chat_requests(upstream)[-1]
    assert sent.path == "/v1/messages", (sent.path, sent.headers)
    assert KEY in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:]), (
        sent.headers
    )


async def test_per_model_settings_are_stored_and_applied(
    client: Client, user: Any, upstream: ScriptedUpstream, app: Any
) -> None:
    body = {"name": "up", "base_url": upstream.base_url, "api_key": KEY}
    assert (await client.post("/api/admin/providers", json=body)).status_code == 201
    before = _settings((await client.get("/api/admin/providers")).json()["items"][0], "other-model")
    assert before["context_window"] == 8192 and before["customized"] is False

    settings = {
        "name": "scripted-model",
        "display_name": "Scripted Vision",
        "context_window": 2048,
        "max_output_tokens": 256,
        "supports_vision": True,
        "supports_tools": False,
        "supports_reasoning": True,
        "input_price": 2.0,
        "cached_input_price": 0.5,
        "output_price": 8.0,
    }
    saved = await client.patch(
        "/api/admin/providers/up",
        json={"models": [settings, {"name": "other-model", "enabled": False}]},
    )
    assert saved.status_code == 200, saved.text
    stored = _settings(saved.json(), "scripted-model")
    assert {k: stored[k] for k in settings} == settings and stored["customized"] is True
    assert _settings(saved.json(), "other-model")["enabled"] is False

    models = {m["ref"]: m for m in (await client.get("/api/models")).json()["items"]}
    assert "up/other-model" not in models  # turned off
    assert models["up/scripted-model"]["context_window"] == 2048
    assert models["up/scripted-model"]["supports_vision"] is True
    assert models["up/scripted-model"]["display_name"] == "Scripted Vision"
    conv = (await client.post("/api/conversations", json={"model": "up/other-model"})).json()
    off = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
    assert off.status_code == 404 and off.json()["code"] == "model_not_found"

    # The context builder uses the saved window: a long first question no longer fits
    # beside the second one, so it is dropped from the second request.
    conv = (await client.post("/api/conversations", json={"model": "up/scripted-model"})).json()
    long_question = "Remember this. " + "word " * 2500
    await _ask(client, conv["id"], long_question)
    events = await _ask(client, conv["id"], "And now?")
    assert dict(events)["context"]["dropped_messages"] >= 2
    second = _chat_requests(upstream)[-1].json["messages"]
    assert not any("Remember this." in str(m.get("content")) for m in second)
    assert "tools" not in _chat_requests(upstream)[-1].json  # no tool schemas for it

    # Vision on: an attached image is really sent to the model.
    conv = (await client.post("/api/conversations", json={"model": "up/scripted-model"})).json()
    uploaded = await client.post(
        "/api/files",
        files={"file": ("dot.png", PNG, "image/png")},
        data={"conversation_id": conv["id"]},
    )
    assert uploaded.status_code == 201, uploaded.text
    events = await _ask(client, conv["id"], "What is in the picture?")
    assert dict(events)["sources"]["sources"][0]["mode"] == "image"
    parts = _chat_requests(upstream)[-1].json["messages"][-1]["content"]
    assert any(p["type"] == "image_url" for p in parts), parts

    # Vision off (the default for a model nobody knows): not sent, and the user is told.
    await client.patch(
        "/api/admin/providers/up",
        json={"models": [{**settings, "supports_vision": False, "context_window": 8192}]},
    )
    events = await _ask(client, conv["id"], "And now?")
    note = dict(events)["sources"]["sources"][0]
    assert note["mode"] == "unsupported" and "cannot see images" in note["detail"]
    last = _chat_requests(upstream)[-1].json["messages"][-1]["content"]
    assert isinstance(last, str)


async def test_a_model_can_be_offered_to_some_users_only(
    app: Any, client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    async with make_client(app) as other:
        bob = await signup(other, "bob@example.com")
        saved = await client.post(
            "/api/admin/providers",
            json={
                "name": "up",
                "base_url": upstream.base_url,
                "api_key": KEY,
                "models": [{"name": "scripted-model", "visible_to": [user["id"]]}],
            },
        )
        assert saved.status_code == 201, saved.text
        mine = {m["ref"] for m in (await client.get("/api/models")).json()["items"]}
        theirs = {m["ref"] for m in (await other.get("/api/models")).json()["items"]}
        assert "up/scripted-model" in mine and "up/scripted-model" not in theirs
        assert "up/other-model" in theirs
        conv = (await other.post("/api/conversations", json={"model": "up/scripted-model"})).json()
        refused = await other.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}
        )
        assert refused.status_code == 404, refused.text
        # The instance default may be a model Bob cannot see: his default falls back.
        chosen = await client.patch(
            "/api/admin/settings", json={"default_model": "up/scripted-model"}
        )
        assert chosen.status_code == 200
        assert (await client.get("/api/models")).json()["default"] == "up/scripted-model"
        assert (await other.get("/api/models")).json()["default"] == "scripted/scripted"
        plain = (await other.post("/api/conversations", json={})).json()
        answered = await _ask(other, plain["id"], "hi")
        assert dict(answered)["done"]["message"]["model"] == "scripted/scripted"
        assert bob["id"] != user["id"]


async def test_known_models_and_the_endpoint_fill_discovered_models(
    client: Client, user: Any
) -> None:
    names = ["gpt-4o-mini", "llama3.2:3b", "mystery-model", "claude-sonnet-4-5-20250929"]
    with ScriptedUpstream(models=names) as up:
        up.app.model_fields = {
            "mystery-model": {"max_model_len": 12345},  # vLLM
            "llama3.2:3b": {"owned_by": "library"},  # Ollama
        }
        up.app.ollama_show = {
            "llama3.2:3b": {
                "model_info": {"general.architecture": "llama", "llama.context_length": 65536},
                "capabilities": ["completion", "tools"],
            }
        }
        added = await client.post(
            "/api/admin/providers", json={"name": "mix", "base_url": up.base_url}
        )
        assert added.status_code == 201, added.text
        info = added.json()
        gpt = _settings(info, "gpt-4o-mini")
        assert gpt["known"] and gpt["context_window"] == 128_000 and gpt["supports_vision"]
        assert (gpt["input_price"], gpt["cached_input_price"], gpt["output_price"]) == (
            0.15,
            0.075,
            0.60,
        )
        claude = _settings(info, "claude-sonnet-4-5-20250929")
        assert claude["context_window"] == 200_000 and claude["supports_reasoning"]
        assert _settings(info, "mystery-model")["context_window"] == 12345
        llama = _settings(info, "llama3.2:3b")
        assert llama["context_window"] == 65536 and llama["supports_tools"]
        assert not llama["supports_vision"]
        assert any(r.path == "/api/show" for r in up.requests)
        models = {m["ref"]: m for m in (await client.get("/api/models")).json()["items"]}
        assert models["mix/gpt-4o-mini"]["supports_vision"] is True
        assert models["mix/gpt-4o-mini"]["input_price"] == 0.15

        # Vision from the table is enough: an attached image really reaches the model.
        conv = (await client.post("/api/conversations", json={"model": "mix/gpt-4o-mini"})).json()
        uploaded = await client.post(
            "/api/files",
            files={"file": ("dot.png", PNG, "image/png")},
            data={"conversation_id": conv["id"]},
        )
        assert uploaded.status_code == 201, uploaded.text
        await _ask(client, conv["id"], "What is this?")
        chats = [r for r in up.requests if r.path.endswith("/chat/completions")]
        question = next(
            m
            for m in chats[0].json["messages"]
            if m["role"] == "user" and isinstance(m["content"], list)
        )
        assert any(p["type"] == "image_url" for p in question["content"])


class TestDefaultModel:
    """Adding the first provider leaves everyone's default model alone."""

    @pytest.fixture
    def extra_providers(self) -> list[Provider]:
        return []

    @pytest.fixture
    def overrides(self, tmp_path: Path) -> dict[str, Any]:
        gguf = write_tiny_gguf(tmp_path / "Tiny-Random-Test.Q8_0.gguf")
        return {"local_model_enabled": True, "local_model": str(gguf)}

    async def test_adding_the_first_provider_keeps_the_default(
        self, client: Client, user: Any, upstream: ScriptedUpstream
    ) -> None:
        before = (await client.get("/api/models")).json()
        assert before["default"] == "local/tiny-random-test"
        body = {"name": "up", "base_url": upstream.base_url, "api_key": KEY}
        assert (await client.post("/api/admin/providers", json=body)).status_code == 201
        after = (await client.get("/api/models")).json()
        assert "up/scripted-model" in {m["ref"] for m in after["items"]}
        assert after["default"] == "local/tiny-random-test"
        assert (await client.get("/api/admin/settings")).json()["default_model"] is None
        # Only the admin's choice moves it.
        chosen = await client.patch(
            "/api/admin/settings", json={"default_model": "up/scripted-model"}
        )
        assert chosen.status_code == 200
        assert (await client.get("/api/models")).json()["default"] == "up/scripted-model"
