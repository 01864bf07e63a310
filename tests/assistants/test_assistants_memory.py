"""An assistant's memory mode: off (nothing recalled or saved), the user's own
memories (global), or its own (saved with the assistant's scope, recalled only in
its chats)."""

from __future__ import annotations

from typing import Any

import pytest
from ashelpers import ask, create, start

from apihelpers import Client


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"memory_auto": False}  # only explicit requests: no extraction model calls


def _memories(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in answer["sources"] if s["kind"] == "memory"]


async def _scopes(client: Client) -> dict[str, tuple[str | None, str | None]]:
    items = (await client.get("/api/memories")).json()["items"]
    return {m["text"]: (m["scope_type"], m["scope_id"]) for m in items}


async def test_own_memories_stay_in_the_assistants_chats(
    client: Client, user: dict[str, Any]
) -> None:
    made = await create(client, memory="scoped")
    chat = await start(client, made["id"])
    saved = await ask(client, chat, "Remember that my boat is called Seagull.")
    assert [m["action"] for m in _memories(saved)] == ["added"]
    scopes = await _scopes(client)
    [(text, scope)] = scopes.items()
    assert "Seagull" in text and scope == ("assistant", made["id"])
    again = await ask(client, await start(client, made["id"]), "What is my boat called?")
    assert [m["title"] for m in _memories(again)] == [text]
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    elsewhere = await ask(client, plain, "What is my boat called?")
    assert _memories(elsewhere) == []


async def test_the_users_own_memories_are_global(client: Client, user: dict[str, Any]) -> None:
    made = await create(client, memory="user")
    chat = await start(client, made["id"])
    await ask(client, chat, "Remember that my boat is called Seagull.")
    [(text, scope)] = (await _scopes(client)).items()
    assert scope == (None, None)
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    elsewhere = await ask(client, plain, "What is my boat called?")
    assert [m["title"] for m in _memories(elsewhere)] == [text]


async def test_memory_off_neither_saves_nor_recalls(client: Client, user: dict[str, Any]) -> None:
    await client.post("/api/memories", json={"text": "My boat is called Seagull"})
    made = await create(client, memory="off")
    chat = await start(client, made["id"])
    answer = await ask(client, chat, "What is my boat called?")
    assert _memories(answer) == []
    await ask(client, chat, "Remember that my car is called Bluebird.")
    saved = list(await _scopes(client))
    assert len(saved) == 1 and "Seagull" in saved[0]  # nothing about the car
    # the memory is there: a plain chat recalls it
    plain = (await client.post("/api/conversations", json={})).json()["id"]
    assert len(_memories(await ask(client, plain, "What is my boat called?"))) == 1
