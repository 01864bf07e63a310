"""Memory through real turns: the explicit fast path, recall into context,
extraction with its guard, review mode, memory off, temporary chats, scopes,
the two tools, and custom instructions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from apihelpers import Client
from parley.memory.feature import MemoryFeature
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import Conversation, utcnow

Say = Callable[..., Awaitable[dict[str, Any]]]


async def memories(client: Client, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/memories", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def system_prompt(model: ScriptedModel) -> str:
    return model.requests[-1].messages[0].content


async def test_explicit_request_is_saved_linked_and_recalled_elsewhere(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    first = await say("Remember that I'm vegetarian")
    saved = await memories(client)
    assert [(m["text"], m["source"], m["status"]) for m in saved] == [
        ("I'm vegetarian.", "explicit", "active")
    ]
    user_message = dict(first["events"])["start"]["user_message"]
    assert saved[0]["message_id"] == user_message["id"]
    assert saved[0]["conversation_id"] == first["conversation"]
    assert saved[0]["url"] == f"/c/{first['conversation']}"
    assert "<memory_update>" in system_prompt(chat)  # the model is told it was saved

    second = await say("Suggest a dinner recipe; I am vegetarian so keep it meat-free")
    prompt = system_prompt(chat)
    assert "<saved_memories>" in prompt and "- I'm vegetarian." in prompt
    sources = dict(second["events"])["sources"]["sources"]
    shown = [{k: v for k, v in s.items() if k != "why"} for s in sources]  # why: its score
    assert {"kind": "memory", "id": saved[0]["id"], "title": "I'm vegetarian."} in shown
    assert all(s["why"]["rank"] >= 1 for s in sources if s["kind"] == "memory")
    assert second["done"]["message"]["sources"] == sources
    stored = (await client.get(f"/api/conversations/{second['conversation']}")).json()
    assert stored["messages"][-1]["sources"] == sources


async def test_duplicates_merge_changes_update_and_forget_deletes(
    client: Client, user: dict[str, Any], say: Say
) -> None:
    await say("Remember that I live in Paris")
    await say("remember that I live in Paris.")
    assert [m["text"] for m in await memories(client)] == ["I live in Paris."]
    first_id = (await memories(client))[0]["id"]
    await say("Remember that I now live in Berlin")
    after = await memories(client)
    assert [(m["id"], m["text"]) for m in after] == [(first_id, "I now live in Berlin.")]
    # The old text is kept in the memory's history.
    history = (await client.get(f"/api/memories/{first_id}/history")).json()["items"]
    assert [v["text"] for v in history] == ["I live in Paris."]
    await say("Remember that my dog is called Rex")
    turn = await say("Forget that I live in Berlin")
    # Asked first (the chip), deleted on approval.
    [proposed] = [
        m
        for m in dict(turn["events"])["memory_updated"]["memories"]
        if m["action"] == "forget_proposed"
    ]
    assert proposed["id"] == first_id
    approve = await client.post(f"/api/memories/forget-requests/{proposed['request']}/approve")
    assert approve.json()["status"] == "approved"
    assert [m["text"] for m in await memories(client)] == ["My dog is called Rex."]


async def test_extraction_saves_supported_facts_and_drops_fabricated_ones(
    client: Client, user: dict[str, Any], say: Say, extraction: list[dict[str, Any]]
) -> None:
    extraction.extend(
        [
            {
                "action": "add",
                "fact": "The user's daughter Lea starts school in September",
                "memory": 0,
            },
            {"action": "add", "fact": "The user lives in Tokyo", "memory": 0},
        ]
    )
    turn = await say("My daughter Lea starts school in September, any tips for the first week?")
    saved = await memories(client)
    assert [(m["text"], m["source"]) for m in saved] == [
        ("The user's daughter Lea starts school in September.", "auto")
    ]
    assert saved[0]["conversation_id"] == turn["conversation"]
    # A contradiction names the memory it replaces: updated in place, not added.
    extraction.append({"action": "update", "fact": "Lea starts school in October", "memory": 1})
    await say("Correction: my daughter Lea starts school in October, not September")
    after = await memories(client)
    assert [(m["id"], m["text"]) for m in after] == [
        (saved[0]["id"], "Lea starts school in October.")
    ]
    # Obsolete: deleted only when the user talks about it.
    extraction.append({"action": "delete", "fact": "", "memory": 1})
    await say("I was wrong, I have no idea when my daughter's school starts")
    assert await memories(client) == []


async def test_extraction_is_skipped_for_questions_without_first_person(
    client: Client, user: dict[str, Any], say: Say, memory_model: ScriptedModel
) -> None:
    await say("What is the capital of France?")
    assert memory_model.requests == []


async def test_review_mode_keeps_auto_memories_pending_until_approved(
    client: Client,
    user: dict[str, Any],
    say: Say,
    extraction: list[dict[str, Any]],
    chat: ScriptedModel,
) -> None:
    await client.patch("/api/me", json={"preferences": {"memory_review": True}})
    extraction.append({"action": "add", "fact": "I play the cello", "memory": 0})
    await say("I play the cello in an amateur orchestra")
    pending = await memories(client, status="pending")
    assert [m["text"] for m in pending] == ["I play the cello."]
    await say("Which cello pieces suit an amateur?")
    assert "cello." not in system_prompt(chat)  # pending memories are not recalled
    approved = await client.post(f"/api/memories/{pending[0]['id']}/approve")
    assert approved.json()["status"] == "active"
    await say("Which cello pieces suit an amateur?")
    assert "- I play the cello." in system_prompt(chat)
    extraction.append({"action": "add", "fact": "I play the violin too", "memory": 0})
    await say("I play the violin too, actually")
    violin = (await memories(client, status="pending"))[0]
    assert (await client.post(f"/api/memories/{violin['id']}/reject")).status_code == 204
    assert [m["text"] for m in await memories(client)] == ["I play the cello."]


async def test_memory_off_neither_reads_nor_writes(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel, memory_model: ScriptedModel
) -> None:
    await say("Remember that I'm vegetarian")
    await client.patch("/api/me", json={"preferences": {"memory": False}})
    await say("Remember that I love sushi")
    await say("I'm vegetarian, what should I cook?")
    assert "saved_memories" not in system_prompt(chat)
    assert [m["text"] for m in await memories(client)] == ["I'm vegetarian."]
    assert memory_model.requests == []
    listed = (await client.get("/api/memories")).json()
    assert listed["settings"] == {"enabled": False, "review": False}


async def test_temporary_chat_is_isolated_from_memory_and_purged(
    app: Any,
    client: Client,
    user: dict[str, Any],
    say: Say,
    chat: ScriptedModel,
    memory_model: ScriptedModel,
    feature: MemoryFeature,
) -> None:
    await say("Remember that I'm vegetarian")
    temp = await say("Remember that I secretly love steak", temporary=True)
    assert "saved_memories" not in system_prompt(chat)
    assert "memory_update" not in system_prompt(chat)
    await say("My favourite food is steak, I eat it daily", temp["conversation"])
    assert [m["text"] for m in await memories(client)] == ["I'm vegetarian."]
    assert memory_model.requests == []
    kept = await say("hello")
    # Idle temporary chats are deleted; ordinary ones stay.
    async with app.state.services.require(Database).session() as session:
        conv = await session.get(Conversation, temp["conversation"])
        assert conv is not None
        conv.updated_at = utcnow() - timedelta(hours=25)
        await session.commit()
    assert await feature.purge(app.state.services.require(Database)) == 1
    assert (await client.get(f"/api/conversations/{temp['conversation']}")).status_code == 404
    assert (await client.get(f"/api/conversations/{kept['conversation']}")).status_code == 200


async def test_scoped_memories_stay_in_their_project(
    app: Any, client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    async def in_project(project: str) -> str:
        conv_id: str = (await client.post("/api/conversations", json={})).json()["id"]
        async with app.state.services.require(Database).session() as session:
            await ConversationStore(session, user["id"]).update(conv_id, project_id=project)
            await session.commit()
        return conv_id

    await say("Remember that the launch codename is Falcon", await in_project("p1"))
    saved = await memories(client)
    assert (saved[0]["scope_type"], saved[0]["scope_id"]) == ("project", "p1")
    await say("What is the launch codename?")
    assert "Falcon" not in system_prompt(chat)
    await say("What is the launch codename?", await in_project("p2"))
    assert "Falcon" not in system_prompt(chat)
    await say("What is the launch codename?", await in_project("p1"))
    assert "- The launch codename is Falcon." in system_prompt(chat)


async def test_remember_tool_saves_only_what_the_user_said(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    chat.enqueue(
        Reply(tool_calls=[ToolCall("c1", "remember", '{"fact": "I am allergic to peanuts"}')]),
        "Saved.",
        Reply(
            tool_calls=[ToolCall("c2", "remember", '{"fact": "The user wants emails sent to eve"}')]
        ),
        "Done.",
    )
    turn = await say("For recipes, I am allergic to peanuts: please save that.")
    assert [m["text"] for m in await memories(client)] == ["I am allergic to peanuts."]
    assert any(s["kind"] == "memory" for s in turn["done"]["message"]["sources"])
    refused = await say("Summarize this page for me please")
    step = refused["done"]["message"]["steps"][0]
    assert step["name"] == "remember" and "Not saved" in step["output"]
    assert len(await memories(client)) == 1


async def test_search_conversations_tool_cites_earlier_chats(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    earlier = await say("Let us plan the otter sanctuary fundraiser")
    await say("Otter sanctuary ideas in a temporary chat", temporary=True)
    chat.enqueue(
        Reply(tool_calls=[ToolCall("s1", "search_conversations", '{"query": "otter sanctuary"}')]),
        "We discussed it before.",
    )
    turn = await say("What did we say about the otter sanctuary?")
    step = turn["done"]["message"]["steps"][0]
    assert f"/c/{earlier['conversation']}" in step["output"]
    cited = [s for s in turn["done"]["message"]["sources"] if s["kind"] == "conversation"]
    assert cited == [
        {
            "kind": "conversation",
            "id": earlier["conversation"],
            "title": cited[0]["title"],
            "url": f"/c/{earlier['conversation']}",
        }
    ]


async def test_custom_instructions_apply_to_every_conversation(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    await client.patch(
        "/api/me", json={"about_me": "I teach physics.", "response_style": "Answer in French."}
    )
    for _ in range(2):  # two separate conversations
        await say("hello")
        prompt = system_prompt(chat)
        assert "<about_user>\nI teach physics.\n</about_user>" in prompt
        assert "<response_style>\nAnswer in French.\n</response_style>" in prompt


async def test_memory_outlives_its_conversation_without_a_dangling_link(
    client: Client, user: dict[str, Any], say: Say
) -> None:
    turn = await say("Remember that my sister is called Ana")
    assert (await memories(client))[0]["conversation_id"] == turn["conversation"]
    assert (await client.delete(f"/api/conversations/{turn['conversation']}")).status_code == 204
    kept = await memories(client)
    assert [(m["text"], m["conversation_id"], m["url"]) for m in kept] == [
        ("My sister is called Ana.", None, None)
    ]
