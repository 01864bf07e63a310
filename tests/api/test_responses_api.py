"""``/v1/responses`` driven by the official openai SDK over real HTTP: a response
is a Parley turn in a Parley chat, so it is stored, chained and listed."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from apihelpers import last_turn_request
from parley.messages import ToolCall, Usage
from parley.providers.scripted import Reply, ScriptedModel

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _client(live: tuple[str, str]) -> openai.OpenAI:
    base, key = live
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def test_create_get_and_chain(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    scripted.enqueue("Paris is the capital of France.")
    first = client.responses.create(
        model="scripted/scripted",
        input="What is the capital of France?",
        instructions="Answer in one sentence.",
        metadata={"ticket": "42"},
    )
    assert first.status == "completed"
    assert first.output_text == "Paris is the capital of France."
    assert first.id.startswith("resp_")
    assert first.usage is not None and first.usage.output_tokens > 0
    assert first.metadata == {"ticket": "42"}
    asked = last_turn_request(scripted)
    assert "Answer in one sentence." in asked.messages[0].content  # with Parley's prompt
    assert asked.messages[-1].content == "What is the capital of France?"

    again = client.responses.retrieve(first.id)
    assert again.output_text == first.output_text and again.instructions == first.instructions

    scripted.enqueue("About 2.1 million people.")
    second = client.responses.create(
        model="scripted/scripted", input="How many live there?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    history = [m.content for m in last_turn_request(scripted).messages[1:]]
    assert history == [
        "What is the capital of France?",
        "Paris is the capital of France.",
        "How many live there?",
    ]
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"]


def test_the_chat_is_in_the_sidebar(live: tuple[str, str], scripted: ScriptedModel) -> None:
    """A response's chat is a Parley chat: the web app lists it with both messages."""
    base, key = live
    client = _client(live)
    scripted.enqueue("Noted.")
    client.responses.create(model="scripted/scripted", input="Remember the milk")
    server = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {key}"}
    chats = httpx.get(f"{server}/api/conversations", headers=headers).json()
    listed = chats["items"] if isinstance(chats, dict) else chats
    chat = next(c for c in listed if c["title"] == "Remember the milk")
    detail = httpx.get(f"{server}/api/conversations/{chat['id']}", headers=headers).json()
    contents = [m["content"] for m in detail["messages"]]
    assert contents == ["Remember the milk", "Noted."]


