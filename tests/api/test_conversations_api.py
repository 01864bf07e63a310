"""``/v1/conversations`` with the official openai SDK: a Conversation is a Parley
chat, so one started in the web app is continued over the API and the other way."""

from __future__ import annotations

import httpx
import openai
import pytest

from apihelpers import last_turn_request, parse_sse
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


def _client(live: tuple[str, str]) -> openai.OpenAI:
    base, key = live
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def test_create_items_metadata_and_delete(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    conv = client.conversations.create(
        metadata={"topic": "birds"},
        items=[{"type": "message", "role": "user", "content": "I like herons."}],
    )
    assert conv.id.startswith("conv_") and conv.metadata == {"topic": "birds"}
    scripted.enqueue("Herons are patient hunters.")
    response = client.responses.create(
        model="scripted/scripted", input="Tell me one fact.", conversation=conv.id
    )
    assert response.output_text == "Herons are patient hunters."
    history = [m.content for m in last_turn_request(scripted).messages[1:]]
    assert history == ["I like herons.", "Tell me one fact."]

    items = client.conversations.items.list(conv.id, order="asc")
    assert [(i.type, i.role) for i in items.data] == [
        ("message", "user"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert items.data[2].content[0].text == "Herons are patient hunters."
    one = client.conversations.items.retrieve(items.data[0].id, conversation_id=conv.id)
    assert one.content[0].text == "I like herons."

    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "And storks?"}]
    )
    assert [i.content[0].text for i in added.data] == ["And storks?"]
    page = client.conversations.items.list(conv.id, limit=2)  # newest first
    assert [i.content[0].text for i in page.data] == [
        "And storks?",
        "Herons are patient hunters.",
    ]
    assert page.has_more is True

    updated = client.conversations.update(conv.id, metadata={"topic": "waders"})
    assert (
        client.conversations.retrieve(conv.id).metadata == {"topic": "waders"} == (updated.metadata)
    )
    client.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    texts = [i.content[0].text for i in client.conversations.items.list(conv.id).data]
    assert "And storks?" not in texts and len(texts) == 3

    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)  # its responses went with it


def test_web_chat_continues_over_the_api(live: tuple[str, str], scripted: ScriptedModel) -> None:
    base, key = live
    server = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {key}"}
    chat = httpx.post(
        f"{server}/api/conversations", json={"model": "scripted/scripted"}, headers=headers
    ).json()
    scripted.enqueue("Started in the web app.")
    sent = httpx.post(
        f"{server}/api/conversations/{chat['id']}/messages",
        json={"content": "Hello from the browser"},
        headers=headers,
    )
    assert dict(parse_sse(sent.text))["done"]["message"]["content"] == "Started in the web app."

    client = _client(live)
    scripted.enqueue("Continued over the API.")
    response = client.responses.create(
        model="scripted/scripted", input="And now from a script", conversation=chat["id"]
    )
    assert response.output_text == "Continued over the API."
    assert [m.content for m in last_turn_request(scripted).messages[1:]] == [
        "Hello from the browser",
        "Started in the web app.",
        "And now from a script",
    ]
    view = httpx.get(f"{server}/api/conversations/{chat['id']}", headers=headers).json()
    assert [m["content"] for m in view["messages"]][-1] == "Continued over the API."


def test_items_show_function_calls_and_outputs(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    client = _client(live)
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    conv = client.conversations.create()
    scripted.enqueue(Reply(tool_calls=[ToolCall("c1", "lookup", "{}")]))
    first = client.responses.create(
        model="scripted/scripted", input="look it up", tools=[tool], conversation=conv.id
    )
    call = next(i for i in first.output if i.type == "function_call")
    scripted.enqueue("Found it.")
    client.responses.create(
        model="scripted/scripted",
        tools=[tool],
        conversation=conv.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
    )
    kinds = [i.type for i in client.conversations.items.list(conv.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


def test_input_tokens_counts_the_history(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    scripted.enqueue("A long answer " * 20)
    first = client.responses.create(model="scripted/scripted", input="hi")
    alone = client.responses.input_tokens.count(model="scripted/scripted", input="and then?")
    chained = client.responses.input_tokens.count(
        model="scripted/scripted", input="and then?", previous_response_id=first.id
    )
    assert 0 < alone.input_tokens < chained.input_tokens
