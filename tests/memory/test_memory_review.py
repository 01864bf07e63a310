"""Review mode and updates: extraction never changes what the user approved
without asking, and never piles up proposals. An update of a pending memory
rewrites it; an update of an active one waits as one proposal naming that
memory (in its scope), and approving it rewrites the memory (no duplicate)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from apihelpers import Client
from parley.memory.feature import MemoryFeature
from parley.memory.store import MemoryStore
from parley.providers.scripted import ScriptedModel
from parley.storage.db import Database

Say = Callable[..., Awaitable[dict[str, Any]]]


async def listed(client: Client, status: str) -> list[dict[str, Any]]:
    response = await client.get("/api/memories", params={"status": status})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def extraction_prompt(model: ScriptedModel) -> str:
    return model.requests[-1].messages[-1].content


async def review_on(client: Client) -> None:
    r = await client.patch("/api/me", json={"preferences": {"memory_review": True}})
    assert r.status_code == 200, r.text


async def test_update_of_a_pending_memory_replaces_it(
    client: Client,
    user: dict[str, Any],
    say: Say,
    extraction: list[dict[str, Any]],
    memory_model: ScriptedModel,
) -> None:
    await review_on(client)
    extraction.append({"action": "add", "fact": "I live in Paris", "memory": 0})
    await say("I live in Paris, what should I visit first?")
    [first] = await listed(client, "pending")
    assert first["text"] == "I live in Paris." and first["replaces"] is None

    # The model is shown what waits for review, and updates it by number.
    extraction.append({"action": "update", "fact": "I live in Lyon", "memory": 1})
    turn = await say("Sorry, I got that wrong: I live in Lyon, not Paris")
    assert "1. I live in Paris." in extraction_prompt(memory_model)
    after = await listed(client, "pending")
    assert [(m["id"], m["text"]) for m in after] == [(first["id"], "I live in Lyon.")]
    assert after[0]["conversation_id"] == turn["conversation"]  # links to the newer message
    assert await listed(client, "active") == []

    # Restating it (an "add" this time) merges into what waits, too.
    extraction.append({"action": "add", "fact": "I live in Lyon", "memory": 0})
    await say("As I said, I live in Lyon")
    assert [m["id"] for m in await listed(client, "pending")] == [first["id"]]


async def test_update_of_an_approved_memory_waits_as_one_proposal_naming_it(
    client: Client,
    user: dict[str, Any],
    say: Say,
    chat: ScriptedModel,
    extraction: list[dict[str, Any]],
    memory_model: ScriptedModel,
) -> None:
    await say("Remember that I work as a nurse")
    [nurse] = await listed(client, "active")
    await review_on(client)

    extraction.append({"action": "update", "fact": "I now work as a teacher", "memory": 1})
    await say("I now work as a teacher at a primary school")
    assert "1. I work as a nurse." in extraction_prompt(memory_model)
    [proposal] = await listed(client, "pending")
    assert proposal["text"] == "I now work as a teacher."
    assert proposal["replaces"] == {"id": nurse["id"], "text": "I work as a nurse."}
    assert (proposal["scope_type"], proposal["scope_id"]) == (None, None)
    # Until approved, the old memory stays and the proposal is not recalled.
    assert [m["text"] for m in await listed(client, "active")] == ["I work as a nurse."]
    await say("What job do I do?")
    prompt = chat.requests[-1].messages[0].content
    assert "- I work as a nurse." in prompt and "teacher" not in prompt

    # Another update of the same memory replaces the proposal (not a second one),
    # whether the model names the memory or the proposal itself.
    extraction.append({"action": "update", "fact": "I work as a head teacher", "memory": 1})
    await say("Update: I work as a head teacher at the primary school now")
    extraction.append({"action": "update", "fact": "I work as a deputy head teacher", "memory": 2})
    await say("Correction: my work is deputy head teacher at the school")
    assert "2. I work as a head teacher." in extraction_prompt(memory_model)
    [again] = await listed(client, "pending")
    assert (again["id"], again["text"]) == (proposal["id"], "I work as a deputy head teacher.")
    assert again["replaces"]["id"] == nurse["id"]

    # Approving rewrites the memory it names: same id, one memory, nothing waits.
    approved = await client.post(f"/api/memories/{again['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert (approved.json()["id"], approved.json()["text"]) == (
        nurse["id"],
        "I work as a deputy head teacher.",
    )
    active = await listed(client, "active")
    assert [(m["id"], m["text"]) for m in active] == [
        (nurse["id"], "I work as a deputy head teacher.")
    ]
    assert active[0]["message_id"] == again["message_id"]  # now links to where it changed
    assert await listed(client, "pending") == []
    await say("What job do I do?")
    prompt = chat.requests[-1].messages[0].content
    assert "- I work as a deputy head teacher." in prompt and "nurse" not in prompt


async def test_an_update_without_a_number_and_rejection_and_deletion(
    client: Client, user: dict[str, Any], say: Say, extraction: list[dict[str, Any]]
) -> None:
    await say("Remember that I live in Paris")
    [paris] = await listed(client, "active")
    await review_on(client)
    # The model did not name the memory: the change rules find it.
    extraction.append({"action": "update", "fact": "I now live in Berlin", "memory": 0})
    await say("I now live in Berlin since March")
    [proposal] = await listed(client, "pending")
    assert proposal["replaces"]["id"] == paris["id"]
    # Proposing what the memory already says proposes nothing.
    extraction.append({"action": "update", "fact": "I live in Paris", "memory": 1})
    await say("Just to be clear, I live in Paris for now")
    assert [m["id"] for m in await listed(client, "pending")] == [proposal["id"]]

    assert (await client.post(f"/api/memories/{proposal['id']}/reject")).status_code == 204
    assert [(m["id"], m["text"]) for m in await listed(client, "active")] == [
        (paris["id"], "I live in Paris.")
    ]
    # Deleting a memory deletes what was proposed for it.
    extraction.append({"action": "update", "fact": "I now live in Rome", "memory": 1})
    await say("I now live in Rome, actually")
    assert len(await listed(client, "pending")) == 1
    assert (await client.delete(f"/api/memories/{paris['id']}")).status_code == 204
    assert await listed(client, "pending") == []
    assert (await client.get("/api/memories")).json()["counts"] == {}


async def test_explicit_update_settles_a_waiting_proposal(
    client: Client, user: dict[str, Any], say: Say, extraction: list[dict[str, Any]]
) -> None:
    await say("Remember that I live in Paris")
    await review_on(client)
    extraction.append({"action": "update", "fact": "I now live in Berlin", "memory": 1})
    await say("I now live in Berlin since March")
    assert len(await listed(client, "pending")) == 1
    await say("Remember that I now live in Madrid")
    assert [m["text"] for m in await listed(client, "active")] == ["I now live in Madrid."]
    assert await listed(client, "pending") == []


async def test_a_proposal_keeps_the_scope_of_the_memory_it_replaces(
    app: Any, client: Client, user: dict[str, Any], feature: MemoryFeature
) -> None:
    service, project = feature.service, ("project", "p1")
    nurse = (
        await service.remember(user["id"], "I work as a nurse.", source="explicit", scope=project)
    ).memory
    proposed = await service.remember(
        user["id"],
        "I now work as a teacher.",
        source="auto",
        scope=project,
        status="pending",
        replaces=nurse.id,
    )
    row = proposed.memory
    assert proposed.action == "proposed"
    assert (row.scope_type, row.scope_id, row.replaces_id) == ("project", "p1", nurse.id)
    [listed_row] = await listed(client, "pending")
    assert listed_row["replaces"] == {"id": nurse.id, "text": "I work as a nurse."}
    assert (listed_row["scope_type"], listed_row["scope_id"]) == project
    # Elsewhere the memory is out of reach: a new pending memory, not a proposal.
    elsewhere = await service.remember(
        user["id"],
        "I now work as a teacher.",
        source="auto",
        scope=("project", "p2"),
        status="pending",
        replaces=nurse.id,
    )
    assert elsewhere.action == "added" and elsewhere.memory.replaces_id is None
    # The database drops a proposal with its memory (ON DELETE CASCADE).
    async with app.state.services.require(Database).session() as session:
        store = MemoryStore(session, user["id"])
        assert await store.delete(nurse.id)
        await session.commit()
        assert await store.get(row.id) is None
        assert await store.get(elsewhere.memory.id) is not None
