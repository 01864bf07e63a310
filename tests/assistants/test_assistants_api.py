"""Assistants in the native API: versions, diff, restore, publish, and turns that
follow the published version (the preview: the draft)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ashelpers import ask, config, create, ready_file, start

from apihelpers import Client, last_turn_request, make_client, signup
from parley.providers.scripted import ScriptedModel


@pytest.fixture
def scripted_models(scripted: ScriptedModel) -> dict[str, ScriptedModel]:
    """Two models, so a chat can pick another than its assistant's."""
    return {"scripted": scripted, "other": ScriptedModel(default="From the other model.")}


def system_prompt(scripted: ScriptedModel) -> str:
    return str(last_turn_request(scripted).messages[0].content)


async def test_every_save_is_a_version_with_diff_restore_and_publish(
    client: Client, user: dict[str, Any]
) -> None:
    made = await create(client, starters=["Tell me a tale", "Where is the gold?"])
    aid = made["id"]
    assert made["slug"] == "pirate" and made["model_id"] == "assistant/pirate"
    assert (made["draft_version"], made["published_version"]) == (1, 1)

    # Save: a new draft; chats keep version 1 until it is published
    saved = await client.post(
        f"/api/assistants/{aid}/versions",
        json={
            "config": config(
                instructions="Talk like a pirate.\nNever reveal the gold.",
                tools=["calculator"],
                temperature=0.3,
            )
        },
    )
    assert saved.status_code == 201, saved.text
    assert (saved.json()["draft_version"], saved.json()["published_version"]) == (2, 1)
    assert saved.json()["published"]["instructions"] == "Talk like a pirate."

    diff = (await client.get(f"/api/assistants/{aid}/diff", params={"from": 1, "to": 2})).json()
    assert diff["instructions"] == [
        {"op": " ", "text": "Talk like a pirate."},
        {"op": "+", "text": "Never reveal the gold."},
    ]
    changed = {c["field"]: c for c in diff["changes"]}
    assert changed["tools"]["added"] == ["calculator"]
    assert changed["temperature"] == {
        "field": "temperature",
        "before": None,
        "after": 0.3,
        "added": [],
        "removed": [],
    }
    assert "starters" in changed and changed["starters"]["removed"] == [
        "Tell me a tale",
        "Where is the gold?",
    ]

    published = await client.post(f"/api/assistants/{aid}/publish", json={})
    assert published.json()["published_version"] == 2

    restored = await client.post(f"/api/assistants/{aid}/versions/1/restore")
    assert restored.status_code == 201
    assert (restored.json()["draft_version"], restored.json()["published_version"]) == (3, 2)
    assert restored.json()["config"]["instructions"] == "Talk like a pirate."
    versions = (await client.get(f"/api/assistants/{aid}/versions")).json()["items"]
    assert [(v["number"], v["draft"], v["published"]) for v in versions] == [
        (3, True, False),
        (2, False, True),
        (1, False, False),
    ]
    assert versions[0]["note"] == "Restored from version 1"
    # versions never change: version 2 still has what was saved
    two = (await client.get(f"/api/assistants/{aid}/versions/2")).json()
    assert two["config"]["tools"] == ["calculator"]
    assert (await client.get(f"/api/assistants/{aid}/versions/9")).status_code == 404

    listed = (await client.get("/api/assistants")).json()["items"]
    assert [a["id"] for a in listed] == [aid]


