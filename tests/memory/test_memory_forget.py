"""Forgetting in the user's words, through real turns: recognised without the
model, matched to several memories, shown as a chip (sources with
``forget_proposed``), deleted only on approval, undone within the window, and
a request matching nothing still reaching the extraction model."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

# The labelled set lives with its benchmark (bench/forget_set.py, plain data).
from bench.forget_set import DEV
from sqlalchemy import update

from apihelpers import Client, make_client, signup
from parley.memory.feature import MemoryFeature
from parley.memory.forget_words import parse_forget
from parley.memory.tables import ForgetRequest
from parley.providers.scripted import ScriptedModel
from parley.storage.db import Database
from parley.storage.tables import utcnow

OLD_JOB = [
    "My old job was at Northwind Logistics.",
    "At my old job I drove a forklift.",
    "My boss at the old job was Greg.",
]
OTHER = ["I live in Sacramento.", "I have a cat named Biscuit.", "I play the cello."]


async def _add(client: Client, texts: list[str]) -> dict[str, str]:
    ids = {}
    for text in texts:
        response = await client.post("/api/memories", json={"text": text})
        assert response.status_code == 201, response.text
        ids[text] = response.json()["id"]
    return ids


async def _texts(client: Client) -> set[str]:
    return {m["text"] for m in (await client.get("/api/memories")).json()["items"]}


def _proposed(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    updated = [data for name, data in events if name == "memory_updated"]
    assert updated, "no memory_updated event"
    return [m for m in updated[0]["memories"] if m.get("action") == "forget_proposed"]


@pytest.mark.parametrize("case", DEV, ids=lambda c: c.message[:40])
def test_recognised_in_the_users_words(case: Any) -> None:
    """The dev split of bench.forget_set (the held-out split is only run by the bench)."""
    assert (parse_forget(case.message) is not None) == (case.expected is not None)


def test_topic_requests_are_marked() -> None:
    ask = parse_forget("Can you forget everything about my old job?")
    assert ask is not None and ask.topic and ask.phrase == "My old job."
    fact = parse_forget("Please forget that I'm afraid of flying")
    assert fact is not None and not fact.topic


async def test_chip_approve_undo_approve(
    client: Client, user: dict[str, Any], say: Any, chat: ScriptedModel, memory_model: ScriptedModel
) -> None:
    ids = await _add(client, OLD_JOB + OTHER)
    turn = await say("can you forget everything about my old job?")
    proposed = _proposed(turn["events"])
    assert {m["id"] for m in proposed} == {ids[t] for t in OLD_JOB}
    [request_id] = {m["request"] for m in proposed}
    assert "Nothing is deleted yet" in chat.requests[-1].messages[0].content
    assert memory_model.requests == []  # the chip handles it: no model deletes on its own
    # Nothing deleted before approval; the stored answer keeps the chip's sources.
    assert await _texts(client) == set(OLD_JOB + OTHER)
    stored = (await client.get(f"/api/conversations/{turn['conversation']}")).json()
    assert [s for s in stored["messages"][-1]["sources"] if s.get("request")] == proposed
    url = f"/api/memories/forget-requests/{request_id}"
    pending = (await client.get(url)).json()
    assert pending["status"] == "pending" and pending["undo_until"] is None
    assert {m["text"] for m in pending["memories"]} == set(OLD_JOB)

    approved = (await client.post(f"{url}/approve")).json()
    assert approved["status"] == "approved" and approved["undo_until"]
    assert await _texts(client) == set(OTHER)
    undone = (await client.post(f"{url}/undo")).json()
    assert undone["status"] == "pending"
    restored = (await client.get("/api/memories")).json()["items"]
    assert {m["id"] for m in restored if m["text"] in OLD_JOB} == {ids[t] for t in OLD_JOB}
    assert (await client.post(f"{url}/approve")).json()["status"] == "approved"
    assert await _texts(client) == set(OTHER)
    # Recall never brings a forgotten memory back.
    await say("Where did I work before?")
    assert "Northwind" not in chat.requests[-1].messages[0].content


async def test_cancel_keeps_everything(client: Client, user: dict[str, Any], say: Any) -> None:
    await _add(client, OLD_JOB + OTHER)
    turn = await say("Please stop remembering that I play the cello")
    [proposed] = _proposed(turn["events"])
    assert proposed["title"] == "I play the cello."
    url = f"/api/memories/forget-requests/{proposed['request']}"
    assert (await client.post(f"{url}/cancel")).json()["status"] == "cancelled"
    assert (await client.post(f"{url}/approve")).json()["status"] == "cancelled"
    assert await _texts(client) == set(OLD_JOB + OTHER)


async def test_nothing_matched_is_said_and_extraction_still_runs(
    client: Client,
    user: dict[str, Any],
    say: Any,
    chat: ScriptedModel,
    memory_model: ScriptedModel,
    extraction: list[dict[str, Any]],
) -> None:
    await _add(client, OTHER)
    extraction.append({"action": "add", "fact": "I sold my submarine", "memory": 0})
    turn = await say("Forget my submarine, I sold my submarine")
    chips = [
        m
        for name, data in turn["events"]
        if name == "memory_updated"
        for m in data["memories"]
        if m.get("action") == "forget_proposed"
    ]
    assert chips == []
    assert "No saved memory matches" in chat.requests[-1].messages[0].content
    assert len(memory_model.requests) == 1  # the extraction model saw the message
    assert "I sold my submarine." in await _texts(client)


async def test_undo_expires_and_the_kept_rows_are_erased(
    client: Client, user: dict[str, Any], say: Any, db: Database, feature: MemoryFeature
) -> None:
    await _add(client, OLD_JOB + OTHER)
    turn = await say("Forget about my cat please")
    [proposed] = _proposed(turn["events"])
    url = f"/api/memories/forget-requests/{proposed['request']}"
    assert (await client.post(f"{url}/approve")).status_code == 200
    async with db.session() as session:
        await session.execute(
            update(ForgetRequest)
            .where(ForgetRequest.id == proposed["request"])
            .values(decided_at=utcnow() - timedelta(hours=1))
        )
        await session.commit()
    assert feature.forgets is not None
    assert await feature.forgets.purge_expired() == 1
    async with db.session() as session:
        row = await session.get(ForgetRequest, proposed["request"])
        assert row is not None and row.removed is None
    late = await client.post(f"{url}/undo")
    assert late.status_code == 409 and late.json()["code"] == "undo_expired"
    assert "I have a cat named Biscuit." not in await _texts(client)


async def test_another_user_cannot_touch_a_request(
    app: Any, client: Client, user: dict[str, Any], say: Any
) -> None:
    await _add(client, OTHER)
    turn = await say("Can you forget that I live in Sacramento?")
    [proposed] = _proposed(turn["events"])
    url = f"/api/memories/forget-requests/{proposed['request']}"
    async with make_client(app) as other:
        await signup(other, "mallory@example.com")
        for method, suffix in (("GET", ""), ("POST", "/approve"), ("POST", "/undo")):
            assert (await other.request(method, url + suffix)).status_code == 404
    assert "I live in Sacramento." in await _texts(client)
