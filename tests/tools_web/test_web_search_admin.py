"""Admin > Web search over HTTP (both backends): who may see and change it, what a
save refuses, that the key never comes back, the Test button against a local
SearxNG-shaped server, a save taking effect without a restart (on this worker and
another one), and the composer's per-message globe (``web_search`` on a send)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from webtools_helpers import Client, LocalWeb, Page, make_client, parse_sse, signup

from apihelpers import MakeApp
from parley.config import Settings
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel

URL = "/api/admin/web-search"
BRAVE_KEY = "brave-secret-key-0123456789abcd"


@pytest.fixture
def overrides() -> dict[str, Any]:
    """The environment configures no search: the admin turns it on in the web app."""
    return {"searxng_url": None}


async def tools_now(client: Client) -> tuple[set[str], dict[str, str]]:
    body = (await client.get("/api/tools")).json()
    return {t["name"] for t in body["items"]}, {t["name"]: t["reason"] for t in body["unavailable"]}


async def test_not_set_up_is_said_and_admin_sees_the_environment(
    client: Client, admin: dict[str, Any]
) -> None:
    offered, withheld = await tools_now(client)
    assert "web_search" not in offered and "fetch_page" in offered
    assert "Admin > Web search" in withheld["web_search"]
    body = (await client.get(URL)).json()
    assert body["provider"] == "none" and body["source"] == "environment"
    assert body["active"] is False and body["key_set"] is False
    assert body["ddgs_available"] is (importlib.util.find_spec("ddgs") is not None)


async def test_only_admins_reach_the_settings(app: Any, client: Client, web: LocalWeb) -> None:
    anonymous = [await client.get(URL), await client.post(f"{URL}/test", json={"provider": "none"})]
    assert [r.status_code for r in anonymous] == [401, 401]
    await signup(client, "admin@example.com")
    async with make_client(app) as member:
        await signup(member, "member@example.com")
        form = {"provider": "searxng", "url": web.base}
        answers = [
            await member.get(URL),
            await member.put(URL, json=form),
            await member.post(f"{URL}/test", json=form),
            await member.delete(URL),
        ]
        assert [r.status_code for r in answers] == [403, 403, 403, 403]
        assert web.hits("/search") == []  # the member's test never ran
        # A member still learns, through the tools list, that search is not set up.
        offered, withheld = await tools_now(member)
        assert "web_search" not in offered and "web_search" in withheld


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"provider": "searxng"}, "search_url_missing"),
        ({"provider": "searxng", "url": "ftp://search.example"}, "url_blocked"),
        ({"provider": "searxng", "url": "not a url"}, "url_blocked"),
        ({"provider": "brave"}, "search_key_missing"),
        ({"provider": "tavily", "api_key": "   "}, "search_key_missing"),
    ],
)
async def test_a_save_refuses_what_cannot_work(
    client: Client, admin: dict[str, Any], form: dict[str, Any], code: str
) -> None:
    response = await client.put(URL, json=form)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert (await client.get(URL)).json()["source"] == "environment"  # nothing was stored


async def test_unknown_service_and_oversized_fields_are_refused(
    client: Client, admin: dict[str, Any]
) -> None:
    assert (await client.put(URL, json={"provider": "bing"})).status_code == 422
    long = {"provider": "brave", "api_key": "k" * 501}
    assert (await client.put(URL, json=long)).status_code == 422


async def test_test_button_runs_a_real_query(
    client: Client, admin: dict[str, Any], web: LocalWeb
) -> None:
    found = (await client.post(f"{URL}/test", json={"provider": "searxng", "url": web.base})).json()
    assert found == {
        "ok": True,
        "count": 2,  # the javascript: result is dropped
        "titles": ["Otters hold hands", "Otter rafts"],
        "error": None,
    }
    assert web.hits("/search")[-1].query["q"] == ["Parley web search test"]
    # Testing saves nothing.
    assert (await client.get(URL)).json()["provider"] == "none"

    web.route("/broken/search", lambda seen: Page("boom", 500, "text/plain"))
    broken = await client.post(
        f"{URL}/test", json={"provider": "searxng", "url": f"{web.base}/broken"}
    )
    assert broken.json()["ok"] is False and "HTTP 500" in broken.json()["error"]

    web.route("/html/search", lambda seen: Page("<html>login</html>"))
    html = await client.post(f"{URL}/test", json={"provider": "searxng", "url": f"{web.base}/html"})
    assert "did not answer JSON" in html.json()["error"]

    # An admin-set address may be internal, but never a cloud metadata service.
    metadata = await client.post(
        f"{URL}/test", json={"provider": "searxng", "url": "http://169.254.169.254/"}
    )
    assert metadata.json()["ok"] is False and "metadata" in metadata.json()["error"]

    dead = await client.post(
        f"{URL}/test", json={"provider": "searxng", "url": "http://127.0.0.1:9/"}
    )
    assert dead.json()["ok"] is False and "unreachable" in dead.json()["error"]


async def test_save_applies_without_restart_on_every_worker(
    client: Client, admin: dict[str, Any], web: LocalWeb, make_app: MakeApp
) -> None:
    saved = await client.put(URL, json={"provider": "searxng", "url": web.base + "/"})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["provider"] == "searxng" and body["source"] == "database"
    assert body["url"] == web.base and body["active"] is True and body["updated_at"]
    offered, withheld = await tools_now(client)
    assert "web_search" in offered and "web_search" not in withheld

    async with make_app() as other, make_client(other) as elsewhere:
        elsewhere.cookies = client.cookies  # the same session on a second worker
        assert "web_search" in (await tools_now(elsewhere))[0]
        # Off on this worker: the other follows at its next look at the tools.
        off = await client.put(URL, json={"provider": "none"})
        assert off.json() | {"updated_at": None} == body | {
            "provider": "none",
            "url": None,
            "active": False,
            "updated_at": None,
        }
        assert "web_search" not in (await tools_now(elsewhere))[0]

    # Reset: the environment's value (no search) applies again.
    reset = (await client.delete(URL)).json()
    assert reset["source"] == "environment" and reset["updated_at"] is None


async def test_the_key_is_write_only(client: Client, admin: dict[str, Any]) -> None:
    saved = await client.put(URL, json={"provider": "brave", "api_key": BRAVE_KEY})
    assert saved.status_code == 200, saved.text
    assert saved.json()["key_set"] is True and saved.json()["key_hint"] == "…abcd"
    for response in (saved, await client.get(URL)):
        assert BRAVE_KEY not in response.text and BRAVE_KEY[:12] not in response.text
    # An empty key keeps the stored one for the same service...
    kept = await client.put(URL, json={"provider": "brave", "api_key": ""})
    assert kept.status_code == 200 and kept.json()["key_hint"] == "…abcd"
    # ...but never carries it to another service.
    moved = await client.put(URL, json={"provider": "tavily"})
    assert moved.status_code == 422 and moved.json()["code"] == "search_key_missing"
    assert BRAVE_KEY not in moved.text


@pytest.fixture
async def conversation_with_calculator(client: Client, admin: dict[str, Any]) -> str:
    made = await client.post(
        "/api/conversations", json={"model": "scripted/scripted", "tools": ["calculator"]}
    )
    assert made.status_code == 201, made.text
    conv_id: str = made.json()["id"]
    return conv_id


async def _offered(client: Client, scripted: ScriptedModel, conv: str, **extra: Any) -> list[str]:
    before = len(scripted.requests)
    response = await client.post(
        f"/api/conversations/{conv}/messages", json={"content": "hi", **extra}
    )
    assert dict(parse_sse(response.text))["done"]["message"]["status"] == "complete"
    return sorted(spec.name for spec in scripted.requests[before].tools)


async def test_the_globe_offers_search_for_one_message(
    client: Client, scripted: ScriptedModel, web: LocalWeb, conversation_with_calculator: str
) -> None:
    conv = conversation_with_calculator

    def asked() -> bool:
        system = scripted.requests[-1].messages[0]
        return system.role == "system" and "turned on web search" in system.content

    # Not set up: the globe cannot add a tool that cannot work (nor ask for a search).
    assert await _offered(client, scripted, conv, web_search=True) == ["calculator"]
    assert not asked()
    await client.put(URL, json={"provider": "searxng", "url": web.base})
    assert await _offered(client, scripted, conv, web_search=True) == ["calculator", "web_search"]
    assert asked()  # the model is told to search for this message
    assert await _offered(client, scripted, conv) == ["calculator"]  # per message, not sticky
    assert not asked()
    assert await _offered(client, scripted, conv, web_search=False) == ["calculator"]
    # With the default tools, the globe off leaves search out.
    default = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    assert "web_search" in await _offered(client, scripted, default["id"])
    assert "web_search" not in await _offered(client, scripted, default["id"], web_search=False)


async def test_the_globe_on_a_model_without_tool_use_answers_without_pretending(
    client: Client, scripted: ScriptedModel, web: LocalWeb, conversation_with_calculator: str
) -> None:
    """The web app greys the globe out for such a model; a client that sends
    ``web_search: true`` anyway gets an ordinary answer: no tools, no "search the web"
    instruction the model could only pretend to follow, no web sources."""
    await client.put(URL, json={"provider": "searxng", "url": web.base})
    scripted.info = dataclasses.replace(scripted.info, tool_use=False)
    listed = {m["ref"]: m for m in (await client.get("/api/models")).json()["items"]}
    assert listed["scripted/scripted"]["tool_use"] is False  # what the globe reads
    scripted.enqueue("Otters hold hands while they sleep.")
    response = await client.post(
        f"/api/conversations/{conversation_with_calculator}/messages",
        json={"content": "Why do otters hold hands?", "web_search": True},
    )
    message = dict(parse_sse(response.text))["done"]["message"]
    assert message["status"] == "complete"
    assert message["content"] == "Otters hold hands while they sleep."
    assert not message["steps"] and not message["sources"]
    request = scripted.requests[-1]
    assert request.tools == [] or not request.tools
    assert not any("turned on web search" in str(m.content) for m in request.messages)
    assert web.hits("/search") == []


async def test_a_searched_answer_numbers_its_web_sources(
    client: Client, scripted: ScriptedModel, web: LocalWeb, conversation_with_calculator: str
) -> None:
    await client.put(URL, json={"provider": "searxng", "url": web.base})
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("s1", "web_search", json.dumps({"query": "otters"}))]),
        Reply(tool_calls=[ToolCall("s2", "web_search", json.dumps({"query": "otter rafts"}))]),
        lambda request: "Otters hold hands [1]; a group is a raft [2].",
    )
    response = await client.post(
        f"/api/conversations/{conversation_with_calculator}/messages",
        json={"content": "Why do otters hold hands?", "web_search": True},
    )
    message = dict(parse_sse(response.text))["done"]["message"]
    assert message["content"] == "Otters hold hands [1]; a group is a raft [2]."
    # Each link has one number for the whole turn, also when a second search finds it again.
    assert [(s["ref"], s["url"]) for s in message["sources"]] == [
        (1, "https://example.org/otters"),
        (2, "https://example.net/rafts"),
    ]
    second = message["steps"][1]["output"]
    assert "[1] Otters hold hands" in second and "[2] Otter rafts" in second
    assert [h.query["q"] for h in web.hits("/search")] == [["otters"], ["otter rafts"]]
    stored = (await client.get(f"/api/conversations/{conversation_with_calculator}")).json()
    assert stored["messages"][-1]["sources"] == message["sources"]


@pytest.fixture
async def env_brave(make_app: MakeApp, settings: Settings) -> AsyncIterator[Any]:
    async with make_app(settings.model_copy(update={"brave_api_key": BRAVE_KEY})) as app:
        yield app


async def test_environment_key_is_the_default_and_hidden_too(env_brave: Any) -> None:
    async with make_client(env_brave) as client:
        await signup(client, "admin@example.com")
        body = (await client.get(URL)).json()
        assert body["provider"] == "brave" and body["source"] == "environment"
        assert body["key_set"] is True and body["key_hint"] == "…abcd"
        assert BRAVE_KEY not in json.dumps(body)


async def test_a_broken_environment_setting_is_explained_to_the_admin(
    make_app: MakeApp, settings: Settings
) -> None:
    """Brave chosen in the environment without its key: the server still starts, search
    is withheld, and the admin page names the missing setting."""
    async with (
        make_app(settings.model_copy(update={"search_provider": "brave"})) as app,
        make_client(app) as client,
    ):
        await signup(client, "admin@example.com")
        body = (await client.get(URL)).json()
        assert body["provider"] == "brave" and body["active"] is False
        assert "PARLEY_BRAVE_API_KEY" in body["error"]
        offered, withheld = await tools_now(client)
        assert "web_search" not in offered and "web_search" in withheld
        # Saving a working choice in the page fixes it without a restart.
        saved = await client.put(URL, json={"provider": "brave", "api_key": BRAVE_KEY})
        assert saved.json()["active"] is True and saved.json()["error"] is None
