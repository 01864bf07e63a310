"""Work off the reply path and within budgets: extraction never holds the reply back,
stored summaries are refreshed incrementally (previous summary + newly covered turns
only), and the recall block keeps to its token budget while listing exactly the
memories it used."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apihelpers import Client, parse_sse
from parley.engine.tokens import estimate_tokens
from parley.memory.context import MemoryContext
from parley.providers.base import ChatRequest, ModelInfo
from parley.providers.scripted import Reply, ScriptedModel
from parley.turns import TurnService


class GatedModel(ScriptedModel):
    """A scripted model whose every answer waits until ``gate`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[Any]:
        self.waiting += 1
        await self.gate.wait()
        async for event in super().stream(request):
            yield event


@pytest.fixture
def chat() -> ScriptedModel:
    # A 1,000-token window: 650 tokens of history budget, summary due past 455.
    info = ModelInfo("scripted", "chat", context_window=1000, max_output_tokens=200)
    return ScriptedModel(default="Noted.", info=info)


@pytest.fixture
def memory_model(extraction: list[dict[str, Any]]) -> GatedModel:
    def answer(request: ChatRequest) -> Reply | dict[str, Any]:
        if request.response_format is not None:
            ops = list(extraction)
            extraction.clear()
            return {"memories": ops}
        return Reply(text="Summary of the otters talk.")

    return GatedModel(default=answer)


async def _memories(client: Client) -> list[str]:
    return [m["text"] for m in (await client.get("/api/memories")).json()["items"]]


async def test_extraction_never_holds_the_reply_back(
    app: Any,
    client: Client,
    user: dict[str, Any],
    memory_model: GatedModel,
    extraction: list[dict[str, Any]],
    settled: Any,
) -> None:
    memory_model.gate.clear()  # the memory model does not answer until released
    extraction.append({"action": "add", "fact": "I keep bees in my garden", "memory": 0})
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    posted = asyncio.create_task(
        client.post(
            f"/api/conversations/{conv}/messages",
            json={"content": "I keep bees in my garden; which flowers do they like?"},
        )
    )
    for _ in range(500):  # extraction did start, after the reply, and is still waiting
        if memory_model.waiting:
            break
        await asyncio.sleep(0.01)
    assert memory_model.waiting == 1
    # The answer is complete and stored meanwhile (the stream stays open only for
    # the memory's late event; tests/api/test_late_events.py times `done` itself).
    [_, answer] = (await client.get(f"/api/conversations/{conv}")).json()["messages"]
    assert answer["status"] == "complete" and answer["content"] == "Noted."
    assert await _memories(client) == []
    assert not posted.done()
    memory_model.gate.set()
    response = await asyncio.wait_for(posted, timeout=60)
    events = parse_sse(response.text)
    assert dict(events)["done"]["message"]["status"] == "complete"
    assert [name for name, _ in events][-1] == "memory_updated"
    await settled()
    assert await _memories(client) == ["I keep bees in my garden."]


def _long(topic: str) -> str:
    return f"{topic}: " + "otters float on their backs and hold paws " * 14


async def _send(client: Client, conv: str, content: str) -> None:
    response = await client.post(f"/api/conversations/{conv}/messages", json={"content": content})
    assert dict(parse_sse(response.text))["done"]["message"]["status"] == "complete"


async def test_the_stored_summary_is_refreshed_incrementally(
    app: Any,
    client: Client,
    user: dict[str, Any],
    chat: ScriptedModel,
    memory_model: GatedModel,
    settled: Any,
) -> None:
    memory_model.enqueue(Reply(text="First summary: turns 0 and 1."))
    memory_model.enqueue(Reply(text="Second summary: turns 0 to 3."))
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    for n in range(3):
        await _send(client, conv, _long(f"turn {n}"))
        await settled()
    first = (await client.get(f"/api/conversations/{conv}")).json()
    assert first["summary"]["text"] == "First summary: turns 0 and 1."
    assert len(memory_model.requests) == 1

    await _send(client, conv, _long("turn 3"))
    await settled()
    assert len(memory_model.requests) == 1  # not recomputed on every turn
    await _send(client, conv, _long("turn 4"))
    await settled()
    assert len(memory_model.requests) == 2
    refresh = memory_model.requests[1].messages[-1].content
    assert "First summary: turns 0 and 1." in refresh  # builds on the stored summary
    assert "turn 2" in refresh and "turn 3" in refresh
    for old in ("turn 0", "turn 1", "turn 4"):
        assert old not in refresh  # only the newly covered turns are sent again
    second = (await client.get(f"/api/conversations/{conv}")).json()
    assert second["summary"]["text"] == "Second summary: turns 0 to 3."
    ids = [m["id"] for m in second["messages"]]
    assert ids.index(second["summary"]["until_message_id"]) > ids.index(
        first["summary"]["until_message_id"]
    )
    await _send(client, conv, "one more short question")
    sent = chat.requests[-1].messages
    assert "Second summary: turns 0 to 3." in sent[0].content
    assert [m.content.split(":")[0] for m in sent[1:-1]] == ["turn 4", "Noted."]


async def test_the_recall_block_keeps_to_its_budget_and_lists_what_it_used(
    app: Any, client: Client, user: dict[str, Any], chat: ScriptedModel
) -> None:
    source = next(
        s
        for s in app.state.services.require(TurnService).context_sources
        if isinstance(s, MemoryContext)
    )
    source.budget_tokens, source.k = 120, 20
    names = ["amber", "basil", "cobalt", "dune", "ember", "fjord", "garnet", "hazel"]
    names += ["indigo", "juniper", "koala", "lagoon", "mango", "nectar", "onyx", "pepper"]
    names += ["quill", "raven", "saffron", "tundra"]
    for n, name in enumerate(names):
        text = f"I grew {name} tomatoes in garden bed {n}"
        assert (await client.post("/api/memories", json={"text": text})).status_code == 201
    saved = len(await _memories(client))
    assert saved >= 15  # distinct facts (a hashing collision may merge a pair)
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    response = await client.post(
        f"/api/conversations/{conv}/messages",
        json={"content": "Which tomatoes grew in my garden beds?"},
    )
    used = [
        s for s in dict(parse_sse(response.text))["sources"]["sources"] if s["kind"] == "memory"
    ]
    prompt = chat.requests[-1].messages[0].content
    block = re.search(r"<saved_memories>\n(.*?)\n</saved_memories>", prompt, re.S)
    assert block is not None
    assert estimate_tokens(block.group(1)) <= 120
    lines = [line[2:] for line in block.group(1).splitlines() if line.startswith("- ")]
    assert 1 <= len(lines) < min(saved, source.k)  # the budget, not k, cut the list
    assert [s["title"] for s in used] == lines  # "memories used" is exactly what was sent
