"""A model that cannot be reached: an ordinary user is told what to do, without the
server's internals (the provider's address, setting names); an administrator gets the
detail. A real provider (OpenAI-compatible, over HTTP) pointed at a closed port."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from apihelpers import Client, make_client, parse_sse, signup
from parley.config import ModelConfig, ProviderConfig

INTERNAL = re.compile(r"https?://|127\.0\.0\.1|api_key|base_url|_KEY\b|timeout_s", re.I)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is


@pytest.fixture
def overrides() -> dict[str, Any]:
    dead = ProviderConfig(
        name="office",
        base_url=f"http://127.0.0.1:{_closed_port()}/v1",
        api_key_env="OFFICE_API_KEY",
        discover_models=False,
        models=[ModelConfig(name="big")],
    )
    return {"providers": [dead], "default_model": "office/big"}


async def _fail(client: Client) -> tuple[str, dict[str, Any]]:
    conv = (await client.post("/api/conversations", json={"model": "office/big"})).json()["id"]
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "hello?"})
    assert r.status_code == 200, r.text
    events = dict(parse_sse(r.text))
    stored = (await client.get(f"/api/conversations/{conv}")).json()["messages"][-1]
    assert stored["status"] == "failed" and events["done"]["message"]["status"] == "failed"
    return events["error"]["message"], stored


async def test_a_user_is_told_what_to_do_and_the_admin_sees_the_detail(
    app: Any, client: Client, user: Any
) -> None:
    admin_text, admin_stored = await _fail(client)  # the first account is the admin
    assert "127.0.0.1" in admin_text and "base_url" in admin_text
    async with make_client(app) as bea:
        await signup(bea, "bea@example.com")
        text, stored = await _fail(bea)
        assert not INTERNAL.search(text), text
        assert "ask your administrator" in text and "Try again" in text
        assert stored["error_message"] == text and stored["error_code"] == "provider_unavailable"
        # reattaching to the finished turn shows the same words
        conv = stored["conversation_id"]
        again = await bea.get(f"/api/conversations/{conv}/messages/{stored['id']}/events")
        assert not INTERNAL.search(again.text)
    assert admin_stored["error_message"] == admin_text


async def test_a_broken_built_in_model_is_explained_without_its_path(
    make_app: Any, make_settings: Any, tmp_path: Any
) -> None:
    """The embedded model pointed at a file that is not there: the admin reads the path,
    a user reads whom to ask, in the chat and in the model list."""
    settings = make_settings(
        local_model_enabled=True, local_model=str(tmp_path / "gone" / "model.gguf")
    )
    async with (
        make_app(settings, extra_providers=[]) as app,
        make_client(app) as ada,
        make_client(app) as bea,
    ):
        await signup(ada)
        await signup(bea, "bea@example.com")
        failed = []
        for client in (ada, bea):
            conv = (await client.post("/api/conversations", json={})).json()["id"]
            r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "hi"})
            assert "error" in dict(parse_sse(r.text)), r.text
            view = (await client.get(f"/api/conversations/{conv}")).json()
            failed.append(view["messages"][-1]["error_message"])
        admin_local = (await ada.get("/api/models")).json()["local"]
        user_local = (await bea.get("/api/models")).json()["local"]
        assert admin_local["status"] == user_local["status"] == "error"
        assert "gone" in admin_local["detail"]
        assert "gone" not in user_local["detail"]
        assert "ask your administrator" in user_local["detail"]
        assert "gone" in failed[0]
        assert "gone" not in failed[1] and "ask your administrator" in failed[1]
        assert not INTERNAL.search(failed[1]), failed[1]
