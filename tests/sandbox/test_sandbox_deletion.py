"""Deleting a conversation kills its kernel and removes the outputs its code made;
deleting the account kills the rest (the real sandbox, in the real app)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from apihelpers import make_client, parse_sse, signup
from parley.messages import ToolCall
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel

MARK = "secret-9d2e"
CODE = f"open('notes.csv', 'w').write('k,v\\n{MARK},1\\n')\nx = 41"


def _answer(request: ChatRequest) -> Reply | str:
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role == "user" and last.content == "run it":
        return Reply(tool_calls=[ToolCall("c1", "run_python", json.dumps({"code": CODE}))])
    return "Done."


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default=_answer)


async def test_deleting_kills_kernels_and_removes_outputs(app: Any) -> None:
    manager = app.state.features["sandbox"].manager
    data_dir: Path = app.state.features["sandbox"].settings.data_dir
    async with make_client(app) as admin:
        await signup(admin, "admin@example.com")  # the first account: the administrator
    async with make_client(app) as client:
        me = await signup(client, "owner@example.com")
        convs = []
        for _ in range(2):
            made = await client.post("/api/conversations", json={"model": "scripted/scripted"})
            conv_id = made.json()["id"]
            response = await client.post(
                f"/api/conversations/{conv_id}/messages", json={"content": "run it"}
            )
            result = next(d for n, d in parse_sse(response.text) if n == "tool_result")
            assert not result["is_error"], result
            assert [a["filename"] for a in result["attachments"]] == ["notes.csv"]
            convs.append(conv_id)
        assert manager.kernel_count(me["id"]) == 2
        outputs = data_dir / "sandbox" / "outputs" / me["id"]
        assert (outputs / convs[0]).is_dir()

        assert (await client.delete(f"/api/conversations/{convs[0]}")).status_code == 204
        assert manager.kernel_count(me["id"]) == 1  # killed at once, not at the idle timeout
        assert manager.kernel_for(me["id"], convs[1]) is not None
        assert not (outputs / convs[0]).exists()
        assert (outputs / convs[1]).is_dir()

        gone = await client.request("DELETE", "/api/me", json={"password": "correct horse"})
        assert gone.status_code == 204, gone.text
    assert manager.kernel_count(me["id"]) == 0
    assert not outputs.exists()
    leftovers = [
        os.path.join(here, name)
        for here, _, names in os.walk(data_dir)
        for name in names
        if MARK.encode() in Path(here, name).read_bytes()
    ]
    assert leftovers == []
