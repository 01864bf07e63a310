"""Updates that never destroy, through real turns: the scripted memory model plays
an extractor that labels *every* second message as an update of the first (the
worst case a weak model produces); the attribute keys decide. True updates
replace the memory and keep the old text in its history (restorable); same-topic
facts about another attribute leave the first memory as it was."""

from __future__ import annotations

import re
from typing import Any

import pytest
from update_pairs import SAME_TOPIC, TRUE_UPDATES

from apihelpers import Client, make_client, signup
from parley.memory.attributes import attribute_key
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel


class Extractor:
    """Adds the first message of a pair; labels the second an update of the first."""

    def __init__(self) -> None:
        self.old: str | None = None

    def __call__(self, request: ChatRequest) -> Reply | dict[str, Any]:
        if request.response_format is None:
            return Reply(text="Summary.")
        prompt = request.messages[-1].content
        message = prompt.split("<user_message>\n", 1)[1].split("\n</user_message>", 1)[0]
        if self.old is None or message == self.old:
            return {"memories": [{"action": "add", "fact": message, "memory": 0}]}
        numbered = re.findall(r"^(\d+)\. (.*)$", prompt, re.MULTILINE)
        index = next(
            (int(n) for n, text in numbered if text.rstrip(".") == self.old.rstrip(".")), 1
        )
        return {"memories": [{"action": "update", "fact": message, "memory": index}]}


@pytest.fixture
def extractor() -> Extractor:
    return Extractor()


@pytest.fixture
def memory_model(extractor: Extractor) -> ScriptedModel:
    return ScriptedModel(default=extractor)


async def _memories(client: Client, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    response = await client.get("/api/memories", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _pair(client: Client, say: Any, extractor: Extractor, old: str, new: str) -> None:
    assert (await client.delete("/api/memories")).status_code == 200
    extractor.old = None
    await say(old)
    assert [m["text"] for m in await _memories(client)] == [old]
    extractor.old = old
    await say(new)


def test_attribute_keys_of_the_pairs() -> None:
    """The deterministic half on its own: equal keys exactly for the true updates."""
    for old, new in TRUE_UPDATES:
        assert attribute_key(old) is not None and attribute_key(old) == attribute_key(new), (
            old,
            new,
        )
    for old, new in SAME_TOPIC:
        key = attribute_key(old)
        assert key is None or key != attribute_key(new), (old, new)


async def test_true_updates_replace_and_keep_history(
    client: Client, user: dict[str, Any], say: Any, extractor: Extractor
) -> None:
    assert len(TRUE_UPDATES) >= 10
    for old, new in TRUE_UPDATES:
        await _pair(client, say, extractor, old, new)
        active = await _memories(client, "active")
        assert [m["text"] for m in active] == [new], (old, new, active)
        assert active[0]["history_count"] == 1, (old, new)
        history = (await client.get(f"/api/memories/{active[0]['id']}/history")).json()
        assert [v["text"] for v in history["items"]] == [old]
        assert await _memories(client, "pending") == []


async def test_same_topic_other_attribute_never_replaces(
    client: Client, user: dict[str, Any], say: Any, extractor: Extractor
) -> None:
    assert len(SAME_TOPIC) >= 10
    for old, new in SAME_TOPIC:
        await _pair(client, say, extractor, old, new)
        active = await _memories(client, "active")
        pending = await _memories(client, "pending")
        assert old in [m["text"] for m in active], (old, new, active)
        # Added beside it, or (no key either side) waiting as a proposal: never lost.
        assert new in [m["text"] for m in active + pending], (old, new, active, pending)
        assert all(m["history_count"] == 0 for m in active)


async def test_restore_brings_the_old_text_back_and_keeps_the_newer_one(
    client: Client, user: dict[str, Any], say: Any
) -> None:
    await say("Remember that I live in Paris")
    await say("Remember that I moved to Lyon")
    [memory] = await _memories(client)
    assert memory["text"] == "I moved to Lyon."
    [version] = (await client.get(f"/api/memories/{memory['id']}/history")).json()["items"]
    assert version["text"] == "I live in Paris." and version["reason"] == "updated"
    restored = await client.post(f"/api/memories/{memory['id']}/history/{version['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["text"] == "I live in Paris."
    assert restored.json()["history_count"] == 1
    history = (await client.get(f"/api/memories/{memory['id']}/history")).json()["items"]
    assert [v["text"] for v in history] == ["I moved to Lyon."]
    missing = await client.post(f"/api/memories/{memory['id']}/history/nope/restore")
    assert missing.status_code == 404


async def test_edits_and_approved_proposals_keep_history(
    client: Client, user: dict[str, Any], say: Any
) -> None:
    created = (await client.post("/api/memories", json={"text": "I play chess"})).json()
    edited = await client.patch(f"/api/memories/{created['id']}", json={"text": "I play go"})
    assert edited.json()["history_count"] == 1
    history = (await client.get(f"/api/memories/{created['id']}/history")).json()["items"]
    assert [(v["text"], v["reason"]) for v in history] == [("I play chess.", "edited")]


async def test_history_is_private(app: Any, client: Client, user: dict[str, Any]) -> None:
    created = (await client.post("/api/memories", json={"text": "I play chess"})).json()
    await client.patch(f"/api/memories/{created['id']}", json={"text": "I play go"})
    [version] = (await client.get(f"/api/memories/{created['id']}/history")).json()["items"]
    async with make_client(app) as other:
        await signup(other, "mallory@example.com")
        assert (await other.get(f"/api/memories/{created['id']}/history")).status_code == 404
        restore = f"/api/memories/{created['id']}/history/{version['id']}/restore"
        assert (await other.post(restore)).status_code == 404
    assert (await client.get("/api/memories")).json()["items"][0]["text"] == "I play go."
