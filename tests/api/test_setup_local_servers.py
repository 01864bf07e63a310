"""First-run setup: model servers running on this machine are found and offered.

Scripted OpenAI-compatible servers (one also answering Ollama's ``/api/tags``)
listen on free loopback ports; the probe list (``local_servers``) names them,
plus a port where nothing listens and Parley's own port.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from apihelpers import make_client, parse_sse, signup
from parley.config import Settings, load_settings
from parley.instance.local_servers import probe_local_servers
from parley.providers.scripted import ScriptedModel
from parley.providers.testing import ScriptedUpstream


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ollama() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(models=["llama3.2:3b", "qwen2.5:7b"], ollama=True) as server:
        yield server


@pytest.fixture
def vllm() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(models=["Qwen/Qwen2.5-7B-Instruct"]) as server:
        yield server


@pytest.fixture
def overrides(ollama: ScriptedUpstream, vllm: ScriptedUpstream) -> dict[str, Any]:
    return {
        "local_servers": [
            f"127.0.0.1:{ollama.port}",
            f"localhost:{vllm.port}",
            str(_closed_port()),
            "127.0.0.1:59999",
        ],
        "port": 59999,  # Parley's own port: never probed
    }


async def test_admin_sees_local_servers_with_their_models(
    app: Any, ollama: ScriptedUpstream, vllm: ScriptedUpstream, settings: Settings
) -> None:
    async with make_client(app) as admin:
        await signup(admin, "admin@example.com")
        started = time.monotonic()
        response = await admin.get("/api/admin/setup/local-servers")
        assert time.monotonic() - started < 3  # concurrent, short timeouts
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["probed"] == settings.local_servers
        found = {item["address"]: item for item in body["items"]}
        assert set(found) == {f"127.0.0.1:{ollama.port}", f"127.0.0.1:{vllm.port}"}
        first = found[f"127.0.0.1:{ollama.port}"]
        assert first["kind"] == "ollama" and first["label"] == "Ollama"
        assert first["models"] == ["llama3.2:3b", "qwen2.5:7b"]
        assert first["base_url"] == f"http://127.0.0.1:{ollama.port}/v1"
        assert first["suggested_name"] == "ollama" and first["added_as"] is None
        second = found[f"127.0.0.1:{vllm.port}"]
        assert second["kind"] == "openai" and second["models"] == ["Qwen/Qwen2.5-7B-Instruct"]
        assert second["suggested_name"] == f"local-{vllm.port}"
        # no request reached anything but the two servers' model lists
        paths = sorted(r.path for r in ollama.requests)
        assert paths == ["/api/tags", "/v1/models"]

        # connect it with the existing provider API; the probe then says it is added
        test = await admin.post(
            "/api/admin/providers/test", json={"base_url": first["base_url"], "kind": "openai"}
        )
        assert test.json()["ok"] is True and "llama3.2:3b" in test.json()["models"]
        added = await admin.post(
            "/api/admin/providers",
            json={"name": first["suggested_name"], "kind": "openai", "base_url": first["base_url"]},
        )
        assert added.status_code == 201, added.text
        again = (await admin.get("/api/admin/setup/local-servers")).json()
        by_address = {item["address"]: item for item in again["items"]}
        assert by_address[first["address"]]["added_as"] == "ollama"
        assert by_address[second["address"]]["suggested_name"] != "ollama"
        models = (await admin.get("/api/models")).json()
        assert "ollama/llama3.2:3b" in {m["ref"] for m in models["items"]}


async def test_only_admins_may_probe(app: Any) -> None:
    async with make_client(app) as admin, make_client(app) as user:
        await signup(admin, "admin@example.com")
        await signup(user, "user@example.com")
        assert (await user.get("/api/admin/setup/local-servers")).status_code == 403
    async with make_client(app) as anonymous:
        assert (await anonymous.get("/api/admin/setup/local-servers")).status_code == 401


def test_the_probe_list_takes_loopback_addresses_only(tmp_path: Any) -> None:
    settings = load_settings(data_dir=tmp_path, local_servers="11434, localhost:1234,[::1]:8000")
    assert settings.local_servers == ["127.0.0.1:11434", "127.0.0.1:1234", "[::1]:8000"]
    for bad in ("10.0.0.5:11434", "example.com:80", "169.254.169.254:80", "127.0.0.1:0", "x"):
        with pytest.raises(ValidationError):
            load_settings(data_dir=tmp_path, local_servers=bad)


async def test_a_silent_server_does_not_hold_the_probe() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        assert await probe_local_servers([address], timeout_s=0.3) == []
        assert time.monotonic() - started < 1.5


def test_the_starter_model_is_a_demo_without_tools(tmp_path: Any) -> None:
    from parley.providers.local import LocalProvider

    starter = LocalProvider(load_settings(data_dir=tmp_path)).info
    assert starter.demo and not starter.tool_use and "demo" in (starter.display_name or "")
    assert starter.max_output_tokens == 384  # short answers: the next question reads them
    opted_in = LocalProvider(load_settings(data_dir=tmp_path, local_model_tools=True)).info
    assert opted_in.tool_use
    other = LocalProvider(load_settings(data_dir=tmp_path, local_model=str(tmp_path / "m.gguf")))
    assert other.info.tool_use and not other.info.demo


async def test_a_turn_with_tools_on_gives_a_tool_less_model_one_plain_call(
    app: Any, scripted: ScriptedModel
) -> None:
    """Tools chosen on the conversation (the Tools menu) are not offered to a model
    whose ``tool_use`` is off, as the starter's is: no decision pass before the answer."""
    scripted.info = replace(scripted.info, supports_tools=False, tool_use=False)
    async with make_client(app) as client:
        await signup(client, "admin@example.com")
        conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
        patched = await client.patch(
            f"/api/conversations/{conv['id']}", json={"tools": ["calculator"]}
        )
        assert patched.status_code == 200
        response = await client.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "What is 6*7?"}
        )
        events = parse_sse(response.text)
        names = [name for name, _ in events]
        assert "done" in names and "tool_start" not in names
        answer = scripted.requests[0]  # then a title, memory extraction (their own schemas)
        assert answer.response_format is None and answer.tools == []
        assert answer.messages[-1].content == "What is 6*7?"
        for request in scripted.requests:
            assert "tool" not in (request.response_format or {}).get("properties", {})
