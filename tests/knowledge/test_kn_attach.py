"""Attaching collections and library files to a conversation ("Add from knowledge",
``#`` in the composer), through the HTTP API on SQLite and PostgreSQL: listed,
searched for every turn with citations, detached, and never another user's."""

from __future__ import annotations

from typing import Any

from knhelpers import Upload, wait_ready

from apihelpers import Client, make_client, parse_sse, signup
from parley.providers.scripted import ScriptedModel


async def _conversation(client: Client) -> str:
    response = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    return str(response.json()["id"])


async def _sources(client: Client, conv: str, question: str) -> list[dict[str, Any]]:
    response = await client.post(f"/api/conversations/{conv}/messages", json={"content": question})
    events = dict(parse_sse(response.text))
    return list(events["done"]["message"]["sources"] or [])


async def _knowledge(client: Client, conv: str) -> dict[str, list[str]]:
    body = (await client.get(f"/api/conversations/{conv}/knowledge")).json()
    return {key: [item["id"] for item in body[key]] for key in body}


async def test_attach_list_and_detach_collections_and_library_files(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    collection = (await client.post("/api/collections", json={"name": "Lighthouses"})).json()
    in_collection = (
        await upload(
            "keepers.md",
            b"# Keepers\n\nThe Skerryvore keeper logs the fog horn at 04:10.\n",
            collection_id=collection["id"],
        )
    ).json()
    library = (await upload("tides.txt", b"Spring tides at Oban peak near 4.1 metres.\n")).json()
    await wait_ready(client, in_collection["id"])
    await wait_ready(client, library["id"])
    conv = await _conversation(client)
    assert await _knowledge(client, conv) == {"files": [], "collections": [], "library_files": []}

    for path in (f"collections/{collection['id']}", f"files/{library['id']}"):
        for _ in range(2):  # attaching twice is the same as once
            response = await client.put(f"/api/conversations/{conv}/{path}")
            assert response.status_code == 204, response.text
    assert await _knowledge(client, conv) == {
        "files": [],
        "collections": [collection["id"]],
        "library_files": [library["id"]],
    }

    # every turn draws on both, with citations, without a tool call
    scripted.enqueue("The horn is logged at 04:10 [1] and tides reach 4.1 m [2].")
    sources = await _sources(client, conv, "When is the fog horn logged, and how high are tides?")
    assert {s["filename"] for s in sources if s.get("ref")} == {"keepers.md", "tides.txt"}
    # the library file stays in the library: it is not made an attachment of the chat
    assert (await client.get(f"/api/files/{library['id']}")).json()["conversation_id"] is None

    for path in (f"collections/{collection['id']}", f"files/{library['id']}"):
        assert (await client.delete(f"/api/conversations/{conv}/{path}")).status_code == 204
    assert await _knowledge(client, conv) == {"files": [], "collections": [], "library_files": []}
    scripted.enqueue("I have no files for that.")
    assert await _sources(client, conv, "When is the fog horn logged?") == []

    # deleting the chat keeps the library file; deleting the file drops its links
    await client.put(f"/api/conversations/{conv}/files/{library['id']}")
    other = await _conversation(client)
    await client.put(f"/api/conversations/{other}/files/{library['id']}")
    assert (await client.delete(f"/api/conversations/{conv}")).status_code == 204
    assert (await client.get(f"/api/files/{library['id']}")).status_code == 200
    assert (await client.delete(f"/api/files/{library['id']}")).status_code == 204
    assert (await _knowledge(client, other))["library_files"] == []


async def test_another_users_collection_or_file_cannot_be_attached(
    client: Client, app: Any, user: dict[str, Any], upload: Upload
) -> None:
    collection = (await client.post("/api/collections", json={"name": "Private"})).json()
    file = (await upload("diary.txt", b"The safe combination is 31-07-88.\n")).json()
    await wait_ready(client, file["id"])
    alice_conv = await _conversation(client)
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        bob_conv = await _conversation(bob)
        for path in (f"collections/{collection['id']}", f"files/{file['id']}"):
            for method in ("PUT", "DELETE"):
                mine = await bob.request(method, f"/api/conversations/{bob_conv}/{path}")
                assert mine.status_code == 404, (method, path)
                theirs = await bob.request(method, f"/api/conversations/{alice_conv}/{path}")
                assert theirs.status_code == 404, (method, path)
        assert (await bob.get(f"/api/conversations/{alice_conv}/knowledge")).status_code == 404
        knowledge = (await bob.get(f"/api/conversations/{bob_conv}/knowledge")).json()
        assert knowledge == {"files": [], "collections": [], "library_files": []}
        own = (await bob.post("/api/collections", json={"name": "Bob's"})).json()
        # bob's own collection cannot go onto alice's conversation either
        put = await bob.put(f"/api/conversations/{alice_conv}/collections/{own['id']}")
        assert put.status_code == 404
    assert await _knowledge(client, alice_conv) == {
        "files": [],
        "collections": [],
        "library_files": [],
    }
