"""The memory page's API: list (search, pages), add, edit, delete, delete all,
approve/reject, and another user's memories staying out of reach."""

from __future__ import annotations

from typing import Any

from apihelpers import Client, make_client, signup
from parley.memory.feature import MemoryFeature
from parley.memory.store import MemoryStore
from parley.storage.db import Database


async def test_list_search_and_paginate(client: Client, user: dict[str, Any]) -> None:
    facts = [
        "I drink oolong tea",
        "My cat is Tom",
        "I cycle to work",
        "I speak Basque",
        "I own a kayak",
    ]
    for fact in facts:
        created = await client.post("/api/memories", json={"text": fact})
        assert created.status_code == 201 and created.json()["source"] == "explicit"
    await client.post("/api/memories", json={"text": "I live in Lyon"})
    page = (await client.get("/api/memories", params={"limit": 4})).json()
    assert page["items"][0]["text"] == "I live in Lyon."
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = (await client.get("/api/memories", params={"cursor": page["next_cursor"]})).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert {m["id"] for m in page["items"]}.isdisjoint(m["id"] for m in rest["items"])
    found = (await client.get("/api/memories", params={"q": "lyon"})).json()["items"]
    assert [m["text"] for m in found] == ["I live in Lyon."]
    found = (await client.get("/api/memories", params={"q": "TEA oolong"})).json()["items"]
    assert [m["text"] for m in found] == ["I drink oolong tea."]
    assert (await client.get("/api/memories", params={"q": "100%_"})).json()["items"] == []
    assert page["counts"] == {"active": 6}
    bad = await client.get("/api/memories", params={"cursor": "nonsense"})
    assert bad.status_code == 422


async def test_edit_delete_and_delete_all(
    client: Client, user: dict[str, Any], feature: MemoryFeature
) -> None:
    one = (await client.post("/api/memories", json={"text": "I like green tea"})).json()
    two = (await client.post("/api/memories", json={"text": "My cat is Tom"})).json()
    edited = await client.patch(f"/api/memories/{one['id']}", json={"text": "I like black tea"})
    assert edited.status_code == 200 and edited.json()["text"] == "I like black tea."
    recalled = await feature.service.recall(user["id"], "black tea", _scope(), 3)
    assert recalled[0].text == "I like black tea."  # the edit is what recall sees
    assert (
        await client.patch(f"/api/memories/{one['id']}", json={"text": "  "})
    ).status_code == 422
    assert (await client.delete(f"/api/memories/{two['id']}")).status_code == 204
    assert (await client.delete(f"/api/memories/{two['id']}")).status_code == 404
    await client.post("/api/memories", json={"text": "My cat is Tom"})
    assert (await client.delete("/api/memories")).json() == {"deleted": 2}
    assert (await client.get("/api/memories")).json()["items"] == []


async def test_approve_and_reject_only_touch_pending(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    async with app.state.services.require(Database).session() as session:
        pending = await MemoryStore(session, user["id"]).create(
            "I run marathons.", status="pending"
        )
        active = await MemoryStore(session, user["id"]).create("I run a bakery.")
        await session.commit()
    assert (await client.post(f"/api/memories/{active.id}/reject")).status_code == 404
    listed = (await client.get("/api/memories", params={"status": "pending"})).json()
    assert [m["id"] for m in listed["items"]] == [pending.id]
    approved = (await client.post(f"/api/memories/{pending.id}/approve")).json()
    assert approved["status"] == "active"
    assert (await client.get("/api/memories")).json()["counts"] == {"active": 2}


async def test_another_users_memories_are_invisible(
    app: Any, client: Client, user: dict[str, Any], feature: MemoryFeature
) -> None:
    mine = (await client.post("/api/memories", json={"text": "My bank PIN hint is otter"})).json()
    async with make_client(app) as other:
        bob = await signup(other, "bob@example.com")
        assert (await other.get("/api/memories")).json()["items"] == []
        assert (await other.get("/api/memories", params={"q": "otter"})).json()["items"] == []
        assert (await other.delete("/api/memories")).json() == {"deleted": 0}
        for method, suffix in (("PATCH", ""), ("DELETE", ""), ("POST", "/approve")):
            r = await other.request(
                method, f"/api/memories/{mine['id']}{suffix}", json={"text": "hacked"}
            )
            assert r.status_code == 404, (method, suffix)
        assert await feature.service.recall(bob["id"], "bank PIN otter", _scope(), 8) == []
    still = (await client.get("/api/memories")).json()["items"]
    assert [m["text"] for m in still] == ["My bank PIN hint is otter."]


def _scope() -> Any:
    from parley.memory.recall import Scope

    return Scope()