def test_streaming_events_are_ordered_and_complete(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    client = _client(live)
    scripted.enqueue(Reply(text="one two three", chunk_size=1))
    events = list(client.responses.create(model="scripted/scripted", input="count", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(d.delta for d in deltas) == "one two three"
    assert len({(d.item_id, d.output_index, d.content_index) for d in deltas}) == 1
    done = events[-1].response
    assert done.output_text == "one two three" and done.status == "completed"
    assert client.responses.retrieve(done.id).output_text == "one two three"


def test_function_tool_round_trip(live: tuple[str, str], scripted: ScriptedModel) -> None:
    """The caller's function comes back as a function_call item; its output continues
    the same answer, and the model sees call and output in order."""
    client = _client(live)
    scripted.enqueue(Reply(tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Oslo"}')]))
    first = client.responses.create(
        model="scripted/scripted", input="Weather in Oslo?", tools=[WEATHER]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Oslo"}
    assert last_turn_request(scripted).tools[0].name == "get_weather"

    scripted.enqueue("It is 4 degrees and raining in Oslo.")
    second = client.responses.create(
        model="scripted/scripted",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "4C rain"}],
    )
    assert second.output_text == "It is 4 degrees and raining in Oslo."
    sent = last_turn_request(scripted).messages
    assert sent[-2].role == "assistant" and sent[-2].tool_calls[0].name == "get_weather"
    assert sent[-1].role == "tool" and "4C rain" in sent[-1].content


def test_stateless_history_with_function_items(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """What the Agents SDK sends: the whole history as items, calls included."""
    client = _client(live)
    scripted.enqueue("Done: it is sunny.")
    response = client.responses.create(
        model="scripted/scripted",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Rome?"},
            {
                "type": "function_call",
                "call_id": "c9",
                "name": "get_weather",
                "arguments": '{"city": "Rome"}',
            },
            {"type": "function_call_output", "call_id": "c9", "output": "sunny"},
        ],
    )
    assert response.output_text == "Done: it is sunny."
    sent = last_turn_request(scripted).messages
    assert [m.role for m in sent[1:]] == ["user", "assistant", "tool"]


def test_json_schema_output(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    scripted.enqueue(Reply(data={"city": "Lyon"}))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model="scripted/scripted",
        input="Where?",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema}},
    )
    assert json.loads(response.output_text) == {"city": "Lyon"}
    assert last_turn_request(scripted).response_format == schema


def test_store_false_keeps_nothing(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    scripted.enqueue("Ephemeral.")
    response = client.responses.create(model="scripted/scripted", input="hi", store=False)
    assert response.output_text == "Ephemeral." and response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_background_poll_and_cancel(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    scripted.enqueue(Reply(text="slow " * 200, chunk_size=1, delay_s=0.05))
    asked = len(scripted.requests)
    started = client.responses.create(model="scripted/scripted", input="go", background=True)
    assert started.status in ("queued", "in_progress")
    for _ in range(200):  # the model is answering
        if len(scripted.requests) > asked:
            break
        time.sleep(0.02)
    cancelled = client.responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(started.id).status == "cancelled"

    scripted.enqueue("Finished in the background.")
    quick = client.responses.create(model="scripted/scripted", input="go", background=True)
    for _ in range(200):
        polled = client.responses.retrieve(quick.id)
        if polled.status == "completed":
            break
        time.sleep(0.05)
    assert polled.output_text == "Finished in the background."


def test_delete_and_errors(live: tuple[str, str], scripted: ScriptedModel) -> None:
    client = _client(live)
    scripted.enqueue("Bye.")
    response = client.responses.create(model="scripted/scripted", input="hi")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(
            model="scripted/scripted", input=[{"type": "function_call_output", "call_id": "x"}]
        )
    assert "call_id 'x'" in str(info.value)


def test_async_client_streams(live: tuple[str, str], scripted: ScriptedModel) -> None:
    base, key = live
    scripted.enqueue(Reply(text="async works", chunk_size=1))

    async def run() -> str:
        client = openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0)
        async with client.responses.stream(model="scripted/scripted", input="hi") as stream:
            async for _event in stream:
                pass
            final = await stream.get_final_response()
        await client.close()
        return final.output_text

    assert asyncio.run(run()) == "async works"


def test_responses_and_chat_turns_are_in_the_usage_ledger(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    client = _client(live)
    scripted.enqueue(Reply(text="Counted.", usage=Usage(input_tokens=120, output_tokens=7)))
    client.responses.create(model="scripted/scripted", input="count me")
    server = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(100):  # the row is written just after the answer
        usage = httpx.get(f"{server}/api/me/usage", headers=headers).json()
        if usage["by_model"]:
            break
        time.sleep(0.05)
    row = next(m for m in usage["by_model"] if m["key"] == "scripted/scripted")
    assert row["requests"] >= 1 and row["input_tokens"] >= 120 and row["output_tokens"] >= 7
    assert [k["requests"] for k in usage["by_key"] if k["key"] is not None] == [row["requests"]]


def test_compact_then_continue_from_the_summary(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """``responses.compact`` turns a chain into a compaction item; sent back as
    input, the summary reaches the model as an instruction and the history does not."""
    client = _client(live)
    scripted.enqueue("We picked Lisbon for May.")
    first = client.responses.create(model="scripted/scripted", input="Where do we go in May?")
    scripted.enqueue("The user plans a May trip to Lisbon; flights not booked yet.")
    compacted = client.responses.compact(
        model="scripted/scripted",
        previous_response_id=first.id,
        input=[{"role": "user", "content": "Also check trains."}],
    )
    assert [item.type for item in compacted.output] == ["compaction"]
    asked = scripted.requests[-1].messages
    assert "Summarize the conversation" in asked[0].content
    assert "We picked Lisbon for May." in asked[1].content  # the chain was read
    assert "Also check trains." in asked[1].content  # and the input
    scripted.enqueue("Booking flights to Lisbon.")
    carried = [item.model_dump(exclude_none=True) for item in compacted.output]
    follow = client.responses.create(
        model="scripted/scripted",
        input=[*carried, {"role": "user", "content": "Book flights next."}],
    )
    assert follow.output_text == "Booking flights to Lisbon."
    sent = last_turn_request(scripted).messages
    assert "flights not booked yet" in sent[0].content
    assert [m.content for m in sent[1:]] == ["Book flights next."]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model="scripted/scripted",
            input=[
                {"type": "compaction", "encrypted_content": "bm90IG91cnM="},
                {"role": "user", "content": "hi"},
            ],
        )


def test_tool_choice_reaches_the_model_on_the_first_call(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    client = _client(live)
    scripted.enqueue(Reply(tool_calls=[ToolCall("c1", "get_weather", '{"city": "Oslo"}')]))
    client.responses.create(
        model="scripted/scripted",
        input="Oslo?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert last_turn_request(scripted).tool_choice == "function:get_weather"
    scripted.enqueue("No tools.")
    client.responses.create(
        model="scripted/scripted", input="Oslo?", tools=[WEATHER], tool_choice="none"
    )
    assert last_turn_request(scripted).tools == []  # "none": nothing offered at all


def test_a_stream_the_client_leaves_is_finished_and_stored(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    scripted.enqueue(Reply(text="word " * 60, chunk_size=1, delay_s=0.01))
    response_id = None
    with httpx.stream(
        "POST",
        f"{base}/responses",
        json={"model": "scripted/scripted", "input": "long", "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "response.output_text.delta":
                    break  # the client goes away mid-answer
                response_id = event.get("response", {}).get("id") or response_id
    assert response_id is not None
    client = _client(live)
    for _ in range(200):
        found = client.responses.retrieve(response_id)
        if found.status != "in_progress":
            break
        time.sleep(0.05)
    assert found.status == "completed"
    assert found.output_text == ("word " * 60).strip() or found.output_text == "word " * 60


def test_background_needs_store(live: tuple[str, str]) -> None:
    client = _client(live)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="scripted/scripted", input="hi", background=True, store=False)
    assert "store" in str(info.value)


def test_a_stateless_client_keeps_one_chat(live: tuple[str, str], scripted: ScriptedModel) -> None:
    """A client that resends the whole history (the Agents SDK does) continues the
    chat it started instead of starting one per call."""
    base, key = live
    client = _client(live)
    scripted.enqueue("Lyon is nice in May.")
    first = client.responses.create(model="scripted/scripted", input="Trip idea for May?")
    history = [
        {"role": "user", "content": "Trip idea for May?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"role": "user", "content": "And in June?"},
    ]
    scripted.enqueue("Then Porto.")
    second = client.responses.create(model="scripted/scripted", input=history)
    assert second.output_text == "Then Porto."
    assert [m.content for m in last_turn_request(scripted).messages[1:]] == [
        "Trip idea for May?",
        "Lyon is nice in May.",
        "And in June?",
    ]
    server = base.removesuffix("/v1")
    chats = httpx.get(f"{server}/api/conversations", headers={"Authorization": f"Bearer {key}"})
    titles = [c["title"] for c in chats.json()["items"]]
    assert titles.count("Trip idea for May?") == 1
    # the same history with a different middle is another conversation
    scripted.enqueue("Another answer.")
    history[1]["content"][0]["text"] = "Something else entirely."
    client.responses.create(model="scripted/scripted", input=history)
    chats = httpx.get(f"{server}/api/conversations", headers={"Authorization": f"Bearer {key}"})
    assert [c["title"] for c in chats.json()["items"]].count("Trip idea for May?") == 2
