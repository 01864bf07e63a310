"""GET /api/tools and the per-conversation tool choice (PATCH tools)."""

from __future__ import annotations

from typing import Any

from webtools_helpers import Client, parse_sse

from parley.providers.scripted import ScriptedModel


async def test_tools_are_listed_with_their_source(client: Client, admin: dict[str, Any]) -> None:
    response = await client.get("/api/tools")
    assert response.status_code == 200
    body = response.json()
    tools = {t["name"]: t for t in body["items"]}
    assert {"calculator", "current_datetime", "fetch_page", "web_search"} <= set(tools)
    assert tools["calculator"]["source"] == "builtin"
    assert tools["fetch_page"]["source"] == tools["web_search"]["source"] == "web"
    assert tools["fetch_page"]["side_effecting"] is False
    assert "url" in tools["fetch_page"]["parameters"]["properties"]
    assert body["confirm_timeout_s"] == 10.0


async def test_tools_list_needs_a_signed_in_user(client: Client) -> None:
    assert (await client.get("/api/tools")).status_code == 401


async def test_conversation_tool_choice_drives_what_the_model_is_offered(
    client: Client, conversation: str, scripted: ScriptedModel
) -> None:
    async def offered() -> list[str]:
        before = len(scripted.requests)
        response = await client.post(
            f"/api/conversations/{conversation}/messages", json={"content": "hi"}
        )
        assert dict(parse_sse(response.text))["done"]["message"]["status"] == "complete"
        return sorted(spec.name for spec in scripted.requests[before].tools)

    default = await offered()
    assert {"calculator", "fetch_page", "web_search"} <= set(default)

    patched = await client.patch(
        f"/api/conversations/{conversation}", json={"tools": ["calculator", "fetch_page"]}
    )
    assert patched.status_code == 200 and patched.json()["tools"] == ["calculator", "fetch_page"]
    assert await offered() == ["calculator", "fetch_page"]

    none = await client.patch(f"/api/conversations/{conversation}", json={"tools": []})
    assert none.json()["tools"] == []
    assert await offered() == []
    view = (await client.get(f"/api/conversations/{conversation}")).json()
    assert view["conversation"]["tools"] == []

    back = await client.patch(f"/api/conversations/{conversation}", json={"tools": None})
    assert back.json()["tools"] is None
    assert await offered() == default

    # Other fields do not touch the choice.
    await client.patch(f"/api/conversations/{conversation}", json={"tools": ["calculator"]})
    renamed = await client.patch(f"/api/conversations/{conversation}", json={"title": "x"})
    assert renamed.json()["tools"] == ["calculator"]


async def test_unknown_tool_names_are_refused(client: Client, conversation: str) -> None:
    response = await client.patch(
        f"/api/conversations/{conversation}", json={"tools": ["calculator", "rm_rf"]}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_tool"
    assert "rm_rf" in response.json()["detail"]
    view = (await client.get(f"/api/conversations/{conversation}")).json()
    assert view["conversation"]["tools"] is None
