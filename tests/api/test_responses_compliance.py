"""The Open Responses compliance suite's scenarios, replayed in CI.

The suite itself (``scripts/compliance-test.ts`` in ``openresponses/openresponses``)
runs outside this repository (docs/DEVELOPMENT.md, README "Responses and
Conversations"); CI cannot reach it. These tests send requests of the same kinds
(basic text, streaming, a system message, a function tool plain and streamed, an
image, a multi-turn history), over real HTTP with the suite's wire shapes, to a
server whose model is the rule-based one ``scripts/compliance_server.py`` uses,
and check what the suite checks (status, output items, stream events) plus what
it cannot see: that the system message, the history and the image reached the
model. Objects and events are validated with the specification's own types.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openresponses_types as spec
import pytest

from parley.providers.base import ChatRequest
from parley.providers.scripted import ScriptedModel

MODEL = "scripted/scripted"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City and state"}},
        "required": ["location"],
    },
}
# A 1x1 PNG: the suite sends its image inline as a data URL.
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _load_server() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "compliance_server.py"
    loaded = importlib.util.spec_from_file_location("compliance_server", path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


compliance_server = _load_server()


@pytest.fixture
def scripted() -> ScriptedModel:
    """The compliance server's rule-based model, answering as ``scripted/scripted``."""
    return ScriptedModel(default=compliance_server.answer)


def _message(role: str, content: Any) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


