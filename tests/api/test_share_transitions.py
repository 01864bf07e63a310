"""The isolation sweep's shared-object transitions: a second user's access to an
assistant and a project follows every change at once (no cached permissions):
not shared, shared, share revoked, removed from the group, group deleted,
assistant deleted while a chat is open, project-only memory asked for from
outside the project."""

from __future__ import annotations

from typing import Any

from apihelpers import Client, make_client, parse_sse, signup


async def _turn(client: Client, conv: str, text: str = "hi") -> int:
    sent = await client.post(f"/api/conversations/{conv}/messages", json={"content": text})
    if sent.status_code == 200:
        assert "done" in dict(parse_sse(sent.text)), sent.text
    return sent.status_code


async def _can_use(bob: Client, aid: str) -> bool:
    """Every read path of a chat-level user agrees: start, header, gallery, /v1 list."""
    started = await bob.post(f"/api/assistants/{aid}/chats", json={})
    listed = any(g["id"] == aid for g in (await bob.get("/api/assistant-gallery")).json()["items"])
    assert (started.status_code == 201) == listed, (started.status_code, listed)
    return listed


async def test_assistant_access_follows_every_transition_at_once(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    made = await client.post(
        "/api/assistants", json={"config": {"name": "Vault", "instructions": "secret"}}
    )
    aid = made.json()["id"]
    async with make_client(app) as bob:
        bob_user = await signup(bob, "bob@example.com")
        # not shared
        assert not await _can_use(bob, aid)
        # shared with bob directly, then revoked
        share = await client.post(
            f"/api/assistants/{aid}/shares", json={"kind": "user", "email": "bob@example.com"}
        )
        assert await _can_use(bob, aid)
        conv = (await bob.post(f"/api/assistants/{aid}/chats", json={})).json()["conversation_id"]
        assert await _turn(bob, conv) == 200
        await client.delete(f"/api/assistants/{aid}/shares/{share.json()['id']}")
        assert not await _can_use(bob, aid)
        assert await _turn(bob, conv) == 404
        # shared with a group bob is in; bob removed from it
        group = (await client.post("/api/admin/groups", json={"name": "g"})).json()["id"]
        await client.put(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        await client.post(
            f"/api/assistants/{aid}/shares", json={"kind": "group", "group_id": group}
        )
        assert await _can_use(bob, aid) and await _turn(bob, conv) == 200
        await client.delete(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        assert not await _can_use(bob, aid) and await _turn(bob, conv) == 404
        # back in the group; the group deleted
        await client.put(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        assert await _can_use(bob, aid)
        assert (await client.delete(f"/api/admin/groups/{group}")).status_code == 204
        assert not await _can_use(bob, aid) and await _turn(bob, conv) == 404
        # shared with everyone; the assistant deleted while bob's chat is open
        await client.post(f"/api/assistants/{aid}/shares", json={"kind": "everyone"})
        assert await _can_use(bob, aid) and await _turn(bob, conv) == 200
        assert (await client.delete(f"/api/assistants/{aid}")).status_code == 204
        assert await _turn(bob, conv) == 404
        assert (await bob.get(f"/api/conversations/{conv}")).status_code == 200  # history stays


async def test_project_access_follows_membership_and_its_memory_stays_inside(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    project = (
        await client.post("/api/projects", json={"name": "Heist", "memory": "project"})
    ).json()["id"]
    inside = (await client.post(f"/api/projects/{project}/chats", json={})).json()[
        "conversation_id"
    ]
    saved = await client.post(
        f"/api/conversations/{inside}/messages",
        json={"content": "Remember that the vault word is pelican"},
    )
    assert saved.status_code == 200
    async with make_client(app) as bob:
        bob_user = await signup(bob, "bob@example.com")
        assert (await bob.get(f"/api/projects/{project}")).status_code == 404
        group = (await client.post("/api/admin/groups", json={"name": "g"})).json()["id"]
        await client.put(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        member = await client.post(
            f"/api/projects/{project}/members", json={"group_id": group, "role": "viewer"}
        )
        assert member.status_code == 201
        chats = (await bob.get(f"/api/projects/{project}/chats")).json()["items"]
        assert [c["id"] for c in chats] == [inside]
        read = await bob.get(f"/api/projects/{project}/chats/{inside}")
        assert read.status_code == 200 and "pelican" in read.text
        # a viewer cannot start chats; the transcript is never bob's to write in
        assert (await bob.post(f"/api/projects/{project}/chats", json={})).status_code == 403
        assert (
            await bob.post(f"/api/conversations/{inside}/messages", json={"content": "x"})
        ).status_code == 404
        await client.delete(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        assert (await bob.get(f"/api/projects/{project}/chats/{inside}")).status_code == 404
        assert (await bob.get("/api/projects")).json()["items"] == []
    # the project-only memory, asked for from outside the project
    outside = (await client.post("/api/conversations", json={})).json()["id"]
    asked = await client.post(
        f"/api/conversations/{outside}/messages", json={"content": "what is my vault word?"}
    )
    sources = dict(parse_sse(asked.text))["done"]["message"]["sources"]
    assert not [s for s in sources if s["kind"] == "memory"], sources
    again = await client.post(
        f"/api/conversations/{inside}/messages", json={"content": "what is my vault word?"}
    )
    sources = dict(parse_sse(again.text))["done"]["message"]["sources"]
    assert [s["title"] for s in sources if s["kind"] == "memory"], sources
