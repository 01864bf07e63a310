"""Projects in the native API: instructions (added or replacing), defaults, files
searched in its chats only, chats moving in and out, memory (the user's default or
project-only) and its reach into the past-conversations tool, sharing, export."""

from __future__ import annotations

import asyncio
from typing import Any

from apihelpers import Client, last_turn_request, make_client, parse_sse, signup
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


async def _project(client: Client, **fields: Any) -> str:
    made = await client.post("/api/projects", json={"name": "Garden"} | fields)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _chat(client: Client, project: str) -> str:
    made = await client.post(f"/api/projects/{project}/chats", json={})
    assert made.status_code == 201, made.text
    return str(made.json()["conversation_id"])


async def _ask(client: Client, conv: str, text: str) -> dict[str, Any]:
    sent = await client.post(f"/api/conversations/{conv}/messages", json={"content": text})
    assert sent.status_code == 200, sent.text
    message: dict[str, Any] = dict(parse_sse(sent.text))["done"]["message"]
    return message


def _prompt(scripted: ScriptedModel) -> str:
    return str(last_turn_request(scripted).messages[0].content)


async def _file(client: Client, name: str, data: bytes, conv: str | None = None) -> str:
    made = await client.post(
        "/api/files",
        files={"file": (name, data, "text/plain")},
        data={"conversation_id": conv} if conv else {},
    )
    assert made.status_code == 201, made.text
    file_id: str = made.json()["id"]
    for _ in range(400):
        if (await client.get(f"/api/files/{file_id}")).json()["status"] == "ready":
            return file_id
        await asyncio.sleep(0.05)
    raise AssertionError("not indexed")


