"""Automatic titles: the question's first line at once, then a model-made title in
the background (``parley.turns.titles``), over real HTTP on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apihelpers import Client, parse_sse
from parley.errors import ProviderUnavailable
from parley.providers.scripted import Reply, ScriptedModel
from parley.turns.titles import clean_model_title, heuristic_title


@pytest.fixture
def overrides() -> dict[str, Any]:
    # the chat's model (the suite's default is "none"); no memory calls in between
    return {"title_model": None, "memory_auto": False}


async def first_turn(client: Client, question: str) -> tuple[str, list[tuple[str, Any]]]:
    r = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    assert r.status_code == 201, r.text
    conv: str = r.json()["id"]
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": question})
    assert r.status_code == 200, r.text
    return conv, parse_sse(r.text)


async def stored_title(client: Client, conv: str) -> str:
    title: str = (await client.get(f"/api/conversations/{conv}")).json()["conversation"]["title"]
    return title


async def test_the_model_names_the_chat_after_the_first_answer(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue("Use `sorted(xs, key=len)`.", '"Sorting a list by length."')
    conv, events = await first_turn(client, "how do I sort *python* lists by length?\nthanks")
    names = [name for name, _ in events]
    # done first (the answer does not wait), then the first line, then the model's title
    assert names[-3:] == ["done", "title", "title"]
    titles = [data["title"] for name, data in events if name == "title"]
    assert titles == ["How do I sort python lists by length?", "Sorting a list by length"]
    assert await stored_title(client, conv) == "Sorting a list by length"
    title_request = scripted.requests[-1]
    assert "title" in title_request.messages[0].content.lower()
    assert "sort *python* lists" in title_request.messages[-1].content
    assert "sorted(xs, key=len)" in title_request.messages[-1].content
    # only the first answer makes a title
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "and reversed?"})
    assert "title" not in [name for name, _ in parse_sse(r.text)]
    assert len(scripted.requests) == 3


@pytest.mark.parametrize(
    "reply",
    [
        Reply(error=ProviderUnavailable("connection refused")),
        "Here is a title:\nSorting\nLists",  # several lines
        "x" * 80,  # too long
        "Write a short title (3 to 6 words) for the conversation below.",  # an echo
        '""',
    ],
    ids=["fails", "lines", "long", "echo", "empty"],
)
async def test_a_failing_or_junk_title_keeps_the_first_line(
    client: Client, user: Any, scripted: ScriptedModel, reply: Any
) -> None:
    scripted.enqueue("2*3 = 6.", reply)
    conv, events = await first_turn(client, "what is 2*3?")
    titles = [data["title"] for name, data in events if name == "title"]
    assert titles == ["What is 2*3?"]  # the lone * is kept
    assert await stored_title(client, conv) == "What is 2*3?"
    assert [
        m["status"] for m in (await client.get(f"/api/conversations/{conv}")).json()["messages"]
    ] == ["complete", "complete"]


async def test_a_rename_during_the_title_call_wins(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue("Fine.", Reply(text="Model title", delay_s=0.3))
    r = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    conv = r.json()["id"]

    async def rename_soon() -> None:
        for _ in range(100):
            if len(scripted.requests) == 2:  # the title call has started
                break
            await asyncio.sleep(0.02)
        r = await client.patch(f"/api/conversations/{conv}", json={"title": "Mine"})
        assert r.status_code == 200, r.text

    renamer = asyncio.create_task(rename_soon())
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "hello there"})
    await renamer
    assert [d["title"] for n, d in parse_sse(r.text) if n == "title"] == ["Hello there"]
    assert await stored_title(client, conv) == "Mine"


def test_first_line_titles_keep_what_the_user_wrote() -> None:
    assert heuristic_title("# **Plan** a [trip](http://x.test) to *Rome*") == "Plan a trip to Rome"
    assert heuristic_title("- 3*4*5 volume") == "3*4*5 volume"
    assert heuristic_title("   \n\n") == "New chat"
    assert clean_model_title("Title: **Trip to Rome**") == "Trip to Rome"
    assert clean_model_title("“Rome in three days”.") == "Rome in three days"
    assert clean_model_title("***") is None
    assert clean_model_title("Sure! Here is a title for you: Rome") == "Rome"
