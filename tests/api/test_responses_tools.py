"""Parley's own tools behind the Responses API's hosted tools: they run on the
server with the same steps, sources and citations as in the web app."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from apihelpers import MakeApp, make_client, signup
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


async def _key(client: Any) -> dict[str, str]:
    key = (await client.post("/api/keys", json={"name": "api"})).json()["key"]
    return {"Authorization": f"Bearer {key}"}


async def test_file_search_runs_parleys_search_and_cites(
    make_app: MakeApp, scripted: ScriptedModel
) -> None:
    """The hosted ``file_search`` tool is Parley's file search: a
    ``file_search_call`` item, the answer's [n] as a ``file_citation``, and the same
    step and sources on the stored chat the web app shows."""
    async with make_app() as app, make_client(app) as ada:
        await signup(ada)
        auth = await _key(ada)
        upload = await ada.post(
            "/api/files",
            files={"file": ("plans.txt", b"The heist starts at midnight sharp.", "text/plain")},
        )
        file_id = upload.json()["id"]
        for _ in range(400):
            if (await ada.get(f"/api/files/{file_id}")).json()["status"] == "ready":
                break
            await asyncio.sleep(0.05)
        scripted.enqueue(
            Reply(tool_calls=[ToolCall("s1", "search_knowledge", '{"query": "heist start"}')]),
            "It starts at midnight [1].",
        )
        made = await ada.post(
            "/v1/responses",
            json={
                "model": "scripted/scripted",
                "input": "When does the heist start?",
                "tools": [{"type": "file_search", "vector_store_ids": []}],
            },
            headers=auth,
        )
        assert made.status_code == 200, made.text
        body = made.json()
        kinds = [item["type"] for item in body["output"]]
        assert kinds == ["file_search_call", "message"]
        assert body["output"][0]["status"] == "completed"
        assert body["output"][0]["queries"] == ["heist start"]
        text = body["output"][1]["content"][0]["text"]
        note = body["output"][1]["content"][0]["annotations"]
        assert note == [
            {
                "type": "file_citation",
                "file_id": file_id,
                "filename": "plans.txt",
                "index": text.index("[1]"),
            }
        ]
        # the web app's view of the same chat: the step and the cited passage
        chats = (await ada.get("/api/conversations")).json()["items"]
        chat = next(c for c in chats if c["title"] == "When does the heist start?")
        answer = (await ada.get(f"/api/conversations/{chat['id']}")).json()["messages"][-1]
        assert [step["name"] for step in answer["steps"]] == ["search_knowledge"]
        assert "midnight" in answer["steps"][0]["output"]
        assert any(s["kind"] == "file" and s["file_id"] == file_id for s in answer["sources"])


async def test_mcp_tool_that_changes_things_asks_the_api_client(
    make_app: MakeApp, scripted: ScriptedModel
) -> None:
    """A side-effecting MCP tool waits for approval: the API client gets an
    ``mcp_approval_request`` item and answers it with ``mcp_approval_response``
    in a new request; the same answer then goes on (the tool runs, or is denied)."""
    import sys
    from pathlib import Path

    server = str(Path(__file__).parents[1] / "tools_web" / "mcp_fixture_server.py")
    async with make_app() as app, make_client(app) as ada:
        await signup(ada)  # the first account: an administrator
        added = await ada.post(
            "/api/admin/mcp",
            json={"name": "fx", "transport": "stdio", "command": sys.executable, "args": [server]},
        )
        assert added.status_code == 201 and added.json()["status"] == "connected"
        auth = await _key(ada)
        tools = [{"type": "mcp", "server_label": "fx", "require_approval": "always"}]
        for approve, said in ((True, "Deleted."), (False, "I did not delete it.")):
            scripted.enqueue(
                Reply(tool_calls=[ToolCall("d1", "fx__delete_file", '{"path": "/tmp/x"}')]),
                said,
            )
            asked = await ada.post(
                "/v1/responses",
                json={"model": "scripted/scripted", "input": "Delete /tmp/x", "tools": tools},
                headers=auth,
            )
            assert asked.status_code == 200, asked.text
            request = asked.json()["output"][-1]
            assert request["type"] == "mcp_approval_request"
            assert (request["server_label"], request["name"]) == ("fx", "delete_file")
            assert request["arguments"] == '{"path": "/tmp/x"}'
            answered = await ada.post(
                "/v1/responses",
                json={
                    "model": "scripted/scripted",
                    "previous_response_id": asked.json()["id"],
                    "input": [
                        {
                            "type": "mcp_approval_response",
                            "approval_request_id": request["id"],
                            "approve": approve,
                        }
                    ],
                },
                headers=auth,
            )
            assert answered.status_code == 200, answered.text
            body = answered.json()
            assert [item["type"] for item in body["output"]] == ["mcp_call", "message"]
            call = body["output"][0]
            if approve:
                assert call["output"] == "deleted /tmp/x" and call["error"] is None
            else:
                assert call["output"] is None and "did not approve" in call["error"]
            assert body["output"][1]["content"][0]["text"] == said
        # an approval nobody waits for any more is a clear error
        again = await ada.post(
            "/v1/responses",
            json={
                "model": "scripted/scripted",
                "previous_response_id": asked.json()["id"],
                "input": [
                    {
                        "type": "mcp_approval_response",
                        "approval_request_id": request["id"],
                        "approve": True,
                    }
                ],
            },
            headers=auth,
        )
        assert again.status_code == 409 and "no longer waiting" in again.text


async def test_max_tool_calls_and_parallel_tool_calls_bound_parleys_tools(
    make_app: MakeApp, scripted: ScriptedModel
) -> None:
    """``max_tool_calls`` bounds the hosted tools Parley runs (a call beyond it is
    dropped, then the model answers without tools); ``parallel_tool_calls: false``
    and a function tool's ``strict`` reach the model."""
    async with make_app() as app, make_client(app) as ada:
        await signup(ada)
        auth = await _key(ada)
        searches = [ToolCall(f"s{n}", "search_knowledge", f'{{"query": "q{n}"}}') for n in (1, 2)]
        scripted.enqueue(Reply(tool_calls=searches), "Nothing found.")
        made = await ada.post(
            "/v1/responses",
            json={
                "model": "scripted/scripted",
                "input": "Search twice.",
                "tools": [
                    {"type": "file_search", "vector_store_ids": []},
                    {
                        "type": "function",
                        "name": "lookup",
                        "parameters": {"type": "object", "properties": {}},
                        "strict": True,
                    },
                ],
                "max_tool_calls": 1,
                "parallel_tool_calls": False,
            },
            headers=auth,
        )
        assert made.status_code == 200, made.text
        body = made.json()
        assert [item["type"] for item in body["output"]] == ["file_search_call", "message"]
        assert body["output"][0]["queries"] == ["q1"]
        assert body["max_tool_calls"] == 1 and body["parallel_tool_calls"] is False
        lookup = next(tool for tool in body["tools"] if tool["type"] == "function")
        assert lookup["strict"] is True
        asked = [r for r in scripted.requests if r.tools]
        first, answer = asked[-2], asked[-1]
        assert first.parallel_tool_calls is False
        assert next(t for t in first.tools if t.name == "lookup").strict is True
        assert answer.tool_choice == "none"  # the bound is spent: answer now


