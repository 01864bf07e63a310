"""Boundaries of memory: a scoped memory (project or assistant) never appears outside
its scope, not even in the extraction prompt sent to the memory model, and is not
forgotten from elsewhere; one user's memories and conversations never reach another
user's context, tools or extraction prompt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from apihelpers import Client, make_client, parse_sse, signup
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database

Say = Callable[..., Awaitable[dict[str, Any]]]


def everything_sent(model: ScriptedModel, start: int = 0) -> str:
    return "\n".join(m.content for r in model.requests[start:] for m in r.messages)


async def test_scoped_memories_never_leave_their_scope(
    app: Any,
    client: Client,
    user: dict[str, Any],
    say: Say,
    chat: ScriptedModel,
    memory_model: ScriptedModel,
) -> None:
    async def scoped(**scope: str) -> str:
        conv_id: str = (await client.post("/api/conversations", json={})).json()["id"]
        async with app.state.services.require(Database).session() as session:
            await ConversationStore(session, user["id"]).update(conv_id, **scope)
            await session.commit()
        return conv_id

    await say("Remember that my pirate nickname is Captain Ahab", await scoped(assistant_id="a1"))
    await say("Remember that the budget codename is Heron", await scoped(project_id="p1"))
    saved = {m["text"]: m for m in (await client.get("/api/memories")).json()["items"]}
    ahab, heron = (
        saved["My pirate nickname is Captain Ahab."],
        saved["The budget codename is Heron."],
    )
    assert (ahab["scope_type"], ahab["scope_id"]) == ("assistant", "a1")
    assert (heron["scope_type"], heron["scope_id"]) == ("project", "p1")

    question = "What are my pirate nickname and the budget codename Heron Ahab?"
    for where in (None, await scoped(assistant_id="a2"), await scoped(project_id="p2")):
        start = len(chat.requests)
        await say(question, where)
        sent = everything_sent(chat, start)
        assert "Captain Ahab." not in sent and "codename is Heron" not in sent
    await say(question, await scoped(assistant_id="a1"))
    prompt = chat.requests[-1].messages[0].content
    assert "- My pirate nickname is Captain Ahab." in prompt and "Heron." not in prompt

    # Extraction in a global chat: the memory model is not shown scoped memories.
    before = len(memory_model.requests)
    await say("My pirate nickname Ahab and the codename Heron are my favourite words")
    assert len(memory_model.requests) == before + 1
    shown = memory_model.requests[-1].messages[-1].content.split("The user's message:")[0]
    assert "Captain Ahab." not in shown and "codename is Heron" not in shown

    # "Forget" in a global chat cannot even propose deleting a scoped memory.
    turn = await say("Forget that my pirate nickname is Captain Ahab")
    assert "memory_updated" not in dict(turn["events"])
    assert "No saved memory matches it" in chat.requests[-1].messages[0].content
    assert len((await client.get("/api/memories")).json()["items"]) == 2


async def test_one_users_memories_and_chats_never_reach_another_user(
    app: Any,
    client: Client,
    user: dict[str, Any],
    say: Say,
    chat: ScriptedModel,
    memory_model: ScriptedModel,
    settled: Any,
) -> None:
    await say("Remember that my vault word is pelican")
    await say("Let us plan the otter sanctuary fundraiser with the pelican sponsors")
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        start_chat, start_memory = len(chat.requests), len(memory_model.requests)

        async def bob_says(content: str) -> dict[str, Any]:
            conv = (await bob.post("/api/conversations", json={})).json()["id"]
            response = await bob.post(
                f"/api/conversations/{conv}/messages", json={"content": content}
            )
            await settled()
            return dict(parse_sse(response.text))

        recalled = await bob_says("What is my vault word pelican? I forgot my vault word")
        assert recalled["done"]["message"]["sources"] == []
        chat.enqueue(
            Reply(
                tool_calls=[ToolCall("s1", "search_conversations", '{"query": "otter sanctuary"}')]
            ),
            "Nothing.",
        )
        searched = await bob_says("What did we say about the otter sanctuary?")
        step = searched["done"]["message"]["steps"][0]
        assert step["name"] == "search_conversations" and "/c/" not in step["output"]
        assert searched["done"]["message"]["sources"] == []
        assert len(memory_model.requests) > start_memory  # bob's messages did extract
        leaked = everything_sent(chat, start_chat) + everything_sent(memory_model, start_memory)
        assert "vault word is pelican." not in leaked and "fundraiser" not in leaked
        await bob_says("Forget that my vault word is pelican")
        assert "No saved memory matches it" in chat.requests[-1].messages[0].content
        assert (await bob.get("/api/memories")).json()["items"] == []
    mine = (await client.get("/api/memories")).json()["items"]
    assert [m["text"] for m in mine] == ["My vault word is pelican."]
