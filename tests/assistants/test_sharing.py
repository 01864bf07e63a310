"""Sharing assistants: roles, groups, everyone, links, transfer, the gallery, the
admin's policy, and what a shared chat never gives away (files, instructions)."""

from __future__ import annotations

from typing import Any

from ashelpers import ask, create, ready_file, start

from apihelpers import Client, last_turn_request, make_client, signup
from parley.providers.scripted import ScriptedModel


async def _group(admin: Client, name: str, *members: str) -> str:
    made = await admin.post("/api/admin/groups", json={"name": name})
    assert made.status_code == 201, made.text
    for user_id in members:
        added = await admin.put(f"/api/admin/groups/{made.json()['id']}/members/{user_id}")
        assert added.status_code == 204, added.text
    return str(made.json()["id"])


async def _share(owner: Client, aid: str, **body: Any) -> dict[str, Any]:
    made = await owner.post(f"/api/assistants/{aid}/shares", json=body)
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


async def test_a_group_share_gives_chat_and_retrieval_but_not_files_or_settings(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    pdf = await ready_file(client, "gold.txt", b"The gold is buried under the old oak tree.")
    made = await create(client, file_ids=[pdf], starters=["Where is the gold?"])
    aid = made["id"]
    async with make_client(app) as bob:
        bob_user = await signup(bob, "bob@example.com")
        assert (await bob.get(f"/api/assistants/{aid}")).status_code == 404
        assert (await bob.post(f"/api/assistants/{aid}/chats", json={})).status_code == 404

        crew = await _group(client, "crew", bob_user["id"])
        await _share(client, aid, kind="group", group_id=crew, role="chat")

        gallery = (await bob.get("/api/assistant-gallery")).json()["items"]
        assert [(g["id"], g["role"], g["name"]) for g in gallery] == [(aid, "chat", "Pirate")]
        conv = await start(bob, aid)
        header = (await bob.get(f"/api/conversations/{conv}/assistant")).json()
        assert header["starters"] == ["Where is the gold?"] and header["name"] == "Pirate"
        answer = await ask(bob, conv, "Where is the gold?")
        cited = [s for s in answer["sources"] if s["kind"] == "file"]
        assert [s["file_id"] for s in cited] == [pdf]
        assert "oak tree" in str(last_turn_request(scripted).messages[0].content)
        # ...but the file and the settings stay the owner's
        assert (await bob.get(f"/api/files/{pdf}/content")).status_code == 404
        assert (await bob.get(f"/api/files/{pdf}")).status_code == 404
        assert (await bob.get("/api/files")).json()["items"] == []
        settings = await bob.get(f"/api/assistants/{aid}")
        assert settings.status_code == 403 and "settings" in settings.json()["detail"]
        assert (await bob.get(f"/api/assistants/{aid}/versions")).status_code == 403
        assert (await bob.get(f"/api/assistants/{aid}/export")).status_code == 403
        assert (await bob.post(f"/api/assistants/{aid}/duplicate")).status_code == 403
        assert "instructions" not in header and "Talk like a pirate" not in str(header)
        # the assistant's model works through it although bob never picked it
        assert answer["status"] == "complete"

        # removed from the group: access ends at once, mid-chat
        gone = await client.delete(f"/api/admin/groups/{crew}/members/{bob_user['id']}")
        assert gone.status_code == 204
        again = await bob.post(f"/api/conversations/{conv}/messages", json={"content": "And?"})
        assert again.status_code == 404, again.text
        assert (await bob.get("/api/assistant-gallery")).json()["items"] == []


async def test_view_and_edit_roles_and_the_link(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    aid = (await create(client, instructions="Say arr."))["id"]
    async with make_client(app) as bob, make_client(app) as carol:
        await signup(bob, "bob@example.com")
        await signup(carol, "carol@example.com")
        share = await _share(client, aid, kind="user", email="bob@example.com", role="view")
        got = (await bob.get(f"/api/assistants/{aid}")).json()
        assert got["role"] == "view" and got["config"]["instructions"] == "Say arr."
        refused = await bob.post(
            f"/api/assistants/{aid}/versions", json={"config": {"name": "Mine now"}}
        )
        assert refused.status_code == 403
        copy = await bob.post(f"/api/assistants/{aid}/duplicate")
        assert copy.status_code == 201 and copy.json()["role"] == "owner"
        assert copy.json()["config"]["name"] == "Pirate (copy)"

        changed = await client.patch(
            f"/api/assistants/{aid}/shares/{share['id']}", json={"role": "edit"}
        )
        assert changed.status_code == 204
        saved = await bob.post(
            f"/api/assistants/{aid}/versions",
            json={"config": {"name": "Pirate", "instructions": "Say ahoy."}},
        )
        assert saved.status_code == 201, saved.text
        # an editor cannot share, delete or rename the slug
        assert (
            await bob.post(f"/api/assistants/{aid}/shares", json={"kind": "everyone"})
        ).status_code == 403
        assert (await bob.delete(f"/api/assistants/{aid}")).status_code == 403

        # a link: whoever opens it gets its role, until it is revoked
        link = await _share(client, aid, kind="link", role="chat")
        assert link["token"]
        assert (await carol.post(f"/api/assistants/{aid}/chats", json={})).status_code == 404
        opened = await carol.post("/api/assistant-links", json={"token": link["token"]})
        assert opened.status_code == 200 and opened.json()["assistant_id"] == aid
        conv = await start(carol, aid)
        revoked = await client.delete(f"/api/assistants/{aid}/shares/{link['id']}")
        assert revoked.status_code == 204
        ended = await carol.post(f"/api/conversations/{conv}/messages", json={"content": "hi"})
        assert ended.status_code == 404
        again = await carol.post("/api/assistant-links", json={"token": link["token"]})
        assert again.status_code == 404


async def test_everyone_share_transfer_and_the_featured_gallery(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    first = (await create(client, name="Zebra helper", description="stripes"))["id"]
    second = (await create(client, name="Apple helper", description="fruit"))["id"]
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        await _share(client, first, kind="everyone", role="chat")
        await _share(client, second, kind="everyone", role="chat")
        names = [g["name"] for g in (await bob.get("/api/assistant-gallery")).json()["items"]]
        assert names == ["Apple helper", "Zebra helper"]
        featured = await client.put(
            f"/api/admin/assistants/{first}/featured", json={"featured": True}
        )
        assert featured.status_code == 200
        items = (await bob.get("/api/assistant-gallery")).json()["items"]
        assert [(g["name"], g["featured"]) for g in items] == [
            ("Zebra helper", True),
            ("Apple helper", False),
        ]
        found = (await bob.get("/api/assistant-gallery", params={"q": "FRUIT"})).json()["items"]
        assert [g["id"] for g in found] == [second]
        # bob is no admin
        assert (
            await bob.put(f"/api/admin/assistants/{first}/featured", json={"featured": False})
        ).status_code == 403

        moved = await client.post(
            f"/api/assistants/{second}/owner", json={"email": "bob@example.com"}
        )
        assert moved.status_code == 204
        assert (await bob.get(f"/api/assistants/{second}")).json()["role"] == "owner"
        assert (await client.get(f"/api/assistants/{second}")).json()["role"] == "edit"
        assert (await client.delete(f"/api/assistants/{second}")).status_code == 403


async def test_the_admin_decides_who_may_create_and_share(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    async with make_client(app) as bob:
        bob_user = await signup(bob, "bob@example.com")
        makers = await _group(client, "makers")
        policy = await client.put(
            "/api/admin/assistant-policy", json={"creators": [makers], "sharers": [makers]}
        )
        assert policy.status_code == 200, policy.text
        refused = await bob.post("/api/assistants", json={"config": {"name": "Nope"}})
        assert refused.status_code == 403 and refused.json()["code"] == "may_not_create"
        await client.put(f"/api/admin/groups/{makers}/members/{bob_user['id']}")
        made = await bob.post("/api/assistants", json={"config": {"name": "Yes"}})
        assert made.status_code == 201
        shared = await bob.post(
            f"/api/assistants/{made.json()['id']}/shares", json={"kind": "everyone"}
        )
        assert shared.status_code == 201
        await client.put("/api/admin/assistant-policy", json={"creators": None, "sharers": []})
        nobody = await bob.post(
            f"/api/assistants/{made.json()['id']}/shares", json={"kind": "link"}
        )
        assert nobody.status_code == 403 and nobody.json()["code"] == "may_not_share"
        # admins always may
        assert (await create(client))["id"]


async def test_an_assistant_exports_and_imports(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    pdf = await ready_file(client, "gold.txt", b"The gold is buried under the old oak tree.")
    aid = (
        await create(
            client, file_ids=[pdf], starters=["Ahoy"], tools=["calculator"], slug="pirate-x"
        )
    )["id"]
    exported = await client.get(f"/api/assistants/{aid}/export")
    assert exported.status_code == 200
    document = exported.json()
    assert document["parley"] == "assistant" and document["files"] == ["gold.txt"]
    assert document["config"]["file_ids"] == []
    document["config"]["tools"] = ["calculator", "teleporter"]
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        imported = await bob.post("/api/assistants/import", json={"document": document})
        assert imported.status_code == 201, imported.text
        body = imported.json()
        assert body["dropped"] == ["tool teleporter"] and body["files"] == ["gold.txt"]
        assert body["assistant"]["slug"] == "pirate"  # pirate-x is taken here
        assert body["assistant"]["config"]["starters"] == ["Ahoy"]
        assert body["assistant"]["config"]["tools"] == ["calculator"]
        bad = await bob.post("/api/assistants/import", json={"document": {"parley": "x"}})
        assert bad.status_code == 422