async def test_include_file_search_results_lists_the_passages_found(
    make_app: MakeApp, scripted: ScriptedModel
) -> None:
    """With ``include: ["file_search_call.results"]`` the search's item lists the
    passages it found, streamed or not; without it ``results`` stays null."""
    async with make_app() as app, make_client(app) as ada:
        await signup(ada)
        auth = await _key(ada)
        upload = await ada.post(
            "/api/files",
            files={"file": ("plans.txt", b"The heist starts at midnight sharp.", "text/plain")},
        )
        file_id = upload.json()["id"]
        for _ in range(400):
            if (await ada.get(f"/api/files/{file_id}")).json()["status"] == "ready":
                break
            await asyncio.sleep(0.05)
        ask = {
            "model": "scripted/scripted",
            "input": "When does the heist start?",
            "tools": [{"type": "file_search", "vector_store_ids": []}],
        }
        search = ToolCall("s1", "search_knowledge", '{"query": "heist start"}')

        scripted.enqueue(Reply(tool_calls=[search]), "At midnight [1].")
        plain = (await ada.post("/v1/responses", json=ask, headers=auth)).json()
        assert plain["output"][0]["results"] is None

        scripted.enqueue(Reply(tool_calls=[search]), "At midnight [1].")
        asked = ask | {"include": ["file_search_call.results"]}
        body = (await ada.post("/v1/responses", json=asked, headers=auth)).json()
        results = body["output"][0]["results"]
        assert [(r["file_id"], r["filename"]) for r in results] == [(file_id, "plans.txt")]
        assert "midnight" in results[0]["text"]
        stored = (await ada.get(f"/v1/responses/{body['id']}", headers=auth)).json()
        assert stored["output"][0]["results"] == results

        scripted.enqueue(Reply(tool_calls=[search]), "At midnight [1].")
        async with ada.stream(
            "POST", "/v1/responses", json=asked | {"stream": True}, headers=auth
        ) as stream:
            lines = [line async for line in stream.aiter_lines() if line.startswith("data: ")]
        events = [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]
        done = [
            e["item"]
            for e in events
            if e["type"] == "response.output_item.done" and e["item"]["type"] == "file_search_call"
        ]
        assert len(done) == 1 and done[0]["results"] == results
        numbers = [e["sequence_number"] for e in events]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