async def test_instructions_files_and_moving_a_chat_out(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    await client.patch("/api/me", json={"about_me": "I live in Lisbon."})
    project = await _project(client, instructions="Answer as a master gardener.")
    seeds = await _file(client, "seeds.txt", b"The tomato seeds go in the blue shed.")
    assert (await client.put(f"/api/projects/{project}/files/{seeds}")).status_code == 204
    conv = await _chat(client, project)
    answer = await _ask(client, conv, "Where are the tomato seeds?")
    prompt = _prompt(scripted)
    assert "master gardener" in prompt and "I live in Lisbon." in prompt  # added to mine
    assert [s["file_id"] for s in answer["sources"] if s["kind"] == "file"] == [seeds]
    files = (await client.get(f"/api/projects/{project}/files")).json()["items"]
    assert [(f["filename"], f["mine"]) for f in files] == [("seeds.txt", True)]

    # replace mode: the project's instructions instead of the user's
    await client.patch(f"/api/projects/{project}", json={"instructions_mode": "replace"})
    await _ask(client, conv, "Hello")
    assert "master gardener" in _prompt(scripted) and "Lisbon" not in _prompt(scripted)

    # a plain chat never sees the project's instructions or files
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    answer = await _ask(client, plain, "Where are the tomato seeds?")
    assert "master gardener" not in _prompt(scripted) and "blue shed" not in _prompt(scripted)
    # moved out, the chat loses the project's context; moved back in, it has it again
    assert (await client.delete(f"/api/projects/{project}/chats/{conv}")).status_code == 204
    await _ask(client, conv, "Where are the tomato seeds?")
    assert "master gardener" not in _prompt(scripted) and "blue shed" not in _prompt(scripted)
    assert (await client.put(f"/api/projects/{project}/chats/{plain}")).status_code == 204
    await _ask(client, plain, "Where are the tomato seeds?")
    assert "blue shed" in _prompt(scripted)
    listed = (await client.get(f"/api/projects/{project}/chats")).json()["items"]
    assert [c["id"] for c in listed] == [plain]


async def test_a_new_chat_starts_with_the_projects_defaults(
    client: Client, user: dict[str, Any]
) -> None:
    project = await _project(client, model="scripted/scripted", tools=["calculator"])
    conv = await _chat(client, project)
    view = (await client.get(f"/api/conversations/{conv}")).json()["conversation"]
    assert view["project_id"] == project
    assert view["model"] == "scripted/scripted" and view["tools"] == ["calculator"]
    bad = await client.patch(f"/api/projects/{project}", json={"tools": ["teleporter"]})
    assert bad.status_code == 422 or bad.status_code == 400
    assert bad.json()["code"] == "unknown_tool"


async def test_project_only_memory_stays_inside_and_global_memories_stay_out(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    made = await client.post("/api/memories", json={"text": "My favourite colour is green"})
    assert made.status_code == 201, made.text
    only = await _project(client, name="Secret garden", memory="project")
    inside = await _chat(client, only)
    await _ask(client, inside, "Remember that the gate code is 4417")
    kept = (await client.get("/api/memories")).json()["items"]
    scoped = [m for m in kept if "4417" in m["text"]]
    assert scoped, kept
    # inside: the project's memory is recalled, the global one is not read
    answer = await _ask(client, inside, "What is my favourite colour and the gate code 4417?")
    titles = [s["title"] for s in answer["sources"] if s["kind"] == "memory"]
    assert any("4417" in t for t in titles) and not any("green" in t for t in titles)
    # outside: the global one, never the project's
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    answer = await _ask(client, plain, "What is my favourite colour and the gate code 4417?")
    titles = [s["title"] for s in answer["sources"] if s["kind"] == "memory"]
    assert any("green" in t for t in titles) and not any("4417" in t for t in titles)

    # default memory: what is learned in the project is the user's, read everywhere
    shared = await _project(client, name="Allotment", memory="default")
    conv = await _chat(client, shared)
    await _ask(client, conv, "Remember that my allotment is plot 12")
    answer = await _ask(client, plain, "Which plot 12 allotment is mine?")
    titles = [s["title"] for s in answer["sources"] if s["kind"] == "memory"]
    assert any("plot 12" in t for t in titles), titles


async def test_the_past_conversations_tool_keeps_a_project_only_projects_chats_inside(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    only = await _project(client, name="Secret garden", memory="project")
    inside = await _chat(client, only)
    await _ask(client, inside, "Let us plan the orchid greenhouse")
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    await _ask(client, plain, "Orchid greenhouse thoughts outside the project")

    search = Reply(tool_calls=[ToolCall("s1", "search_conversations", '{"query": "orchid"}')])
    scripted.enqueue(search, "Found.")
    other = (await client.post("/api/conversations", json={})).json()["id"]
    step = (await _ask(client, other, "What did we say about orchids?"))["steps"][0]
    assert f"/c/{plain}" in step["output"] and f"/c/{inside}" not in step["output"]

    scripted.enqueue(search, "Found.")
    second = await _chat(client, only)
    step = (await _ask(client, second, "What did we say about orchids?"))["steps"][0]
    assert f"/c/{inside}" in step["output"] and f"/c/{plain}" not in step["output"]


async def test_members_see_chats_and_files_and_editors_add_chats(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    project = await _project(client, instructions="Answer as a master gardener.")
    mine = await _chat(client, project)
    await _file(client, "seeds.txt", b"The tomato seeds go in the blue shed.", conv=mine)
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        member = await client.post(
            f"/api/projects/{project}/members", json={"email": "bob@example.com", "role": "editor"}
        )
        assert member.status_code == 201, member.text
        files = (await bob.get(f"/api/projects/{project}/files")).json()["items"]
        assert [(f["filename"], f["mine"]) for f in files] == [("seeds.txt", False)]
        assert (await bob.get(f"/api/files/{files[0]['id']}/content")).status_code == 404
        conv = await _chat(bob, project)
        answer = await _ask(bob, conv, "Where are the tomato seeds?")
        assert "master gardener" in _prompt(scripted) and "blue shed" in _prompt(scripted)
        assert [s["file_id"] for s in answer["sources"] if s["kind"] == "file"] == [files[0]["id"]]
        chats = (await client.get(f"/api/projects/{project}/chats")).json()["items"]
        assert {(c["author"], c["mine"]) for c in chats} == {
            ("bob@example.com", False),
            (user["email"], True),
        }
        # an editor cannot manage members or delete the project
        assert (await bob.delete(f"/api/projects/{project}")).status_code == 403
        await client.delete(f"/api/projects/{project}/members/{member.json()['id']}")
        answer = await _ask(bob, conv, "Where are the tomato seeds?")
        assert "master gardener" not in _prompt(scripted) and "blue shed" not in _prompt(scripted)


async def test_a_projects_settings_export_and_import_without_chats(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    project = await _project(
        client, instructions="Be green.", memory="project", tools=["calculator"]
    )
    await _chat(client, project)
    document = (await client.get(f"/api/projects/{project}/export")).json()
    assert document["parley"] == "project" and document["instructions"] == "Be green."
    assert "chats" not in document
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        made = await bob.post("/api/projects/import", json={"document": document})
        assert made.status_code == 201, made.text
        imported = made.json()["project"]
        assert (imported["name"], imported["memory"], imported["tools"]) == (
            "Garden",
            "project",
            ["calculator"],
        )
        assert imported["chats"] == 0 and imported["role"] == "owner"


async def test_a_projects_default_assistant_is_one_of_the_users_own(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    mine = await client.post(
        "/api/assistants", json={"config": {"name": "Gardener", "instructions": "Speak of roses."}}
    )
    project = await _project(client, assistant_id=mine.json()["id"])
    conv = await _chat(client, project)
    view = (await client.get(f"/api/conversations/{conv}")).json()["conversation"]
    assert view["assistant_id"] == mine.json()["id"]
    await _ask(client, conv, "Hello")
    assert "Speak of roses." in _prompt(scripted)
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        theirs = await _project(bob)
        refused = await bob.patch(
            f"/api/projects/{theirs}", json={"assistant_id": mine.json()["id"]}
        )
        assert refused.status_code == 422 and refused.json()["code"] == "unknown_assistant"
