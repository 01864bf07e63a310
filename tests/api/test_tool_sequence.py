"""A tool turn keeps its real order: text, step, text (issue 12 item 6).

Each step records ``offset``, the characters of the answer written before it; the
stored message, the ``tool_start`` event and a resync carry it, the text after a
step starts a new paragraph, and a message stored before offsets still serializes.
"""

from __future__ import annotations

from typing import Any

from apihelpers import Client, parse_sse
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database

BEFORE = "Let me compute it."
AFTER = "I ran the calculator: it is 42."


async def _turn(client: Client, scripted: ScriptedModel) -> tuple[str, list[Any]]:
    scripted.enqueue(
        Reply(
            text=BEFORE,
            chunk_size=5,
            tool_calls=[ToolCall("call_1", "calculator", '{"expression": "6*7"}')],
        ),
        Reply(text=AFTER, chunk_size=5),
    )
    r = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    conv: str = r.json()["id"]
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "6*7?"})
    assert r.status_code == 200, r.text
    return conv, parse_sse(r.text)


async def test_text_step_text_is_stored_and_served_in_order(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    conv, events = await _turn(client, scripted)
    # the stream: the text before, the step (with its offset), then the text after
    names = [n for n, _ in events]
    start = names.index("tool_start")
    before = "".join(d["text"] for n, d in events[:start] if n == "text")
    after = "".join(d["text"] for n, d in events[start:] if n == "text")
    assert before == BEFORE
    assert after == "\n\n" + AFTER  # a paragraph of its own, never glued on
    assert dict(events)["tool_start"]["offset"] == len(BEFORE)
    assert names.index("tool_result") > start

    stored = dict(events)["done"]["message"]
    assert stored["content"] == BEFORE + "\n\n" + AFTER
    (step,) = stored["steps"]
    assert step["offset"] == len(BEFORE) and "42" in step["output"]
    # the public message (the conversation's GET) shows the same order
    view = (await client.get(f"/api/conversations/{conv}")).json()
    message = view["messages"][-1]
    at = message["steps"][0]["offset"]
    assert message["content"][:at] == BEFORE
    assert message["content"][at:].strip() == AFTER

    # the next turn replays it to the model in order too: text + call, result, text
    await client.post(f"/api/conversations/{conv}/messages", json={"content": "thanks"})
    sent = scripted.requests[-1].messages
    call = next(i for i, m in enumerate(sent) if m.tool_calls)
    assert sent[call].content == BEFORE
    assert sent[call + 1].role == "tool"
    assert sent[call + 2].role == "assistant" and sent[call + 2].content == AFTER


async def test_offsets_count_characters_not_bytes(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    text = "Voilà 📈 —"
    scripted.enqueue(
        Reply(text=text, tool_calls=[ToolCall("c", "calculator", '{"expression": "1+1"}')]),
        Reply(text="\nDone."),  # one line break already there: one more is added
    )
    r = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    conv = r.json()["id"]
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "go"})
    message = dict(parse_sse(r.text))["done"]["message"]
    assert message["steps"][0]["offset"] == len(text) == 9
    assert message["content"] == text + "\n\nDone."


async def test_a_step_before_any_text_has_offset_zero_and_no_break(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("c", "calculator", '{"expression": "2+2"}')]),
        Reply(text="It is 4."),
    )
    r = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    conv = r.json()["id"]
    r = await client.post(f"/api/conversations/{conv}/messages", json={"content": "2+2"})
    message = dict(parse_sse(r.text))["done"]["message"]
    assert message["steps"][0]["offset"] == 0 and message["content"] == "It is 4."


async def test_an_old_message_without_offsets_still_serializes(
    app: Any, client: Client, user: Any, scripted: ScriptedModel
) -> None:
    conv, events = await _turn(client, scripted)
    message_id = dict(events)["done"]["message"]["id"]
    old_step = {"id": "call_1", "name": "calculator", "arguments": "{}", "output": "42"}
    db: Database = app.state.services.require(Database)
    async with db.session() as session:
        store = ConversationStore(session, user["id"])
        await store.update_message(message_id, content="It is 42.", steps=[old_step])
        await session.commit()
    view = (await client.get(f"/api/conversations/{conv}")).json()
    message = view["messages"][-1]
    assert message["steps"] == [old_step] and "offset" not in message["steps"][0]
    # and the model still gets it back: the call, its result, then the whole text
    await client.post(f"/api/conversations/{conv}/messages", json={"content": "again"})
    sent = scripted.requests[-1].messages
    call = next(i for i, m in enumerate(sent) if m.tool_calls)
    assert sent[call].content == "" and sent[call + 2].content == "It is 42."


async def test_the_tools_list_has_human_names_and_one_line_summaries(
    client: Client, user: Any
) -> None:
    listed = (await client.get("/api/tools")).json()
    by_name = {t["name"]: t for t in listed["items"]}
    assert by_name["calculator"]["title"] == "Calculator"
    assert by_name["search_conversations"]["title"] == "Search your chats"
    assert by_name["remember"]["title"] == "Remember"
    assert by_name["fetch_page"]["title"] == "Read a web page"
    for tool in listed["items"]:  # every one reads as words, one line
        assert tool["title"] and "_" not in tool["title"]
        assert tool["summary"] and "\n" not in tool["summary"]
    assert isinstance(listed["unavailable"], list)


async def test_tools_chosen_before_the_first_message_apply_to_the_new_conversation(
    client: Client, user: Any, scripted: ScriptedModel
) -> None:
    r = await client.post(
        "/api/conversations", json={"model": "scripted/scripted", "tools": ["calculator"]}
    )
    assert r.status_code == 201, r.text
    conv = r.json()
    assert conv["tools"] == ["calculator"]
    await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
    offered = [t.name for t in scripted.requests[-1].tools or []]
    assert offered == ["calculator"]
    # none at all, and unknown names, as with PATCH
    r = await client.post("/api/conversations", json={"tools": []})
    assert r.json()["tools"] == []
    r = await client.post("/api/conversations", json={"tools": ["no_such_tool"]})
    assert r.status_code == 422 and r.json()["code"] == "unknown_tool"
