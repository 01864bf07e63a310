"""Every response object and stream event Parley emits, validated against the Open
Responses specification's own types (the ``openresponses-types`` package)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openresponses_types as spec
import pytest
from pydantic import BaseModel

from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel

EVENTS: dict[str, type[BaseModel]] = {
    "response.created": spec.ResponseCreatedStreamingEvent,
    "response.queued": spec.ResponseQueuedStreamingEvent,
    "response.in_progress": spec.ResponseInProgressStreamingEvent,
    "response.completed": spec.ResponseCompletedStreamingEvent,
    "response.failed": spec.ResponseFailedStreamingEvent,
    "response.incomplete": spec.ResponseIncompleteStreamingEvent,
    "response.output_item.added": spec.ResponseOutputItemAddedStreamingEvent,
    "response.output_item.done": spec.ResponseOutputItemDoneStreamingEvent,
    "response.content_part.added": spec.ResponseContentPartAddedStreamingEvent,
    "response.content_part.done": spec.ResponseContentPartDoneStreamingEvent,
    "response.output_text.delta": spec.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": spec.ResponseOutputTextDoneStreamingEvent,
    "response.reasoning.delta": spec.ResponseReasoningDeltaStreamingEvent,
    "response.reasoning.done": spec.ResponseReasoningDoneStreamingEvent,
    "response.function_call_arguments.delta": spec.ResponseFunctionCallArgumentsDeltaStreamingEvent,
    "response.function_call_arguments.done": spec.ResponseFunctionCallArgumentsDoneStreamingEvent,
    "error": spec.ErrorStreamingEvent,
}

TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
}


def _post(live: tuple[str, str], body: dict[str, Any]) -> httpx.Response:
    base, key = live
    return httpx.post(
        f"{base}/responses", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def _events(live: tuple[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
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
        name = None
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["type"] == name  # the SSE event name is the type
                events.append(event)
    return events


def _validate(events: list[dict[str, Any]]) -> None:
    for event in events:
        model = EVENTS.get(event["type"])
        assert model is not None, f"not an event of the specification: {event['type']}"
        model.model_validate(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="A plain answer in several words.", chunk_size=2),
        Reply(reasoning="Think first.", text="Then answer."),
        Reply(tool_calls=[ToolCall("call_a", "lookup", '{"word": "ox"}')]),
        Reply(text="Cut short", finish_reason="length"),
    ],
    ids=["text", "reasoning", "function_call", "incomplete"],
)
def test_stream_and_object_match_the_specification(
    live: tuple[str, str], scripted: ScriptedModel, reply: Reply
) -> None:
    scripted.enqueue(reply)
    events = _events(live, {"model": "scripted/scripted", "input": "hi", "tools": [TOOL]})
    _validate(events)
    final = events[-1]["response"]
    spec.ResponseResource.model_validate(final)
    base, key = live
    stored = httpx.get(
        f"{base}/responses/{final['id']}", headers={"Authorization": f"Bearer {key}"}
    ).json()
    spec.ResponseResource.model_validate(stored)
    assert stored["output"] == final["output"]
    if reply.finish_reason == "length":
        assert final["status"] == "incomplete"
        assert final["incomplete_details"] == {"reason": "max_output_tokens"}


def test_non_streaming_object_and_failure(live: tuple[str, str], scripted: ScriptedModel) -> None:
    from parley.errors import ProviderUnavailable

    scripted.enqueue("Fine.")
    ok = _post(live, {"model": "scripted/scripted", "input": "hi"})
    assert ok.status_code == 200
    spec.ResponseResource.model_validate(ok.json())

    scripted.enqueue(Reply(error=ProviderUnavailable("upstream is down")))
    events = _events(live, {"model": "scripted/scripted", "input": "hi"})
    _validate(events)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "provider_unavailable"


def test_compaction_matches_the_specification(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    scripted.enqueue("A short summary.")
    made = httpx.post(
        f"{base}/responses/compact",
        json={"model": "scripted/scripted", "input": [{"role": "user", "content": "Long talk."}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert made.status_code == 200, made.text
    spec.CompactResource.model_validate(made.json())
