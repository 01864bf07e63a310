"""Side-effecting tool calls wait for the user's decision: in the engine, and
through the API with the decision stored in the database (so it works when the
click lands on another worker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from webtools_helpers import Client, make_client, parse_sse, signup

from apihelpers import MakeApp
from parley.engine import run_tool_loop
from parley.messages import Message, ToolCall, ToolConfirm, ToolResult, ToolStart
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import Tool, ToolRegistry, tool
from parley.turns import TurnService


def mail_tool(sent: list[str]) -> Tool:
    @tool(side_effecting=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    return send_email


@tool
def lookup(term: str) -> str:
    """Look something up (read-only)."""
    return f"{term}: found"


# ---------------------------------------------------------------- engine


@pytest.mark.parametrize("approve", [True, False])
async def test_engine_asks_before_side_effecting_calls_only(approve: bool) -> None:
    sent: list[str] = []
    registry = ToolRegistry([mail_tool(sent), lookup])
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("a", "lookup", '{"term": "x"}'),
                    ToolCall("b", "send_email", '{"to": "eve@example.com"}'),
                ]
            ),
            "ok",
        ]
    )
    asked: list[str] = []

    async def confirm(call: ToolCall) -> bool:
        asked.append(call.id)
        return approve

    events = [e async for e in run_tool_loop(model, [Message("user", "go")], tools=registry,
                                       confirm=confirm)]  # fmt: skip
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolStart") < kinds.index("ToolConfirm") < kinds.index("ToolResult")
    confirms = [e for e in events if isinstance(e, ToolConfirm)]
    assert [(c.id, c.name) for c in confirms] == [("b", "send_email")]
    assert asked == ["b"]
    results = {e.id: e for e in events if isinstance(e, ToolResult)}
    assert results["a"].output == "x: found" and not results["a"].is_error
    assert sent == (["eve@example.com"] if approve else [])
    assert results["b"].is_error is (not approve)
    if not approve:
        assert "did not approve" in results["b"].output


async def test_engine_denies_when_the_confirmation_fails() -> None:
    sent: list[str] = []
    model = ScriptedModel([Reply(tool_calls=[ToolCall("b", "send_email", '{"to": "x"}')]), "ok"])

    async def broken(call: ToolCall) -> bool:
        raise RuntimeError("database down")

    events = [
        e
        async for e in run_tool_loop(
            model, [Message("user", "go")], tools=ToolRegistry([mail_tool(sent)]), confirm=broken
        )
    ]
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.is_error and sent == []


async def test_engine_without_a_confirmer_keeps_its_old_behaviour() -> None:
    sent: list[str] = []
    model = ScriptedModel([Reply(tool_calls=[ToolCall("b", "send_email", '{"to": "x"}')]), "ok"])
    events = [
        e
        async for e in run_tool_loop(
            model, [Message("user", "go")], tools=ToolRegistry([mail_tool(sent)])
        )
    ]
    assert not any(isinstance(e, ToolConfirm) for e in events)
    assert any(isinstance(e, ToolStart) for e in events) and sent == ["x"]


# ---------------------------------------------------------------- API


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
async def mail_app(app: Any, sent: list[str], scripted: ScriptedModel) -> Any:
    app.state.services.require(TurnService).tools.register(mail_tool(sent))
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("call_1", "send_email", '{"to": "bob@example.com"}')]),
        lambda request: f"Tool said: {request.messages[-1].content}",
    )
    return app


async def wait_for_pending(client: Client, conversation: str) -> list[dict[str, Any]]:
    for _ in range(200):
        items: list[dict[str, Any]] = (
            await client.get(f"/api/conversations/{conversation}/tool-calls")
        ).json()["items"]
        if items:
            return items
        await asyncio.sleep(0.02)
    raise AssertionError("no tool call became pending")


async def send(client: Client, conversation: str) -> asyncio.Task[Any]:
    return asyncio.create_task(
        client.post(f"/api/conversations/{conversation}/messages", json={"content": "mail bob"})
    )


@pytest.mark.parametrize("approve", [True, False])
async def test_user_decides_through_the_api(
    mail_app: Any, client: Client, conversation: str, sent: list[str], approve: bool
) -> None:
    turn = await send(client, conversation)
    pending = await wait_for_pending(client, conversation)
    assert [(p["id"], p["name"], p["status"]) for p in pending] == [
        ("call_1", "send_email", "pending")
    ]
    assert sent == []  # nothing runs before the decision
    decided = await client.post(
        f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": approve}
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == ("approved" if approve else "denied")
    events = parse_sse((await asyncio.wait_for(turn, 10)).text)
    confirm = next(data for name, data in events if name == "tool_confirm")
    assert confirm == {
        "id": "call_1",
        "name": "send_email",
        "arguments": '{"to": "bob@example.com"}',
    }
    message = dict(events)["done"]["message"]
    step = message["steps"][0]
    assert step["needs_confirmation"] is True
    assert sent == (["bob@example.com"] if approve else [])
    assert step["is_error"] is (not approve)
    assert ("sent to bob@example.com" in message["content"]) is approve
    # A second answer to the same call is refused.
    again = await client.post(
        f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": True}
    )
    assert again.status_code == 404
    assert (await client.get(f"/api/conversations/{conversation}/tool-calls")).json()["items"] == []


@pytest.mark.parametrize("overrides", [{"tool_confirm_timeout_s": 0.3}])
async def test_no_answer_within_the_timeout_denies(
    mail_app: Any, client: Client, conversation: str, sent: list[str]
) -> None:
    response = await asyncio.wait_for(
        client.post(f"/api/conversations/{conversation}/messages", json={"content": "mail"}), 10
    )
    message = dict(parse_sse(response.text))["done"]["message"]
    assert sent == [] and message["steps"][0]["is_error"] is True
    late = await client.post(
        f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": True}
    )
    assert late.status_code == 404 and sent == []


async def test_stopping_the_turn_expires_the_question(
    mail_app: Any, client: Client, conversation: str, sent: list[str]
) -> None:
    turn = await send(client, conversation)
    await wait_for_pending(client, conversation)
    assert (await client.post(f"/api/conversations/{conversation}/stop")).status_code == 204
    message = dict(parse_sse((await asyncio.wait_for(turn, 10)).text))["done"]["message"]
    assert message["status"] == "cancelled"
    assert (await client.get(f"/api/conversations/{conversation}/tool-calls")).json()["items"] == []
    late = await client.post(
        f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": True}
    )
    assert late.status_code == 404 and sent == []


async def test_another_user_cannot_answer(
    mail_app: Any, client: Client, conversation: str, sent: list[str]
) -> None:
    turn = await send(client, conversation)
    await wait_for_pending(client, conversation)
    async with make_client(mail_app) as mallory:
        await signup(mallory, "mallory@example.com")
        url = f"/api/conversations/{conversation}/tool-calls"
        assert (await mallory.get(url)).status_code == 404
        assert (await mallory.post(f"{url}/call_1", json={"approve": True})).status_code == 404
    await client.post(f"{url}/call_1", json={"approve": False})
    await asyncio.wait_for(turn, 10)
    assert sent == []


@pytest.fixture
async def second_worker(make_app: MakeApp) -> AsyncIterator[Any]:
    """Another app process on the same database (what a second worker is)."""
    async with make_app() as other:
        yield other


async def test_decision_taken_on_another_worker(
    mail_app: Any, second_worker: Any, client: Client, conversation: str, sent: list[str]
) -> None:
    turn = await send(client, conversation)
    await wait_for_pending(client, conversation)
    async with make_client(second_worker) as elsewhere:
        elsewhere.cookies = client.cookies  # same browser session, other worker
        decided = await elsewhere.post(
            f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": True}
        )
    assert decided.status_code == 200
    await asyncio.wait_for(turn, 10)
    assert sent == ["bob@example.com"]
