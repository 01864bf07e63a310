"""Each tool call is a step stored with its message (tool, arguments, result,
duration), capped before the model reads it, cut by its own timeout; and an
MCP stdio server never inherits Parley's environment (its secrets)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from webtools_helpers import Client, parse_sse

from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import MAX_OUTPUT_CHARS, tool
from parley.turns import TurnService

SERVER = str(Path(__file__).with_name("mcp_fixture_server.py"))


@pytest.fixture
def registered(app: Any) -> Any:
    @tool
    def shout(word: str, times: int) -> str:
        """Repeat a word many times."""
        return word * times

    @tool(timeout_s=0.2)
    async def hang(reason: str) -> str:
        """Wait for something that never happens."""
        await asyncio.Event().wait()
        return "unreachable"

    app.state.services.require(TurnService).tools.register(shout)
    app.state.services.require(TurnService).tools.register(hang)
    return app


async def test_steps_are_stored_capped_and_timed_out_per_tool(
    registered: Any, client: Client, conversation: str, scripted: ScriptedModel
) -> None:
    shout_args = json.dumps({"word": "otter ", "times": 10_000})  # 60,000 characters out
    scripted.enqueue(
        Reply(
            tool_calls=[
                ToolCall("s1", "shout", shout_args),
                ToolCall("h1", "hang", '{"reason": "test"}'),
            ]
        ),
        "Done.",
    )
    response = await client.post(
        f"/api/conversations/{conversation}/messages", json={"content": "go"}
    )
    events = parse_sse(response.text)
    results = {d["id"]: d for name, d in events if name == "tool_result"}
    assert set(results) == {"s1", "h1"}

    # What the model read: capped, inside the untrusted wrapper.
    fed = [m for m in scripted.requests[1].messages if m.role == "tool"]
    assert len(fed) == 2
    assert len(fed[0].content) < MAX_OUTPUT_CHARS + 500
    assert "[output truncated: 60000 characters" in fed[0].content
    assert fed[0].content.startswith('<tool_output name="shout" status="ok">')
    assert "timed out after 0.2 s" in fed[1].content

    # What is stored with the answer and comes back on reload.
    reloaded = (await client.get(f"/api/conversations/{conversation}")).json()["messages"][-1]
    steps = {s["id"]: s for s in reloaded["steps"]}
    shout = steps["s1"]
    assert shout["name"] == "shout" and json.loads(shout["arguments"]) == json.loads(shout_args)
    assert shout["is_error"] is False
    assert shout["output"].startswith("otter otter") and len(shout["output"]) < 60_000
    assert "[output truncated" in shout["output"]
    assert isinstance(shout["duration_ms"], int | float) and shout["duration_ms"] >= 0
    hang = steps["h1"]
    assert hang["name"] == "hang" and hang["is_error"] is True
    assert "timed out after 0.2 s" in hang["output"]
    assert isinstance(hang["duration_ms"], int | float)
    assert [s["id"] for s in reloaded["steps"]] == ["s1", "h1"]  # the order the model asked


async def test_mcp_stdio_server_gets_none_of_parleys_environment(
    client: Client,
    admin: dict[str, Any],
    conversation: str,
    scripted: ScriptedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-parley-host-secret-7d1"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("PARLEY_SECRET_KEY", secret)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{secret}@db/parley")
    body = {
        "name": "envcheck",
        "transport": "stdio",
        "command": sys.executable,
        "args": [SERVER],
        "env": {"GIVEN": "by-admin"},
    }
    created = await client.post("/api/admin/mcp", json=body)
    assert created.status_code == 201 and created.json()["status"] == "connected", created.text
    names = ["OPENAI_API_KEY", "PARLEY_SECRET_KEY", "DATABASE_URL", "GIVEN"]
    scripted.enqueue(
        Reply(
            tool_calls=[
                ToolCall(f"e{i}", "envcheck__show_env", json.dumps({"name": n}))
                for i, n in enumerate(names)
            ]
        ),
        "checked",
    )
    response = await client.post(
        f"/api/conversations/{conversation}/messages", json={"content": "env?"}
    )
    steps = dict(parse_sse(response.text))["done"]["message"]["steps"]
    assert [s["output"] for s in steps] == ["<unset>", "<unset>", "<unset>", "by-admin"]
    assert secret not in response.text


def test_capping_twice_keeps_the_original_size() -> None:
    from parley.tools import cap_output

    once = cap_output("x" * 500, 100)
    assert cap_output(once, 100) == once and cap_output(once, 200) == once
    assert once.endswith("[output truncated: 500 characters, only the first 100 are shown]")
    # A look-alike note does not let a longer body through.
    forged = "y" * 300 + "\n[output truncated: 9 characters, only the first 300 are shown]"
    assert cap_output(forged, 100).startswith("y" * 100 + "\n[output truncated: ")
    assert len(cap_output(forged, 100)) < 200