async def test_what_a_version_may_name_is_checked(client: Client, user: dict[str, Any]) -> None:
    unknown_tool = await client.post(
        "/api/assistants", json={"config": config(tools=["launch_missiles"])}
    )
    assert unknown_tool.status_code == 422
    assert unknown_tool.json()["code"] == "unknown_tool"
    assert "calculator" in unknown_tool.json()["detail"]
    too_many = await client.post(
        "/api/assistants", json={"config": config(starters=["a", "b", "c", "d", "e"])}
    )
    assert too_many.status_code == 422
    markup = await client.post("/api/assistants", json={"config": config(avatar="<img>")})
    assert markup.status_code == 422
    first = await create(client)
    second = await create(client)  # the same name: the next free slug
    assert (first["slug"], second["slug"]) == ("pirate", "pirate-2")
    taken = await client.post("/api/assistants", json={"config": config(), "slug": "pirate"})
    assert taken.status_code == 409 and taken.json()["code"] == "slug_taken"
    bad = await client.post("/api/assistants", json={"config": config(), "slug": "No Spaces"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_slug"
    renamed = await client.patch(f"/api/assistants/{second['id']}", json={"slug": "captain"})
    assert renamed.json()["model_id"] == "assistant/captain"
    bad_model = await client.post("/api/assistants", json={"config": config(model="nope/none")})
    assert bad_model.status_code == 422 and bad_model.json()["code"] == "unknown_model"


async def test_chats_follow_the_published_version_and_the_preview_the_draft(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    made = await create(client, tools=["calculator"], temperature=0.2)
    aid = made["id"]
    chat = await start(client, aid)
    answer = await ask(client, chat, "Hello")
    assert answer["status"] == "complete"
    prompt = system_prompt(scripted)
    assert "Talk like a pirate." in prompt
    request = last_turn_request(scripted)
    assert [t.name for t in request.tools] == ["calculator"]
    assert request.temperature == 0.2

    await client.post(
        f"/api/assistants/{aid}/versions",
        json={"config": config(instructions="Talk like a robot.")},
    )
    await ask(client, chat, "Again")  # not published yet: still the pirate
    assert "Talk like a pirate." in system_prompt(scripted)

    preview = await start(client, aid, preview=True)
    await ask(client, preview, "Try the draft")
    assert "Talk like a robot." in system_prompt(scripted)
    assert "Talk like a pirate." not in system_prompt(scripted)
    previewed = (await client.get(f"/api/conversations/{preview}")).json()
    assert previewed["conversation"]["temporary"] is True
    assert previewed["conversation"]["assistant_id"] == aid

    await client.post(f"/api/assistants/{aid}/publish", json={})
    third = await ask(client, chat, "And now?")
    assert "Talk like a robot." in system_prompt(scripted)

    header = (await client.get(f"/api/conversations/{chat}/assistant")).json()
    assert header["name"] == "Pirate" and header["avatar"] == "🏴‍☠️"
    assert header["slug"] == "pirate" and header["preview"] is False
    versions = {a["message_id"]: a["version"] for a in header["answers"]}
    assert versions[answer["id"]] == 1 and versions[third["id"]] == 2
    assert sorted(versions.values()) == [1, 1, 2]
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    assert (await client.get(f"/api/conversations/{plain}/assistant")).json()["name"] is None


async def test_the_users_model_pick_wins_over_the_assistants(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    """The assistant's model is used unless the user picked another in that chat."""
    made = await create(client, model="scripted/scripted")
    chat = await start(client, made["id"])
    answer = await ask(client, chat, "Hi")
    assert answer["model"] == "scripted/scripted"
    header = (await client.get(f"/api/conversations/{chat}/assistant")).json()
    assert header["model"] == "scripted/scripted"  # the model picker names it
    # a pick in the chat is the chat's model from then on
    picked = await client.patch(f"/api/conversations/{chat}", json={"model": "scripted/other"})
    assert picked.status_code == 200, picked.text
    assert (await ask(client, chat, "Again"))["model"] == "scripted/other"


async def test_the_assistants_knowledge_is_in_its_chats_only(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    kept = await ready_file(client, "gold.txt", b"The gold is buried under the old oak tree.")
    other = await ready_file(client, "menu.txt", b"The canteen serves soup on Tuesdays.")
    made = await create(client, file_ids=[kept])
    chat = await start(client, made["id"])
    answer = await ask(client, chat, "Where is the gold?")
    cited = {s.get("file_id") for s in answer["sources"] if s["kind"] == "file"}
    assert cited == {kept}
    prompt = system_prompt(scripted)
    assert "old oak tree" in prompt and "soup" not in prompt
    # a plain chat does not see it
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    answer = await ask(client, plain, "Where is the gold?")
    assert [s for s in answer["sources"] if s["kind"] == "file"] == []
    assert "old oak tree" not in system_prompt(scripted)
    # knowledge search scoped by the assistant's chat finds the file, not the other
    found = await client.post(
        "/api/knowledge/search", json={"query": "gold oak soup", "conversation_id": chat}
    )
    assert {h["file_id"] for h in found.json()["items"]} == {kept}
    assert other not in {h["file_id"] for h in found.json()["items"]}


async def test_another_users_files_cannot_be_an_assistants_knowledge(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        theirs = await ready_file(bob, "secret.txt", b"Bob's secret recipe.")
    refused = await client.post("/api/assistants", json={"config": config(file_ids=[theirs])})
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_file"
    refused = await client.post("/api/assistants", json={"config": config(collection_ids=["nope"])})
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_collection"


async def test_a_deleted_assistants_chat_cannot_go_on(client: Client, user: dict[str, Any]) -> None:
    made = await create(client)
    chat = await start(client, made["id"])
    await ask(client, chat, "Hi")
    assert (await client.delete(f"/api/assistants/{made['id']}")).status_code == 204
    refused = await client.post(f"/api/conversations/{chat}/messages", json={"content": "Still?"})
    assert refused.status_code == 404
    assert "deleted" in refused.json()["detail"]
    # the history stays readable
    assert len((await client.get(f"/api/conversations/{chat}")).json()["messages"]) == 2


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the magic bytes are what is checked


async def test_an_uploaded_avatar_image_is_a_small_raster_image(
    client: Client, user: dict[str, Any]
) -> None:
    made = await create(client)
    url = f"/api/assistants/{made['id']}/avatar"
    assert made["avatar_url"] is None
    put = await client.put(url, content=PNG, headers={"Content-Type": "image/png"})
    assert put.status_code == 200, put.text
    shown = put.json()["avatar_url"]
    assert shown.startswith(url + "?v=")
    got = await client.get(shown)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert "nosniff" in got.headers["x-content-type-options"]
    assert got.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    listed = (await client.get("/api/assistants")).json()["items"][0]
    assert listed["avatar_url"] == shown
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    refused = await client.put(url, content=svg, headers={"Content-Type": "image/png"})
    assert refused.status_code == 415 and "SVG" in refused.json()["detail"]
    big = await client.put(url, content=PNG + b"\x00" * 300_000)
    assert big.status_code == 413
    assert (await client.get(url)).content == PNG  # the refused ones changed nothing
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.get(f"/api/assistants/{made['id']}")).json()["avatar_url"] is None


async def test_the_users_tool_pick_in_a_chat_wins_over_the_assistants(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    made = await create(client, tools=["calculator"])
    chat = await start(client, made["id"])
    await ask(client, chat, "Hi")
    assert [t.name for t in last_turn_request(scripted).tools] == ["calculator"]
    picked = await client.patch(f"/api/conversations/{chat}", json={"tools": ["current_datetime"]})
    assert picked.status_code == 200, picked.text
    await ask(client, chat, "Again")
    assert [t.name for t in last_turn_request(scripted).tools] == ["current_datetime"]


async def test_a_collection_is_knowledge_too(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    shelf = (await client.post("/api/collections", json={"name": "Charts"})).json()["id"]
    made_file = await client.post(
        "/api/files",
        files={"file": ("reef.txt", b"The reef lies two miles east of the pier.", "text/plain")},
        data={"collection_id": shelf},
    )
    assert made_file.status_code == 201, made_file.text
    file_id = made_file.json()["id"]
    for _ in range(400):
        if (await client.get(f"/api/files/{file_id}")).json()["status"] == "ready":
            break
        await asyncio.sleep(0.05)
    made = await create(client, collection_ids=[shelf])
    answer = await ask(client, await start(client, made["id"]), "Where is the reef?")
    assert [s["file_id"] for s in answer["sources"] if s["kind"] == "file"] == [file_id]
    assert "two miles east" in system_prompt(scripted)
