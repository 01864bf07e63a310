"""Long conversations: older turns are summarized after a turn (never during
one), stored, reused with only the later messages, exposed by the API, and
pinned messages always stay."""

from __future__ import annotations

from typing import Any

import pytest

from apihelpers import Client, parse_sse
from parley.providers.base import ModelInfo
from parley.providers.scripted import Reply, ScriptedModel


@pytest.fixture
def chat() -> ScriptedModel:
    # A 1,000-token window: 650 tokens of history budget, summary due past 455.
    info = ModelInfo("scripted", "chat", context_window=1000, max_output_tokens=200)
    return ScriptedModel(default="Noted.", info=info)


def long_text(topic: str) -> str:
    return f"{topic}: " + "otters float on their backs and hold paws " * 14


async def send(client: Client, conv: str, content: str) -> dict[str, Any]:
    response = await client.post(f"/api/conversations/{conv}/messages", json={"content": content})
    return dict(parse_sse(response.text))


async def test_old_turns_are_summarized_once_and_reused(
    app: Any,
    client: Client,
    user: dict[str, Any],
    chat: ScriptedModel,
    memory_model: ScriptedModel,
    settled: Any,
) -> None:
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    for n in range(2):
        await send(client, conv, long_text(f"turn {n}"))
        await settled()
    assert (await client.get(f"/api/conversations/{conv}")).json()["summary"] is None
    assert memory_model.requests == []  # not needed yet: nothing was summarized
    first_user = (await client.get(f"/api/conversations/{conv}")).json()["messages"][0]
    await client.patch(f"/api/messages/{first_user['id']}", json={"pinned": True})

    await send(client, conv, long_text("turn 2"))
    await settled()
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert view["summary"] == {
        "text": "Summary: the user and the assistant talked about otters.",
        "until_message_id": view["messages"][3]["id"],
    }
    assert len(memory_model.requests) == 1
    folded = memory_model.requests[0].messages[-1].content
    assert "turn 0" in folded and "turn 1" in folded and "turn 2" not in folded

    await send(client, conv, "and one more short question")
    await settled()
    sent = chat.requests[-1].messages
    assert "<conversation_summary>" in sent[0].content
    texts = [m.content for m in sent[1:]]
    assert texts[0].startswith("turn 0")  # pinned: kept although summarized
    assert not any(t.startswith("turn 1") for t in texts)
    assert texts[-1] == "and one more short question"
    assert len(memory_model.requests) == 1  # reused, not recomputed


async def test_summarizing_never_delays_the_reply(
    app: Any,
    client: Client,
    user: dict[str, Any],
    chat: ScriptedModel,
    memory_model: ScriptedModel,
    settled: Any,
) -> None:
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    for n in range(2):
        await send(client, conv, long_text(f"turn {n}"))
        await settled()
    memory_model.enqueue(Reply(text="a slow summary of the otters talk", delay_s=0.4))
    done = (await send(client, conv, long_text("turn 2")))["done"]
    assert done["message"]["status"] == "complete"
    # The summary is written in the background, after the answer was complete.
    assert (await client.get(f"/api/conversations/{conv}")).json()["summary"] is None
    await send(client, conv, "a question while the summary is still running")
    assert (await client.get(f"/api/conversations/{conv}")).json()["summary"] is None
    await settled()
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert view["summary"]["text"] == "a slow summary of the otters talk"


async def test_a_short_chat_is_not_read_again_after_each_turn(
    app: Any,
    client: Client,
    user: dict[str, Any],
    chat: ScriptedModel,
    memory_model: ScriptedModel,
    settled: Any,
) -> None:
    """The turn tells the summarizer how big its history was; under the trigger the
    summarizer does not load the conversation's branch (it used to, after every turn)."""
    from sqlalchemy import event

    from parley.storage.db import Database

    db: Database = app.state.services.require(Database)
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    await send(client, conv, "a short question")
    await settled()
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        await send(client, conv, "another short question")
        await settled()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    path_reads = [s for s in seen if s.startswith("WITH RECURSIVE path")]
    # one walk up the branch: the turn's own history; none by the summarizer
    assert len(path_reads) == 1, path_reads
    assert memory_model.requests == []
