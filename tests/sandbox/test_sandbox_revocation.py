"""Disabling a user kills their code kernels at once, mid-run included (the real
sandbox, in the real app)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from apihelpers import make_client, parse_sse, signup
from parley.messages import ToolCall
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel

SLOW = "import time\nfor _ in range(1200):\n    time.sleep(0.05)\n"  # about 60 s


def _answer(request: ChatRequest) -> Reply | str:
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role == "user" and last.content == "run it":
        return Reply(tool_calls=[ToolCall("c1", "run_python", json.dumps({"code": SLOW}))])
    return "Done."


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default=_answer)


async def test_disabling_a_user_kills_their_running_code(app: Any) -> None:
    manager = app.state.features["sandbox"].manager
    async with make_client(app) as admin, make_client(app) as client:
        await signup(admin, "admin@example.com")  # the first account: the administrator
        me = await signup(client, "coder@example.com")
        made = await client.post("/api/conversations", json={"model": "scripted/scripted"})
        conv = made.json()["id"]
        turn = asyncio.create_task(
            client.post(f"/api/conversations/{conv}/messages", json={"content": "run it"})
        )
        deadline = time.monotonic() + 60
        while manager.kernel_count(me["id"]) == 0:  # the code is running in its kernel
            assert time.monotonic() < deadline and not turn.done(), "the code never started"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        disabled_at = time.monotonic()
        r = await admin.patch(f"/api/admin/users/{me['id']}", json={"status": "disabled"})
        assert r.status_code == 200
        response = await asyncio.wait_for(turn, 30)
        took = time.monotonic() - disabled_at
    # the code alone would run for a minute; a loaded CI machine needs seconds to tear down
    assert took < 5.0, f"the turn ran on for {took:.2f} s"
    assert manager.kernel_count(me["id"]) == 0
    done = dict(parse_sse(response.text))["done"]
    assert done["message"]["status"] == "cancelled"
