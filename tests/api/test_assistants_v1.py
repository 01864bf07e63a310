"""Assistants over ``/v1`` with the official SDK: ``assistant/<slug>`` runs the whole
product (instructions, knowledge, tools) on the server, in chat completions and in
the Responses API; the key's ``assistants`` scope is enforced."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from apihelpers import last_turn_request
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from v1helpers import browser, make_key, ready_file


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Scripted answer [1].")


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def _assistant(web: httpx.Client, **config: Any) -> dict[str, Any]:
    body = {"config": {"name": "Treasure guide", "instructions": "Answer as a pirate."} | config}
    made = web.post("/api/assistants", json=body)
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


def _all_chats(web: httpx.Client) -> list[Any]:
    """Every chat of the account, temporary ones too (the export has them all)."""
    exported = web.get("/api/me/export")
    assert exported.status_code == 200, exported.text
    chats: list[Any] = exported.json()["conversations"]
    return chats


def test_the_sdk_chats_with_an_assistant_and_its_file(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    with browser(base) as web:
        file_id = ready_file(web, "map.txt", b"The treasure lies beneath the lighthouse.")
        ready_file(web, "other.txt", b"Unrelated notes about turnips.")
        made = _assistant(web, file_ids=[file_id], tools=["calculator"])
    client = _sdk(base, key)
    assert "assistant/treasure-guide" in [m.id for m in client.models.list().data]

    scripted.enqueue(
        Reply(tool_calls=[ToolCall("c1", "calculator", '{"expression": "6*7"}')]),
        "Arr, beneath the lighthouse [1], and 6*7 is 42.",
    )
    answer = client.chat.completions.create(
        model="assistant/treasure-guide",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is the treasure?"},
        ],
    )
    assert answer.model == "assistant/treasure-guide"
    assert answer.choices[0].message.content == "Arr, beneath the lighthouse [1], and 6*7 is 42."
    extra = answer.model_extra or {}
    steps = extra["parley"]["steps"]
    assert [s["name"] for s in steps] == ["calculator"] and "42" in steps[0]["output"]
    files = [s for s in extra["parley"]["sources"] if s["kind"] == "file"]
    assert [s["file_id"] for s in files] == [file_id]
    prompt = last_turn_request(scripted).messages[0].content
    assert "Answer as a pirate." in prompt and "Be brief." in prompt
    assert "beneath the lighthouse" in prompt and "turnips" not in prompt
    # without store: true the chat is gone once the answer is out
    assert extra["parley"]["conversation_id"] is None
    with browser(base) as web:
        assert _all_chats(web) == []

    # streamed: text chunks, then the steps and sources on the last chunk
    scripted.enqueue("Beneath the lighthouse [1].")
    chunks = list(
        client.chat.completions.create(
            model="assistant/treasure-guide",
            messages=[{"role": "user", "content": "Again?"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Beneath the lighthouse [1]."
    assert chunks[-1].choices[0].finish_reason == "stop"
    last = chunks[-1].model_extra or {}
    assert [s["file_id"] for s in last["parley"]["sources"] if s["kind"] == "file"] == [file_id]

    # store: true keeps it as a chat with the assistant
    kept = client.chat.completions.create(
        model="assistant/treasure-guide",
        messages=[{"role": "user", "content": "Keep this one"}],
        store=True,
    )
    conversation_id = (kept.model_extra or {})["parley"]["conversation_id"]
    with browser(base) as web:
        chat = web.get(f"/api/conversations/{conversation_id}").json()
        assert chat["conversation"]["assistant_id"] == made["id"]
        assert len(_all_chats(web)) == 1  # the kept one (the export sees every chat)
        header = web.get(f"/api/conversations/{conversation_id}/assistant").json()
        assert header["answers"][0]["version"] == 1


def test_the_responses_api_uses_the_assistant(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    with browser(base) as web:
        file_id = ready_file(web, "map.txt", b"The treasure lies beneath the lighthouse.")
        _assistant(web, file_ids=[file_id])
    client = _sdk(base, key)
    scripted.enqueue("Beneath the lighthouse [1].")
    response = client.responses.create(
        model="assistant/treasure-guide", input="Where is the treasure?"
    )
    assert response.output_text == "Beneath the lighthouse [1]."
    assert response.model == "assistant/treasure-guide"
    notes = response.output[-1].content[0].annotations  # type: ignore[union-attr]
    assert [n.file_id for n in notes] == [file_id]  # type: ignore[union-attr]
    prompt = last_turn_request(scripted).messages[0].content
    assert "Answer as a pirate." in prompt and "beneath the lighthouse" in prompt
    # continued with previous_response_id: still the assistant's chat
    scripted.enqueue("Still here.")
    more = client.responses.create(
        model="assistant/treasure-guide", input="And then?", previous_response_id=response.id
    )
    assert more.output_text == "Still here."
    assert "Answer as a pirate." in last_turn_request(scripted).messages[0].content


def test_a_keys_assistants_scope_is_enforced(live: tuple[str, str]) -> None:
    base, _key = live
    with browser(base) as web:
        allowed = _assistant(web)
        _assistant(web, name="Secret keeper")
        limited = make_key(web, scopes={"assistants": [allowed["slug"]]})["key"]
        by_id = make_key(web, scopes={"assistants": [allowed["id"]]})["key"]
    client = _sdk(base, limited)
    models = [m.id for m in client.models.list().data]
    assert "assistant/treasure-guide" in models and "assistant/secret-keeper" not in models
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model="assistant/secret-keeper", messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="assistant/secret-keeper", input="hi")
    ok = client.chat.completions.create(
        model="assistant/treasure-guide", messages=[{"role": "user", "content": "hi"}]
    )
    assert ok.choices[0].message.content
    ok = _sdk(base, by_id).chat.completions.create(
        model="assistant/treasure-guide", messages=[{"role": "user", "content": "hi"}]
    )
    assert ok.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="assistant/nobody", messages=[{"role": "user", "content": "hi"}]
        )


def test_a_client_that_leaves_mid_stream_stops_the_turn_and_leaves_no_chat(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    with browser(base) as web:
        _assistant(web)
    scripted.enqueue(Reply(text="word " * 400, delay_s=0.02))
    stream = _sdk(base, key).chat.completions.create(
        model="assistant/treasure-guide",
        messages=[{"role": "user", "content": "Tell me a long tale"}],
        stream=True,
    )
    pieces = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
        if pieces >= 3:
            break
    stream.close()
    started = time.monotonic()
    with browser(base) as web:
        for _ in range(200):
            if _all_chats(web) == []:
                break
            time.sleep(0.05)
        assert _all_chats(web) == []  # temporary ones included
    # the turn was stopped: gone long before the 400 words (8 s) could have streamed
    assert time.monotonic() - started < 5
    assert len(scripted.requests) == 1
