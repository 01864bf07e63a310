"""Fixtures for the tools tests: a local web server, and the app of
``tests/conftest.py`` (both database backends) whose tools reach that server
through the admin allow-list, with a scripted model at the model boundary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from webtools_helpers import Client, LocalWeb, Page, signup

from apihelpers import MakeSettings
from parley.config import Settings
from parley.providers.scripted import ScriptedModel

SEARX_RESULTS = {
    "results": [
        {
            "url": "https://example.org/otters",
            "title": "Otters hold hands",
            "content": "Sea otters hold hands while sleeping so they do not drift apart.",
        },
        {"url": "javascript:alert(1)", "title": "evil", "content": "dropped"},
        {
            "url": "https://example.net/rafts",
            "title": "Otter rafts",
            "content": "A group of resting otters is called a raft.",
        },
    ]
}


@pytest.fixture
def web() -> Iterator[LocalWeb]:
    server = LocalWeb().start()
    server.route(
        "/search",
        lambda seen: (
            Page(json.dumps(SEARX_RESULTS), content_type="application/json")
            if seen.query.get("format") == ["json"]
            else Page("format=json missing", 400, "text/plain")
        ),
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Done.")


@pytest.fixture
def settings(make_settings: MakeSettings, web: LocalWeb, overrides: dict[str, Any]) -> Settings:
    """Tools reach ``web`` (allow-listed); a test module's ``overrides`` changes more."""
    values: dict[str, Any] = {
        "fetch_allow_hosts": ["127.0.0.1"],
        "searxng_url": web.base,
        "tool_confirm_timeout_s": 10.0,
        "mcp_refresh_s": 0,
    }
    return make_settings(**{**values, **overrides})


@pytest.fixture
async def admin(client: Client) -> dict[str, Any]:
    """The first account, so an admin; ``client`` is signed in as it."""
    return await signup(client, "admin@example.com")


@pytest.fixture
async def conversation(client: Client, admin: dict[str, Any]) -> str:
    response = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    assert response.status_code == 201
    conv_id: str = response.json()["id"]
    return conv_id
