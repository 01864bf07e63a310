"""With ``redis_url`` set, a decision taken on one worker wakes the turn waiting
on another through Redis pub/sub (the real Redis), while the database row stays
the truth: without Redis (or with it unreachable) the turn still finds the
decision by reading the row.

The fallback polling and the confirmation timeout are an hour long here, so a
turn that pub/sub did not wake never finishes (``wait_for`` guards the hang).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_web_confirm import send, wait_for_pending
from webtools_helpers import Client, make_client, parse_sse

from apihelpers import MakeApp
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import Tool, tool
from parley.turns import TurnService
from parley.turns.hooks import TOOL_CONFIRMER
from parley.web_tools import confirm as confirm_module

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE = "redis://127.0.0.1:1/0"


def mail_tool(sent: list[str]) -> Tool:
    @tool(side_effecting=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    return send_email


@pytest.fixture(autouse=True)
async def _redis_is_there() -> None:
    from redis import asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}): start it or set "
                    "PARLEY_TEST_REDIS_URL")  # fmt: skip
    finally:
        await client.aclose()


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"redis_url": REDIS_URL, "tool_confirm_timeout_s": 3600.0}


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
def only_pubsub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting turns read the row at most hourly: only a pub/sub message wakes them."""
    monkeypatch.setattr(confirm_module, "FALLBACK_POLL_S", 3600.0)


@pytest.fixture
async def worker_a(only_pubsub: None, app: Any, sent: list[str], scripted: ScriptedModel) -> Any:
    app.state.services.require(TurnService).tools.register(mail_tool(sent))
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("call_1", "send_email", '{"to": "bob@example.com"}')]),
        lambda request: f"Tool said: {request.messages[-1].content}",
    )
    return app


@pytest.fixture
async def worker_b(only_pubsub: None, make_app: MakeApp, sent: list[str]) -> AsyncIterator[Any]:
    """Another app on the same database and Redis (what a second worker is)."""
    async with make_app() as other:
        other.state.services.require(TurnService).tools.register(mail_tool(sent))
        yield other


async def decide_elsewhere(
    worker: Any, client: Client, conversation: str, approve: bool
) -> dict[str, Any]:
    async with make_client(worker) as elsewhere:
        elsewhere.cookies = client.cookies  # the same browser session, another worker
        decided = await elsewhere.post(
            f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": approve}
        )
    assert decided.status_code == 200, decided.text
    result: dict[str, Any] = decided.json()
    return result


@pytest.mark.parametrize("approve", [True, False])
async def test_pubsub_wakes_the_turn_on_another_worker(
    worker_a: Any,
    worker_b: Any,
    client: Client,
    conversation: str,
    sent: list[str],
    approve: bool,
) -> None:
    assert worker_a.state.services.require(TOOL_CONFIRMER).listening
    assert worker_b.state.services.require(TOOL_CONFIRMER).listening
    turn = await send(client, conversation)
    await wait_for_pending(client, conversation)
    decided = await decide_elsewhere(worker_b, client, conversation, approve)
    assert decided["status"] == ("approved" if approve else "denied")
    message = dict(parse_sse((await asyncio.wait_for(turn, 30)).text))["done"]["message"]
    step = message["steps"][0]
    # approved: it ran (a timeout would have denied it); denied: told so, not "no answer"
    assert sent == (["bob@example.com"] if approve else [])
    assert step["is_error"] is (not approve)
    assert ("sent to bob@example.com" in message["content"]) is approve
    # the row is the record: decided once, nothing left pending
    assert (await client.get(f"/api/conversations/{conversation}/tool-calls")).json()["items"] == []


async def test_unreachable_redis_is_not_fatal(db: Any) -> None:
    """Redis away at start: the confirmer starts anyway and turns read the row
    (every ``POLL_S``, as without Redis; ``test_decision_taken_on_another_worker``)."""
    confirmer = confirm_module.DbConfirmer(db, 5.0, redis_url=UNREACHABLE)
    await confirmer.start()
    try:
        assert not confirmer.listening
    finally:
        await confirmer.aclose()


async def test_a_message_for_another_call_decides_nothing(
    worker_a: Any, client: Client, conversation: str, sent: list[str]
) -> None:
    """A wake-up only says "read the row": a forged or stray message cannot approve."""
    from redis import asyncio as aioredis

    turn = await send(client, conversation)
    pending = await wait_for_pending(client, conversation)
    message_id = (await client.get(f"/api/conversations/{conversation}/tool-calls")).json()[
        "items"
    ][0]["message_id"]
    assert pending[0]["id"] == "call_1"
    publisher = aioredis.from_url(REDIS_URL)
    try:
        for payload in ('["x", "call_1"]', f'["{message_id}", "call_1"]', "not json"):
            await publisher.publish(confirm_module.CHANNEL, payload)
        # still waiting: the row says pending
        items = (await client.get(f"/api/conversations/{conversation}/tool-calls")).json()["items"]
        assert [i["status"] for i in items] == ["pending"]
        assert not turn.done() and sent == []
    finally:
        await publisher.aclose()
    decided = await client.post(
        f"/api/conversations/{conversation}/tool-calls/call_1", json={"approve": False}
    )
    assert decided.status_code == 200
    await asyncio.wait_for(turn, 30)
    assert sent == []
