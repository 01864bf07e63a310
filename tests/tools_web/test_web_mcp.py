"""MCP servers over stdio and streamable HTTP: admin-only registration, tools
offered like built-ins, confirmation for side-effecting ones, URL checks."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webtools_helpers import Client, make_client, parse_sse, signup

from apihelpers import MakeApp
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.turns import TurnService

SERVER = str(Path(__file__).with_name("mcp_fixture_server.py"))


def stdio_server(name: str = "fx", **extra: Any) -> dict[str, Any]:
    return {"name": name, "transport": "stdio", "command": sys.executable, "args": [SERVER]} | extra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, "the MCP HTTP server exited"
            assert time.monotonic() < deadline, "the MCP HTTP server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def add_server(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/admin/mcp", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_only_admins_manage_mcp_servers(
    client: Client, admin: dict[str, Any], app: Any
) -> None:
    async with make_client(app) as user:
        await signup(user, "user@example.com")
        assert (await user.post("/api/admin/mcp", json=stdio_server())).status_code == 403
        assert (await user.get("/api/admin/mcp")).status_code == 403
        assert (await user.delete("/api/admin/mcp/anything")).status_code == 403
        assert (await user.patch("/api/admin/mcp/x", json={"enabled": False})).status_code == 403
    assert (await client.get("/api/admin/mcp")).json()["items"] == []


async def test_stdio_server_tools_appear_like_builtins(
    client: Client, admin: dict[str, Any]
) -> None:
    server = await add_server(client, stdio_server(env={"FIXTURE_SECRET": "s3cret"}))
    assert server["status"] == "connected", server
    assert server["env_keys"] == ["FIXTURE_SECRET"] and "s3cret" not in json.dumps(server)
    tools = {t["name"]: t["side_effecting"] for t in server["tools"]}
    assert tools == {
        "fx__add": False,
        "fx__delete_file": True,
        "fx__note": True,  # no annotations: assumed to change the world
        "fx__show_env": False,
    }
    listed = {t["name"]: t for t in (await client.get("/api/tools")).json()["items"]}
    assert listed["fx__add"]["source"] == "mcp"
    assert listed["fx__add"]["parameters"]["required"] == ["a", "b"]
    assert listed["fx__delete_file"]["side_effecting"] is True
    again = await client.get("/api/admin/mcp")
    assert "s3cret" not in again.text and again.json()["items"][0]["status"] == "connected"


async def test_mcp_tools_run_in_turns_and_side_effecting_ones_wait(
    client: Client, admin: dict[str, Any], conversation: str, scripted: ScriptedModel
) -> None:
    await add_server(client, stdio_server(env={"FIXTURE_SECRET": "s3cret"}))
    scripted.enqueue(
        Reply(
            tool_calls=[
                ToolCall("c1", "fx__add", '{"a": 2, "b": 40}'),
                ToolCall("c2", "fx__show_env", '{"name": "FIXTURE_SECRET"}'),
                ToolCall("c3", "fx__show_env", '{"name": "PARLEY_FETCH_ALLOW_HOSTS"}'),
            ]
        ),
        "added",
        Reply(tool_calls=[ToolCall("d1", "fx__delete_file", '{"path": "/tmp/x"}')]),
        "deleted",
    )
    first = parse_sse(
        (
            await client.post(
                f"/api/conversations/{conversation}/messages", json={"content": "add"}
            )
        ).text
    )
    assert "tool_confirm" not in [name for name, _ in first]
    outputs = [s["output"] for s in dict(first)["done"]["message"]["steps"]]
    assert outputs == ["42", "s3cret", "<unset>"]  # the server's env is its own, not ours

    turn = asyncio.create_task(
        client.post(f"/api/conversations/{conversation}/messages", json={"content": "delete"})
    )
    for _ in range(300):
        pending = (await client.get(f"/api/conversations/{conversation}/tool-calls")).json()
        if pending["items"]:
            break
        await asyncio.sleep(0.02)
    assert pending["items"][0]["name"] == "fx__delete_file"
    await client.post(f"/api/conversations/{conversation}/tool-calls/d1", json={"approve": True})
    second = dict(parse_sse((await asyncio.wait_for(turn, 20)).text))
    assert second["done"]["message"]["steps"][0]["output"] == "deleted /tmp/x"


async def test_streamable_http_server(
    client: Client, admin: dict[str, Any], conversation: str, scripted: ScriptedModel,
    http_server: str,
) -> None:  # fmt: skip
    server = await add_server(client, {"name": "web-fx", "transport": "http", "url": http_server})
    assert server["status"] == "connected", server
    assert "web-fx__add" in {t["name"] for t in server["tools"]}
    scripted.enqueue(Reply(tool_calls=[ToolCall("h", "web-fx__add", '{"a": 1, "b": 2}')]), "3")
    events = parse_sse(
        (
            await client.post(
                f"/api/conversations/{conversation}/messages", json={"content": "1+2"}
            )
        ).text
    )
    assert dict(events)["done"]["message"]["steps"][0]["output"] == "3"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://169.254.169.254/mcp", "url_blocked"),
        ("http://[::ffff:127.0.0.2]:9/mcp", "url_blocked"),
        ("http://10.0.0.8/mcp", "url_blocked"),
        ("file:///etc/passwd", "url_blocked"),
        ("http://admin@example.com/mcp", "url_blocked"),
    ],
)
async def test_http_server_urls_are_checked(
    client: Client, admin: dict[str, Any], url: str, code: str
) -> None:
    response = await client.post(
        "/api/admin/mcp", json={"name": "bad", "transport": "http", "url": url}
    )
    assert response.status_code == 422 and response.json()["code"] == code
    assert (await client.get("/api/admin/mcp")).json()["items"] == []


async def test_http_server_name_resolving_inside_is_blocked_at_connect(
    client: Client, admin: dict[str, Any], http_server: str
) -> None:
    port = http_server.split(":")[2].split("/")[0]
    server = await add_server(
        client, {"name": "sneaky", "transport": "http", "url": f"http://localhost:{port}/mcp"}
    )
    assert server["status"] == "error" and server["tools"] == []
    assert "internal host name" in server["error"]


async def test_validation_disable_and_delete(
    client: Client, admin: dict[str, Any], app: Any
) -> None:
    bad = [
        {"name": "x", "transport": "stdio"},
        {"name": "x", "transport": "http", "command": "ls"},
        {"name": "Bad Name", "transport": "stdio", "command": "ls"},
        stdio_server(env={"BAD-NAME": "1"}),
    ]
    for body in bad:
        assert (await client.post("/api/admin/mcp", json=body)).status_code == 422, body
    server = await add_server(client, stdio_server())
    assert (await client.post("/api/admin/mcp", json=stdio_server())).status_code == 409
    registry = app.state.services.require(TurnService).tools
    assert "fx__add" in registry

    disabled = await client.patch(f"/api/admin/mcp/{server['id']}", json={"enabled": False})
    assert disabled.json()["status"] == "disabled" and "fx__add" not in registry
    enabled = await client.patch(f"/api/admin/mcp/{server['id']}", json={"enabled": True})
    assert enabled.json()["status"] == "connected" and "fx__add" in registry

    assert (await client.delete(f"/api/admin/mcp/{server['id']}")).status_code == 204
    assert "fx__add" not in registry
    assert (await client.get("/api/admin/mcp")).json()["items"] == []
    assert (await client.delete(f"/api/admin/mcp/{server['id']}")).status_code == 404


async def test_other_workers_pick_up_changes_from_the_database(
    client: Client, admin: dict[str, Any], make_app: MakeApp
) -> None:
    async with make_app() as other:
        await add_server(client, stdio_server())
        assert "fx__add" not in other.state.services.require(TurnService).tools
        await other.state.features["tools"].hub.sync()  # what the periodic refresh does
        assert "fx__add" in other.state.services.require(TurnService).tools


async def test_a_refresh_with_nothing_changed_keeps_the_connection(
    app: Any, client: Client, admin: dict[str, Any]
) -> None:
    """The periodic refresh must not restart servers: a call landing mid-restart
    would hang or lose its tool (and with it the confirmation it needs)."""
    await add_server(client, stdio_server())
    manager = app.state.features["tools"]._hub
    before = dict(manager.connections)
    await manager.sync()
    await manager.sync()
    assert manager.connections == before
    assert all(manager.connections[k] is conn for k, conn in before.items())
