"""Export, import and account deletion across the core and the features.

A round trip (export, then import into a fresh account) gives the same
conversations (every branch), memories, collections and files; importing again
makes copies with new ids; a JSON export never lets another account claim a
file's bytes; another user's data never appears; deleting an account removes
what the features keep too.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from apihelpers import Client, make_client, parse_sse, signup


async def _chat(client: Client, conversation_id: str, text: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"content": text}
    )
    assert response.status_code == 200, response.text
    events = dict(parse_sse(response.text))
    start: dict[str, Any] = events["start"]
    return start


async def _fill(client: Client) -> dict[str, Any]:
    """An account with settings, a branched chat, a memory, a collection, two files
    and an API key; returns the ids that matter."""
    await client.patch(
        "/api/me",
        json={
            "about_me": "I restore furniture.",
            "response_style": "Short answers.",
            "timezone": "Europe/Paris",
            "preferences": {"theme": "dark"},
        },
    )
    conv = (await client.post("/api/conversations", json={"title": "Oak table"})).json()
    start = await _chat(client, conv["id"], "How do I oil oak?")
    answer = start["assistant_message"]["id"]
    regenerated = await client.post(
        f"/api/conversations/{conv['id']}/messages/{answer}/regenerate", json={}
    )
    assert regenerated.status_code == 200
    # a title of the user's own (an automatic one depends on the model's answer)
    await client.patch(f"/api/conversations/{conv['id']}", json={"title": "Oak table"})
    second = (await client.post("/api/conversations", json={"title": "Second chat"})).json()
    memory = await client.post("/api/memories", json={"text": "Works mostly with oak."})
    assert memory.status_code == 201, memory.text
    collection = (await client.post("/api/collections", json={"name": "Finishes"})).json()
    in_collection = await client.post(
        "/api/files",
        files={"file": ("oils.txt", b"Tung oil and linseed oil cure slowly.", "text/plain")},
        data={"collection_id": collection["id"]},
    )
    assert in_collection.status_code == 201, in_collection.text
    attached = await client.post(
        "/api/files",
        files={"file": ("plan.md", b"# Plan\n\nSand, oil, wax.", "text/markdown")},
        data={"conversation_id": conv["id"]},
    )
    assert attached.status_code == 201, attached.text
    linked = await client.put(f"/api/conversations/{conv['id']}/collections/{collection['id']}")
    assert linked.status_code == 204, linked.text
    library = await client.post(
        "/api/files", files={"file": ("glossary.txt", b"Cure: the oil hardens.", "text/plain")}
    )
    assert library.status_code == 201, library.text
    picked = await client.put(f"/api/conversations/{second['id']}/files/{library.json()['id']}")
    assert picked.status_code == 204, picked.text
    assert (await client.post("/api/keys", json={"name": "laptop"})).status_code == 201
    return {"conversation": conv["id"], "collection": collection["id"]}


async def _snapshot(client: Client) -> dict[str, Any]:
    """What a person sees of their account, without ids."""
    convs = (await client.get("/api/conversations")).json()["items"]
    chats = {}
    for conv in convs:
        detail = (await client.get(f"/api/conversations/{conv['id']}")).json()
        chats[conv["title"]] = [
            (m["role"], m["content"], len(m["siblings"])) for m in detail["messages"]
        ]
    knowledge = {}
    for conv in convs:
        attached = (await client.get(f"/api/conversations/{conv['id']}/knowledge")).json()
        knowledge[conv["title"]] = (
            sorted(f["filename"] for f in attached["files"]),
            sorted(c["name"] for c in attached["collections"]),
            sorted(f["filename"] for f in attached["library_files"]),
        )
    memories = (await client.get("/api/memories")).json()["items"]
    collections = (await client.get("/api/collections")).json()["items"]
    files = (await client.get("/api/files")).json()["items"]
    me = (await client.get("/api/auth/me")).json()["user"]
    return {
        "chats": chats,
        "knowledge": knowledge,
        "memories": sorted(m["text"] for m in memories),
        "collections": sorted((c["name"], c["file_count"]) for c in collections),
        "files": sorted((f["filename"], f["sha256"]) for f in files),
        "settings": (me["about_me"], me["response_style"], me["timezone"], me["preferences"]),
    }


async def test_round_trip_into_a_fresh_account(app: Any, client: Client, user: Any) -> None:
    await _fill(client)
    robot = await client.post(
        "/api/keys",
        json={
            "name": "robot",
            "expires_at": "2099-01-01T00:00:00Z",
            "scopes": {"endpoints": ["chat"]},
        },
    )
    assert robot.status_code == 201, robot.text
    before = await _snapshot(client)
    export = await client.get("/api/me/export")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    document = export.json()
    assert document["format"] == "parley-export-2" and document["files_included"] is False
    (oak,) = [c for c in document["conversations"] if c["title"] == "Oak table"]
    assert len(oak["messages"]) == 3  # the question and both answers (two branches)
    keys = {k["name"]: k for k in document["api_keys"]}
    assert "laptop" in keys and "key_hash" not in str(document)
    assert keys["laptop"]["expires_at"] is None and keys["laptop"]["scopes"] is None
    assert keys["robot"]["expires_at"] == "2099-01-01T00:00:00Z"
    assert keys["robot"]["scopes"]["endpoints"] == ["chat"]
    assert "password_hash" not in str(document)
    # the usage ledger: each answer's model call, with what it cost, in its chat
    usage = document["usage"]
    assert usage and {u["endpoint"] for u in usage} >= {"chat"}
    chats = {c["id"] for c in document["conversations"]}
    assert {u["conversation_id"] for u in usage if u["endpoint"] == "chat"} <= chats
    assert all(u["outcome"] and u["model"] and u["at"] for u in usage)
    memory_part = document["features"]["memory"]["memories"]
    assert [m["text"] for m in memory_part] == ["Works mostly with oak."]
    knowledge = document["features"]["knowledge"]
    assert [c["name"] for c in knowledge["collections"]] == ["Finishes"]
    assert sorted(f["filename"] for f in knowledge["files"]) == [
        "glossary.txt",
        "oils.txt",
        "plan.md",
    ]
    assert len(knowledge["conversation_files"]) == 1

    packed = await client.get("/api/me/export", params={"files": "true"})
    assert packed.status_code == 200 and packed.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(packed.content)) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read("parley-export.json"))["files_included"] is True
    assert {f"files/{f['sha256']}" for f in knowledge["files"]} <= names

    async with make_client(app) as other:
        await signup(other, "bea@example.com")
        empty = (await other.get("/api/me/export")).json()  # another user's data never appears
        assert empty["conversations"] == [] and empty["api_keys"] == [] and empty["usage"] == []
        assert empty["features"]["memory"] == {"memories": []}
        assert empty["features"]["knowledge"] == {
            "collections": [],
            "files": [],
            "conversation_collections": [],
            "conversation_files": [],
        }
        imported = await other.post(
            "/api/me/import", content=packed.content, headers={"content-type": "application/zip"}
        )
        assert imported.status_code == 200, imported.text
        report = imported.json()
        assert report["conversations"] == 2 and report["messages"] == 3
        assert report["features"]["memory"] == {"memories": 1}
        assert report["features"]["knowledge"] == {
            "collections": 1,
            "files": 3,
            "files_skipped": 0,
        }
        after = await _snapshot(other)
        assert after == before
        theirs = (await other.get("/api/me/export")).json()
        ours = {c["id"] for c in document["conversations"]}
        assert not ours & {c["id"] for c in theirs["conversations"]}  # new ids
        assert theirs["api_keys"] == []  # keys cannot move
        assert theirs["usage"] == []  # nor what was spent on the other account

        # Importing again (JSON this time) makes copies; nothing collides.
        again = await other.post("/api/me/import", json=document)
        assert again.status_code == 200, again.text
        assert again.json()["features"]["knowledge"]["files"] == 3  # their own bytes now
        titles = [c["title"] for c in (await other.get("/api/conversations")).json()["items"]]
        assert sorted(titles) == ["Oak table", "Oak table", "Second chat", "Second chat"]

    # The first account saw none of it.
    assert await _snapshot(client) == before


async def test_a_json_export_never_claims_another_users_bytes(
    app: Any, client: Client, user: Any
) -> None:
    await _fill(client)
    document = (await client.get("/api/me/export")).json()
    async with make_client(app) as other:
        await signup(other, "bea@example.com")
        report = (await other.post("/api/me/import", json=document)).json()
        assert report["features"]["knowledge"] == {
            "collections": 1,
            "files": 0,
            "files_skipped": 3,
        }
        assert (await other.get("/api/files")).json()["items"] == []
        # the rest of the account came across
        assert report["conversations"] == 2 and report["features"]["memory"]["memories"] == 1


async def test_import_refuses_what_is_not_an_export(client: Client, user: Any) -> None:
    for body in (b"not json", b"[1, 2]", b'{"hello": 1}', b"PK\x03\x04broken"):
        response = await client.post("/api/me/import", content=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "invalid_import"
    looped = {
        "format": "parley-export-2",
        "conversations": [
            {
                "id": "c",
                "messages": [
                    {"id": "a", "parent_id": "b", "role": "user"},
                    {"id": "b", "parent_id": "a", "role": "assistant"},
                ],
            }
        ],
    }
    response = await client.post("/api/me/import", json=looped)
    assert response.status_code == 422 and "loop" in response.json()["detail"]
    orphan = {
        "format": "parley-export-2",
        "conversations": [
            {"id": "c", "messages": [{"id": "a", "parent_id": "elsewhere", "role": "user"}]}
        ],
    }
    assert (await client.post("/api/me/import", json=orphan)).status_code == 422
    assert (await client.get("/api/conversations")).json()["items"] == []  # all or nothing


async def test_deleting_an_account_removes_feature_data(
    app: Any, client: Client, user: Any
) -> None:
    await _fill(client)  # the admin keeps a copy of every blob
    document = (await client.get("/api/me/export", params={"files": "true"})).content
    knowledge = app.state.features["knowledge"]
    async with make_client(app) as other:
        await signup(other, "bea@example.com")
        await other.post("/api/me/import", content=document)
        await other.post(
            "/api/files", files={"file": ("only-hers.txt", b"Nobody else has this.", "text/plain")}
        )
        files = (await other.get("/api/files")).json()["items"]
        hers = next(f["sha256"] for f in files if f["filename"] == "only-hers.txt")
        shared = next(f["sha256"] for f in files if f["filename"] == "oils.txt")
        assert knowledge.blobs.exists(hers)
        wrong = await other.request("DELETE", "/api/me", json={"password": "nope"})
        assert wrong.status_code == 403
        deleted = await other.request("DELETE", "/api/me", json={"password": "correct horse"})
        assert deleted.status_code == 204
    assert not knowledge.blobs.exists(hers)  # no one else had these bytes
    assert knowledge.blobs.exists(shared)  # the admin still does
    assert len((await client.get("/api/files")).json()["items"]) == 3
    users = (await client.get("/api/admin/users")).json()["items"]
    assert [u["email"] for u in users] == ["ada@example.com"]


async def test_an_export_of_the_previous_format_still_imports(client: Client, user: Any) -> None:
    """``parley-export-1`` (before features were exported) had public message objects."""
    stamp = "2025-01-02T03:04:05Z"
    message = {"conversation_id": "c1", "status": "complete", "siblings": ["m1"]}
    document = {
        "format": "parley-export-1",
        "user": {"id": "u", "about_me": "Old notes.", "timezone": "Europe", "preferences": {}},
        "api_keys": [{"id": "k", "name": "old", "prefix": "pk-abc", "created_at": stamp}],
        "conversations": [
            {
                "id": "c1",
                "title": "From before",
                "tools": [],
                "created_at": stamp,
                "updated_at": stamp,
                "messages": [
                    # no created_at here: the branch shown is still the newest leaf's
                    {**message, "id": "m1", "parent_id": None, "role": "user", "content": "Hi"},
                    {
                        **message,
                        "id": "m2",
                        "parent_id": "m1",
                        "role": "assistant",
                        "content": "Hello",
                        "created_at": stamp,
                    },
                ],
            }
        ],
    }
    report = await client.post("/api/me/import", json=document)
    assert report.status_code == 200, report.text
    assert report.json()["settings"] is True and report.json()["features"] == {}
    (conv,) = (await client.get("/api/conversations")).json()["items"]
    assert conv["title"] == "From before" and conv["tools"] == [] and conv["updated_at"] == stamp
    detail = (await client.get(f"/api/conversations/{conv['id']}")).json()
    assert [m["content"] for m in detail["messages"]] == ["Hi", "Hello"]
    me = (await client.get("/api/auth/me")).json()["user"]
    assert me["about_me"] == "Old notes." and me["timezone"] == "UTC"  # "Europe" is no zone


async def test_an_empty_field_in_an_export_never_erases_the_accounts_own(
    client: Client, user: Any
) -> None:
    """Importing a chat history from an account without custom instructions keeps
    the instructions this account already has."""
    mine = {"about_me": "I teach chemistry.", "response_style": "Short answers."}
    assert (await client.patch("/api/me", json=mine)).status_code == 200
    document = {"format": "parley-export-1", "user": {"id": "u", "about_me": ""}}
    report = await client.post("/api/me/import", json=document)
    assert report.status_code == 200, report.text
    me = (await client.get("/api/auth/me")).json()["user"]
    assert (me["about_me"], me["response_style"]) == (mine["about_me"], mine["response_style"])
