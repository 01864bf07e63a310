"""Admin rules that live once in the services: an active administrator always
remains (``accounts.ensure_an_admin_remains``), and providers added in the web
app are added, edited, tested and deleted through ``instance.provider_admin``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apihelpers import Client, make_client, signup
from parley.providers.testing import ScriptedUpstream


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


async def test_an_active_administrator_always_remains(app: Any, client: Client, user: Any) -> None:
    me = user["id"]
    for change in ({"role": "user"}, {"status": "disabled"}, {"status": "pending"}):
        refused = await client.patch(f"/api/admin/users/{me}", json=change)
        assert refused.status_code == 409 and refused.json()["code"] == "last_admin"
    leaving = await client.request("DELETE", "/api/me", json={"password": "correct horse"})
    assert leaving.status_code == 409 and leaving.json()["code"] == "last_admin"

    created = await client.post(
        "/api/admin/users",
        json={"email": "cy@example.com", "password": "correct horse", "role": "admin"},
    )
    other = created.json()["user"]["id"]
    # A disabled admin is no active administrator: changing it takes nothing away.
    assert (
        await client.patch(f"/api/admin/users/{other}", json={"status": "disabled"})
    ).status_code == 200
    assert (
        await client.patch(f"/api/admin/users/{other}", json={"role": "user"})
    ).status_code == 200
    assert (await client.patch(f"/api/admin/users/{me}", json={"role": "user"})).status_code == 409
    # With a second active admin, the first may step down.
    await client.patch(f"/api/admin/users/{other}", json={"role": "admin", "status": "active"})
    demoted = await client.patch(f"/api/admin/users/{me}", json={"role": "user"})
    assert demoted.status_code == 200 and demoted.json()["user"]["role"] == "user"
    async with make_client(app) as cy:
        await signup(cy, "dee@example.com")  # a regular user
        assert (await cy.get("/api/admin/users")).status_code == 403


async def test_providers_are_added_edited_tested_and_deleted(
    client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    body = {"name": "extra", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-1"}
    added = await client.post("/api/admin/providers", json=body)
    assert added.status_code == 201, added.text
    info = added.json()
    assert info["source"] == "database" and info["editable"] and info["has_key"]
    assert "sk-1" not in added.text
    again = await client.post("/api/admin/providers", json=body)
    assert again.status_code == 409 and again.json()["code"] == "provider_exists"

    tested = (await client.post("/api/admin/providers/extra/test")).json()
    assert tested["ok"] is True and "scripted-model" in tested["models"]

    edited = await client.patch(
        "/api/admin/providers/extra",
        json={"api_key": None, "models": [{"name": "scripted-model", "context_window": 4096}]},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["has_key"] is False and edited.json()["base_url"] == upstream.base_url
    assert "extra/scripted-model" in {
        m["ref"] for m in (await client.get("/api/models")).json()["items"]
    }
    refused = await client.patch(
        "/api/admin/providers/extra", json={"base_url": "http://127.0.0.1:9/v1"}
    )  # the new endpoint is tested before it is saved
    assert refused.status_code == 422 and refused.json()["code"] == "provider_test_failed"
    moved = await client.patch(
        "/api/admin/providers/extra", json={"base_url": "http://127.0.0.1:9/v1", "force": True}
    )
    assert moved.json()["base_url"] == "http://127.0.0.1:9/v1"
    assert (await client.post("/api/admin/providers/extra/test")).json()["ok"] is False

    assert (await client.patch("/api/admin/providers/scripted", json={})).status_code == 404
    assert (await client.delete("/api/admin/providers/extra")).status_code == 204
    gone = await client.delete("/api/admin/providers/extra")
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    names = {p["name"] for p in (await client.get("/api/admin/providers")).json()["items"]}
    assert "extra" not in names and "scripted" in names
