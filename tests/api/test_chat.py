"""Chat turns end to end over HTTP: streaming, persistence, branches, failures."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from apihelpers import Client, make_client, parse_sse, signup
from parley.api.app import create_app
from parley.errors import ProviderRateLimited
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


async def new_conversation(client: Client) -> str:
    response = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def send(
    client: Client, conversation_id: str, content: str, **extra: Any
) -> list[tuple[str, dict[str, Any]]]:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"content": content, **extra}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


async def test_streamed_turn_is_persisted_with_its_record(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue(Reply(text="Paris is the capital of France.", chunk_size=4))
    conv = await new_conversation(client)
    events = await send(client, conv, "What is the capital of France?")
    names = [name for name, _ in events]
    assert names[0] == "start" and "text" in names and names[-2:] == ["done", "title"]
    text = "".join(data["text"] for name, data in events if name == "text")
    assert text == "Paris is the capital of France."
    done = dict(events)["done"]
    record = done["message"]
    assert record["status"] == "complete" and record["content"] == text
    assert record["provider"] == "scripted" and record["model"] == "scripted/scripted"
    assert record["output_tokens"] > 0 and record["latency_ms"] is not None
    assert record["ttft_ms"] is not None and record["finish_reason"] == "stop"
    assert record["cost"] == 0
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert [m["role"] for m in view["messages"]] == ["user", "assistant"]
    assert view["conversation"]["title"] == "What is the capital of France?"
    # the model saw the system prompt with the date and the user's message
    request = scripted.requests[-1]
    assert request.messages[0].role == "system" and "Current date" in request.messages[0].content
    assert request.messages[-1].content == "What is the capital of France?"


async def test_history_is_sent_and_custom_instructions_apply(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    await client.patch(
        "/api/me", json={"about_me": "I am vegetarian.", "response_style": "Be brief."}
    )
    conv = await new_conversation(client)
    await send(client, conv, "first")
    await send(client, conv, "second")
    messages = scripted.requests[-1].messages
    assert "I am vegetarian." in messages[0].content and "Be brief." in messages[0].content
    assert [m.content for m in messages[1:] if m.role == "user"] == ["first", "second"]


async def test_regenerate_and_edit_create_siblings(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    conv = await new_conversation(client)
    scripted.enqueue("answer one")
    first = await send(client, conv, "question")
    start = dict(first)["start"]
    user_id, answer_id = start["user_message"]["id"], start["assistant_message"]["id"]

    scripted.enqueue("answer two")
    r = await client.post(f"/api/conversations/{conv}/messages/{answer_id}/regenerate", json={})
    regenerated = dict(parse_sse(r.text))
    assert regenerated["done"]["message"]["content"] == "answer two"
    assert regenerated["start"]["assistant_message"]["siblings"][0] == answer_id
    assert regenerated["done"]["message"]["siblings"] == [
        answer_id,
        regenerated["done"]["message"]["id"],
    ]
    assert len(regenerated["start"]["assistant_message"]["siblings"]) == 2
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert view["messages"][-1]["content"] == "answer two"
    assert len(view["messages"][-1]["siblings"]) == 2

    scripted.enqueue("edited answer")
    r = await client.post(
        f"/api/conversations/{conv}/messages/{user_id}/edit", json={"content": "better question"}
    )
    assert dict(parse_sse(r.text))["done"]["message"]["content"] == "edited answer"
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert [m["content"] for m in view["messages"]] == ["better question", "edited answer"]
    assert view["messages"][0]["siblings"] == [user_id, view["messages"][0]["id"]]

    # switch back to the first branch: its newest answer is shown
    r = await client.post(f"/api/conversations/{conv}/branch", json={"message_id": user_id})
    assert [m["content"] for m in r.json()["messages"]] == ["question", "answer two"]


async def test_tool_steps_are_streamed_and_stored(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("call_1", "calculator", '{"expression": "6*7"}')]),
        Reply(text="It is 42."),
    )
    conv = await new_conversation(client)
    events = await send(client, conv, "what is 6*7?")
    names = [n for n, _ in events]
    assert names.index("tool_start") < names.index("tool_result") < names.index("done")
    result = dict(events)["tool_result"]
    assert result["name"] == "calculator" and "42" in result["output"] and not result["is_error"]
    stored = dict(events)["done"]["message"]
    assert stored["steps"][0]["name"] == "calculator" and "42" in stored["steps"][0]["output"]
    # the wire shape of parley.messages.ToolStep; arguments stay the model's JSON text
    step = stored["steps"][0]
    assert set(step) == {"id", "name", "arguments", "offset", "output", "is_error", "duration_ms"}
    assert step["arguments"] == dict(events)["tool_start"]["arguments"]
    assert dict(events)["tool_start"]["arguments"] == '{"expression": "6*7"}'
    assert stored["content"] == "It is 42."
    # the stored step is replayed to the model on the next turn, still marked untrusted
    await send(client, conv, "thanks")
    replayed = [m for m in scripted.requests[-1].messages if m.role == "tool"]
    assert len(replayed) == 1
    assert replayed[0].content.startswith('<tool_output name="calculator" status="ok">')
    assert "42" in replayed[0].content and replayed[0].content.endswith("</tool_output>")


async def test_provider_failure_is_recorded_and_retryable(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue(
        Reply(
            text="partial answer that will",
            chunk_size=3,
            error=ProviderRateLimited("Rate limited; retry soon."),
            error_after=2,
        )
    )
    conv = await new_conversation(client)
    events = await send(client, conv, "hello")
    error = dict(events)["error"]
    assert error["code"] == "provider_rate_limited" and error["retryable"] is True
    done = dict(events)["done"]
    assert done["finish_reason"] == "error"
    assert (
        done["message"]["status"] == "failed"
        and done["message"]["error_code"] == "provider_rate_limited"
    )
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert view["messages"][0]["content"] == "hello"  # the user's message survived
    failed_id = view["messages"][1]["id"]
    scripted.enqueue("recovered")
    r = await client.post(f"/api/conversations/{conv}/messages/{failed_id}/regenerate", json={})
    assert dict(parse_sse(r.text))["done"]["message"]["status"] == "complete"


async def test_stop_cancels_generation_and_keeps_partial_text(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """Over a real HTTP server: stop arrives while the answer streams."""
    base, key = live
    scripted.enqueue(Reply(text="word " * 400, chunk_size=5, delay_s=0.01))
    headers = {"Authorization": f"Bearer {key}"}
    root = base.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=root, headers=headers, timeout=30) as http:
        conv = (await http.post("/api/conversations", json={"model": "scripted/scripted"})).json()
        body = ""
        async with http.stream(
            "POST", f"/api/conversations/{conv['id']}/messages", json={"content": "talk a lot"}
        ) as response:
            stopped = False
            async for chunk in response.aiter_text():
                body += chunk
                if not stopped and "event: text" in body:
                    stopped = True
                    stop = await http.post(f"/api/conversations/{conv['id']}/stop")
                    assert stop.status_code == 204
    done = dict(parse_sse(body))["done"]
    assert done["finish_reason"] == "cancelled"
    assert done["message"]["status"] == "cancelled"
    assert 0 < len(done["message"]["content"]) < len("word " * 400)


async def test_text_is_flushed_while_streaming(
    app: Any, client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue(Reply(text="tick " * 400, chunk_size=5, delay_s=0.02))
    conv = await new_conversation(client)
    task = asyncio.create_task(send(client, conv, "go"))
    seen: list[tuple[str, str]] = []  # (status, stored content) while the answer streams
    while not task.done():
        await asyncio.sleep(0.05)
        view = (await client.get(f"/api/conversations/{conv}")).json()
        last = view["messages"][-1] if view["messages"] else {"role": "none"}
        if last["role"] == "assistant":
            seen.append((last["status"], last["content"]))
            if last["status"] == "streaming" and last["content"].startswith("tick"):
                break
    # some text was stored while the answer was still streaming
    assert any(status == "streaming" and text.startswith("tick") for status, text in seen), seen
    await task


async def test_client_disconnect_does_not_lose_the_answer(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """Over a real HTTP server: the client hangs up mid-answer; the answer completes."""
    base, key = live
    scripted.enqueue(Reply(text="complete answer " * 40, chunk_size=2, delay_s=0.01))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base.removesuffix("/v1"), headers=headers) as http:
        conv = (await http.post("/api/conversations", json={"model": "scripted/scripted"})).json()
        url = f"/api/conversations/{conv['id']}/messages"
        async with http.stream("POST", url, json={"content": "hi"}) as response:
            async for chunk in response.aiter_text():
                if "event: text" in chunk:
                    break  # hang up mid-answer
        view: dict[str, Any] = {}
        for _ in range(200):
            view = (await http.get(f"/api/conversations/{conv['id']}")).json()
            if view["messages"][-1]["status"] != "streaming":
                break
            await asyncio.sleep(0.05)
    assert view["messages"][-1]["status"] == "complete"
    assert view["messages"][-1]["content"] == "complete answer " * 40


async def test_unknown_model_and_conversation(client: Client, user: Any) -> None:
    conv = await new_conversation(client)
    r = await client.post(
        f"/api/conversations/{conv}/messages", json={"content": "x", "model": "nope/nothing"}
    )
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"
    r = await client.post("/api/conversations/" + "0" * 32 + "/messages", json={"content": "x"})
    assert r.status_code == 404


async def test_a_turn_that_cannot_start_is_a_problem_with_its_code(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    """The turn service raises domain errors; parley.http.problems gives the statuses."""
    conv = await new_conversation(client)
    base = f"/api/conversations/{conv}/messages"
    r = await client.post(base, json={"content": "x", "parent_id": "0" * 32})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert r.json()["detail"] == "No such parent message in this conversation."
    r = await client.post(f"{base}/{'0' * 32}/regenerate", json={})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    scripted.enqueue(Reply(text="An answer."))
    done = dict(await send(client, conv, "question"))["done"]["message"]
    r = await client.post(f"{base}/{done['id']}/edit", json={"content": "changed"})
    assert (r.status_code, r.json()["code"]) == (422, "not_user_message")
    assert r.json()["detail"] == "Only your own messages can be edited."


async def test_without_any_model_a_turn_is_503_no_model(settings: Any) -> None:
    app = create_app(settings, extra_providers=[])  # no provider, local model off
    async with app.router.lifespan_context(app), make_client(app) as client:
        await signup(client)
        conv = (await client.post("/api/conversations", json={})).json()["id"]
        r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "x"})
    assert (r.status_code, r.json()["code"]) == (503, "no_model")


async def test_list_search_rename_pin_archive_delete(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    conv = await new_conversation(client)
    scripted.enqueue("Bananas are berries, botanically.")
    await send(client, conv, "Tell me about bananas")
    other = await new_conversation(client)
    listed = (await client.get("/api/conversations")).json()["items"]
    assert {c["id"] for c in listed} == {conv, other}
    hits = (await client.get("/api/search", params={"q": "berries"})).json()["items"]
    assert hits and hits[0]["conversation_id"] == conv
    start, end = hits[0]["highlights"][0]
    assert hits[0]["snippet"][start:end].lower().startswith("berr")
    r = await client.patch(
        f"/api/conversations/{conv}", json={"title": "Fruit facts", "pinned": True}
    )
    assert r.json()["title"] == "Fruit facts" and r.json()["pinned"] is True
    await client.patch(f"/api/conversations/{other}", json={"archived": True})
    assert [c["id"] for c in (await client.get("/api/conversations")).json()["items"]] == [conv]
    assert [
        c["id"]
        for c in (await client.get("/api/conversations", params={"archived": True})).json()["items"]
    ] == [other]
    assert (await client.delete(f"/api/conversations/{conv}")).status_code == 204
    assert (await client.get(f"/api/conversations/{conv}")).status_code == 404
    assert (await client.get("/api/search", params={"q": "berries"})).json()["items"] == []


async def test_feedback_is_stored(client: Client, user: Any) -> None:
    conv = await new_conversation(client)
    events = await send(client, conv, "hi")
    answer_id = dict(events)["done"]["message"]["id"]
    r = await client.patch(f"/api/messages/{answer_id}", json={"feedback": -1})
    assert r.json()["feedback"] == -1 and r.json()["siblings"] == [answer_id]
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert view["messages"][-1]["feedback"] == -1
