"""``/v1/responses`` in WebSocket mode, with the official openai SDK's
``responses.connect()``: several responses on one socket, chained, every event
valid against the Open Responses specification."""

from __future__ import annotations

import json
from typing import Any

import openai
import openresponses_types as spec
from test_responses_spec import EVENTS
from websockets.sync.client import connect

from apihelpers import last_turn_request
from parley.providers.scripted import Reply, ScriptedModel


def _until_done(conn: Any) -> list[Any]:
    events = []
    for event in conn:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "response.incomplete"):
            return events
    raise AssertionError("the socket closed before the response ended")


def test_two_chained_responses_on_one_socket(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    scripted.enqueue(Reply(text="First answer.", chunk_size=1), "Second answer.")
    with client.responses.connect() as conn:
        conn.response.create(model="scripted/scripted", input="One?")
        first = _until_done(conn)
        done = first[-1].response
        assert done.output_text == "First answer."
        deltas = [e.delta for e in first if e.type == "response.output_text.delta"]
        assert "".join(deltas) == "First answer."
        conn.response.create(model="scripted/scripted", input="Two?", previous_response_id=done.id)
        second = _until_done(conn)
    assert second[-1].response.output_text == "Second answer."
    sent = [m.content for m in last_turn_request(scripted).messages[1:]]
    assert sent == ["One?", "First answer.", "Two?"]
    assert client.responses.retrieve(second[-1].response.id).status == "completed"


def test_socket_events_match_the_spec_and_errors_keep_it_open(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    url = base.replace("http://", "ws://") + "/responses"
    scripted.enqueue("Fine.")
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        ws.send(json.dumps({"type": "nonsense"}))
        error = json.loads(ws.recv())
        spec.WebSocketErrorEvent.model_validate(error)
        assert error["status"] == 400
        ws.send(json.dumps({"type": "response.create", "model": "nope", "input": "hi"}))
        missing = json.loads(ws.recv())
        assert missing["status"] == 404 and "GET /v1/models" in missing["error"]["message"]
        ws.send(
            json.dumps({"type": "response.create", "model": "scripted/scripted", "input": "hi"})
        )
        seen = []
        while not seen or seen[-1]["type"] != "response.completed":
            seen.append(json.loads(ws.recv()))
    for event in seen:
        EVENTS[event["type"]].model_validate(event)
    assert [e["sequence_number"] for e in seen] == list(range(len(seen)))


def test_a_bad_key_is_told_and_closed(live: tuple[str, str]) -> None:
    base, _ = live
    url = base.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers={"Authorization": "Bearer pk-wrong"}) as ws:
        error = json.loads(ws.recv())
        assert error["status"] == 401 and error["error"]["type"] == "authentication_error"
