"""A chat turn writes one usage-ledger row per model call (each call of its tool
loop), with the chat's project and assistant, priced as its message; the model-made
title writes its own row (``title``). Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from apihelpers import Client, ledger_rows, parse_sse
from parley.errors import ProviderUnavailable
from parley.messages import ToolCall, Usage
from parley.providers.base import ModelInfo
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage import Database
from parley.storage.tables import Conversation

PRICED = ModelInfo(provider="scripted", name="scripted", input_price=2.0, output_price=8.0)


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Hello from the scripted model.", info=PRICED)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"memory_auto": False}  # only the calls each test scripts


async def new_chat(client: Client, app: Any, project: str | None = None) -> str:
    if project is None:
        r = await client.post("/api/conversations", json={"model": "scripted/scripted"})
        plain: str = r.json()["id"]
        return plain
    # a chat with an assistant, in a project (projects have no routes yet: the scope
    # is set as stored)
    made = await client.post("/api/assistants", json={"config": {"name": "Asst"}})
    assistant = made.json()["id"]
    started = await client.post(f"/api/assistants/{assistant}/chats", json={})
    conv: str = started.json()["conversation_id"]
    async with app.state.services.require(Database).session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conv)
            .values(project_id=project, model="scripted/scripted")
        )
        await session.commit()
    return conv


async def test_a_tool_loop_with_two_model_calls_writes_two_rows(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    scripted.enqueue(
        Reply(
            text="Let me compute.",
            tool_calls=[ToolCall("call_1", "calculator", '{"expression": "6*7"}')],
            usage=Usage(300, 20),
        ),
        Reply(text="It is 42.", usage=Usage(360, 6)),
    )
    conv = await new_chat(client, app, project="proj1")
    assistant_id = (await client.get(f"/api/conversations/{conv}")).json()["conversation"][
        "assistant_id"
    ]
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "6*7?"})
    message = dict(parse_sse(r.text))["done"]["message"]
    rows = await ledger_rows(app)
    assert [(row.endpoint, row.input_tokens, row.output_tokens, row.outcome) for row in rows] == [
        ("chat", 300, 20, "ok"),
        ("chat", 360, 6, "ok"),
    ]
    for row in rows:
        assert (row.user_id, row.conversation_id, row.api_key_id) == (user["id"], conv, None)
        assert (row.project_id, row.assistant_id) == ("proj1", assistant_id)
        assert (row.provider, row.model) == ("scripted", "scripted/scripted")
        assert row.latency_ms >= 0
    assert [row.cost for row in rows] == pytest.approx(
        [(300 * 2 + 20 * 8) / 1e6, (360 * 2 + 6 * 8) / 1e6]
    )
    # the message keeps the turn's totals, the sum of its rows
    assert (message["input_tokens"], message["output_tokens"]) == (660, 26)
    assert message["cost"] == pytest.approx(sum(row.cost for row in rows))


async def test_a_failed_call_is_a_row_with_the_error_code(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    scripted.enqueue(Reply(text="Half an ans", error=ProviderUnavailable("down"), error_after=2))
    conv = await new_chat(client, app)
    await client.post(f"/api/conversations/{conv}/messages", json={"content": "hi"})
    (row,) = await ledger_rows(app)
    assert (row.endpoint, row.outcome) == ("chat", "provider_unavailable")
    assert row.output_tokens > 0  # what streamed before the failure is counted


@pytest.mark.parametrize("overrides", [{"title_model": None, "memory_auto": False}])
async def test_the_model_made_title_is_its_own_row(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    scripted.enqueue(
        Reply(text="Use sorted().", usage=Usage(40, 4)),
        Reply(text="Sorting lists", usage=Usage(70, 3)),
    )
    conv = await new_chat(client, app)
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "sort how?"})
    assert [name for name, _ in parse_sse(r.text)][-1] == "title"
    rows = await ledger_rows(app)
    assert sorted((row.endpoint, row.input_tokens, row.output_tokens) for row in rows) == [
        ("chat", 40, 4),
        ("title", 70, 3),
    ]
    title = next(row for row in rows if row.endpoint == "title")
    assert (title.conversation_id, title.outcome) == (conv, "ok")
    assert title.cost == pytest.approx((70 * 2 + 3 * 8) / 1e6)
