"""Tool calling through constrained JSON for models without native tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from parley.engine import Limits, run_tool_loop
from parley.engine.json_tools import decision_instruction, decision_schema, parse_decision
from parley.errors import ProviderBadRequest
from parley.messages import EngineEvent, ErrorEvent, Message, TextDelta, ToolResult, ToolStart
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import default_registry

USER = [Message("system", "Be helpful."), Message("user", "What is 6*7?")]


def plain_model(*replies: Reply | str | dict[str, object]) -> ScriptedModel:
    model = ScriptedModel(replies)
    model.info = replace(model.info, supports_tools=False)
    return model


async def collect(events: AsyncIterator[EngineEvent]) -> list[EngineEvent]:
    return [event async for event in events]


async def test_decision_runs_the_tool_then_streams_the_answer() -> None:
    model = plain_model(
        {"tool": "calculator", "arguments": {"expression": "6*7"}},
        {"tool": "none", "arguments": {}},
        "6 times 7 is 42.",
    )
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    assert [e.type for e in events] == [
        "usage", "tool_start", "tool_result", "usage", "text", "text", "text", "text", "text",
        "usage", "done",
    ]  # fmt: skip
    start = next(e for e in events if isinstance(e, ToolStart))
    assert start.name == "calculator" and '"6*7"' in start.arguments
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.output == "42" and not result.is_error
    # decisions are internal: only the final answer is streamed to the user
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "6 times 7 is 42."

    first, second, final = model.requests
    assert first.tools == [] and first.response_format == decision_schema(
        default_registry().specs()
    )
    assert first.messages[-1].role == "system" and "calculator" in first.messages[-1].content
    assert second.response_format is not None
    assert "<tool_output" in second.messages[-2].content and "42" in second.messages[-2].content
    assert final.response_format is None and final.tools == []
    assert final.messages[-1].role == "user" and "Result of the calculator tool" in (
        final.messages[-1].content
    )
    assert events[-1].type == "done" and events[-1].finish_reason == "stop"


async def test_unusable_decision_falls_back_to_a_plain_answer() -> None:
    model = plain_model("I think the answer is", "42.")
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    assert not any(isinstance(e, ToolStart) for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "42."
    assert [r.response_format is not None for r in model.requests] == [True, False]


async def test_server_refusing_response_format_still_answers() -> None:
    model = plain_model(Reply(error=ProviderBadRequest("response_format unsupported")), "Hi!")
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    assert not any(isinstance(e, ErrorEvent) for e in events)
    assert events[-1].type == "done" and events[-1].finish_reason == "stop"


async def test_other_decision_errors_end_the_turn() -> None:
    from parley.errors import ProviderUnavailable

    model = plain_model(Reply(error=ProviderUnavailable("down")))
    events = await collect(run_tool_loop(model, USER, tools=default_registry()))
    assert [e.type for e in events] == ["usage", "error", "done"]
    assert events[-1].type == "done" and events[-1].finish_reason == "error"


async def test_step_budget_always_leaves_room_for_the_answer() -> None:
    model = plain_model(
        {"tool": "calculator", "arguments": {"expression": "1+1"}},
        {"tool": "calculator", "arguments": {"expression": "2+2"}},
        "Final.",
    )
    events = await collect(run_tool_loop(model, USER, tools=default_registry(), limits=Limits(3)))
    assert len(model.requests) == 3 and model.requests[-1].response_format is None
    assert len([e for e in events if isinstance(e, ToolResult)]) == 2
    assert events[-1].type == "done" and events[-1].finish_reason == "stop"


async def test_no_tools_enabled_means_a_single_plain_call() -> None:
    model = plain_model("Hello.")
    events = await collect(run_tool_loop(model, USER, tools=default_registry(), enabled_tools=[]))
    assert len(model.requests) == 1 and model.requests[0].response_format is None
    assert events[-1].type == "done"


def test_parse_decision_is_tolerant_but_strict_about_names() -> None:
    names = ["calculator"]
    fenced = '```json\n{"tool": "calculator", "arguments": {"expression": "1"}}\n```'
    assert parse_decision(fenced, names) == ("calculator", {"expression": "1"})
    assert parse_decision('{"tool": "none", "arguments": {}}', names) is None
    assert parse_decision('{"tool": "rm_rf", "arguments": {}}', names) is None
    assert parse_decision('{"tool": "calculator", "arguments": [1]}', names) is None
    assert parse_decision("no json here", names) is None
    assert parse_decision("{broken", names) is None


def test_decision_schema_and_instruction_list_the_tools() -> None:
    specs = default_registry().specs()
    schema = decision_schema(specs)
    assert schema["properties"]["tool"]["enum"] == ["current_datetime", "calculator", "none"]
    assert schema["required"] == ["tool", "arguments"]
    text = decision_instruction(specs)
    assert '"expression" (string, required)' in text and "untrusted" in text


async def test_a_model_without_tool_use_skips_the_decision_pass() -> None:
    """The starter model cannot follow a tool schema: no decision call, no tools,
    one streamed answer (the seconds of a grammar-constrained pass are not spent)."""
    for native in (False, True):
        model = ScriptedModel(["Hello there."])
        model.info = replace(model.info, supports_tools=native, tool_use=False)
        events = await collect(run_tool_loop(model, USER, tools=default_registry()))
        assert [e.type for e in events] == ["text", "text", "usage", "done"]
        (only,) = model.requests
        assert only.response_format is None and only.tools == []