def _post(live: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
    base, key = live
    reply = httpx.post(
        f"{base}/responses",
        json={**body, "stream": False},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    spec.ResponseResource.model_validate(data)
    return data


def _stream(live: tuple[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream's events, each validated as the event type it names."""
    base, key = live
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "POST",
        f"{base}/responses",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:].strip()))
    for event in events:
        assert event["type"] in _EVENT_TYPES, event["type"]
        _EVENT_TYPES[event["type"]].model_validate(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


_EVENT_TYPES: dict[str, Any] = {
    "response.created": spec.ResponseCreatedStreamingEvent,
    "response.in_progress": spec.ResponseInProgressStreamingEvent,
    "response.completed": spec.ResponseCompletedStreamingEvent,
    "response.output_item.added": spec.ResponseOutputItemAddedStreamingEvent,
    "response.output_item.done": spec.ResponseOutputItemDoneStreamingEvent,
    "response.content_part.added": spec.ResponseContentPartAddedStreamingEvent,
    "response.content_part.done": spec.ResponseContentPartDoneStreamingEvent,
    "response.output_text.delta": spec.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": spec.ResponseOutputTextDoneStreamingEvent,
    "response.function_call_arguments.delta": spec.ResponseFunctionCallArgumentsDeltaStreamingEvent,
    "response.function_call_arguments.done": spec.ResponseFunctionCallArgumentsDoneStreamingEvent,
}


def _text(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def test_basic_text_response(live: tuple[str, str], scripted: ScriptedModel) -> None:
    body = {"model": MODEL, "input": [_message("user", "Say hello in exactly 3 words.")]}
    response = _post(live, body)
    assert response["status"] == "completed"
    assert response["output"] and response["output"][0]["type"] == "message"
    assert "Say hello in exactly 3 words." in _text(response)
    assert response["completed_at"] is not None and response["usage"]["total_tokens"] > 0


def test_streaming_response(live: tuple[str, str], scripted: ScriptedModel) -> None:
    events = _stream(live, {"model": MODEL, "input": [_message("user", "Count from 1 to 5.")]})
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    final = events[-1]["response"]
    assert final["status"] == "completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == _text(final) and "Count from 1 to 5." in deltas


def test_system_prompt_reaches_the_model(live: tuple[str, str], scripted: ScriptedModel) -> None:
    pirate = "You are a pirate. Always respond in pirate speak."
    body = {
        "model": MODEL,
        "input": [_message("system", pirate), _message("user", "Say hello.")],
    }
    response = _post(live, body)
    assert response["status"] == "completed" and response["output"]
    seen: ChatRequest = scripted.requests[-1]
    assert seen.messages[0].role == "system" and pirate in seen.messages[0].content
    assert seen.messages[-1].role == "user" and seen.messages[-1].content == "Say hello."


def test_tool_calling(live: tuple[str, str], scripted: ScriptedModel) -> None:
    body = {
        "model": MODEL,
        "input": [_message("user", "What's the weather like in San Francisco?")],
        "tools": [WEATHER],
    }
    response = _post(live, body)
    calls = [item for item in response["output"] if item["type"] == "function_call"]
    assert len(calls) == 1
    assert calls[0]["name"] == "get_weather" and calls[0]["status"] == "completed"
    assert json.loads(calls[0]["arguments"]) == {"location": "San Francisco, CA"}
    assert response["tools"][0]["name"] == "get_weather"
    # The model was offered the caller's function, with its schema.
    assert [tool.name for tool in scripted.requests[-1].tools] == ["get_weather"]


def test_tool_calling_streaming(live: tuple[str, str], scripted: ScriptedModel) -> None:
    body = {
        "model": MODEL,
        "input": [_message("user", "What's the weather like in San Francisco?")],
        "tools": [WEATHER],
    }
    events = _stream(live, body)
    kinds = [e["type"] for e in events]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert added and added[0]["item"]["type"] == "function_call"
    assert done and done[0]["item"]["type"] == "function_call"
    assert "response.function_call_arguments.delta" in kinds
    (finished,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert json.loads(finished["arguments"]) == {"location": "San Francisco, CA"}
    assert finished["item_id"] == added[0]["item"]["id"]
    assert events[-1]["response"]["output"][0]["call_id"] == added[0]["item"]["call_id"]


def test_image_input_reaches_the_model(live: tuple[str, str], scripted: ScriptedModel) -> None:
    content = [
        {"type": "input_text", "text": "What do you see in this image?"},
        {"type": "input_image", "image_url": PIXEL},
    ]
    response = _post(live, {"model": MODEL, "input": [_message("user", content)]})
    assert response["status"] == "completed"
    assert "1 image(s)" in _text(response)
    assert len(scripted.requests[-1].messages[-1].images) == 1


def test_multi_turn_history_reaches_the_model(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    said = "Hello Alice! Nice to meet you. How can I help you today?"
    body = {
        "model": MODEL,
        "input": [
            _message("user", "My name is Alice."),
            _message("assistant", said),
            _message("user", "What is my name?"),
        ],
    }
    response = _post(live, body)
    assert response["status"] == "completed" and response["output"]
    roles = [(m.role, m.content) for m in scripted.requests[-1].messages if m.role != "system"]
    assert roles == [
        ("user", "My name is Alice."),
        ("assistant", said),
        ("user", "What is my name?"),
    ]


def test_input_items_list_assistant_text_in_the_specification_shape(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    """An assistant turn sent as plain text (as the suite's multi-turn test does) or
    as ``output_text`` without annotations is listed as a full ``Message`` item."""
    body = {
        "model": MODEL,
        "input": [
            _message("user", "My name is Alice."),
            _message("assistant", "Hello Alice!"),
            _message("assistant", [{"type": "output_text", "text": "Anything else?"}]),
            _message("user", "What is my name?"),
        ],
    }
    response = _post(live, body)
    base, key = live
    listed = httpx.get(
        f"{base}/responses/{response['id']}/input_items",
        headers={"Authorization": f"Bearer {key}"},
    ).json()["data"]
    assistant = [item for item in listed if item["role"] == "assistant"]
    assert len(assistant) == 2
    for item in listed:
        spec.Message.model_validate(item)
    for item in assistant:
        assert item["content"][0]["annotations"] == []


def test_rule_model_makes_arguments_from_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]},
            "days": {"type": "integer"},
            "hourly": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
            "note": {"type": ["null", "string"]},
        },
        "required": ["location", "unit", "days", "hourly", "tags", "where", "note"],
    }
    assert compliance_server.example_arguments(schema) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
        "days": 1,
        "hourly": True,
        "tags": ["example tags"],
        "where": {"lat": 1.5},
        "note": "example note",
    }
    # Without "required", every property gets a value; no schema: no arguments.
    assert compliance_server.example_arguments({"properties": {"q": {}}}) == {"q": "example q"}
    assert compliance_server.example_arguments(None) == {}
