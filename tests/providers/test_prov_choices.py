"""``ChatRequest.tool_choice`` and ``reasoning_effort`` in each provider's terms
(the engine and the Responses API set them provider-neutrally)."""

from __future__ import annotations

from parley.messages import Message, ToolSpec
from parley.providers import anthropic, openai_compat
from parley.providers.base import ChatRequest, ModelInfo

TOOL = ToolSpec("lookup", "Look up.", {"type": "object", "properties": {}})


def _request(**fields: object) -> ChatRequest:
    return ChatRequest(messages=[Message("user", "hi")], tools=[TOOL], **fields)  # type: ignore[arg-type]


def test_openai_wire() -> None:
    wire = openai_compat.request_to_wire
    assert wire("m", _request(tool_choice="none"))["tool_choice"] == "none"
    assert wire("m", _request(tool_choice="required"))["tool_choice"] == "required"
    assert wire("m", _request(tool_choice="function:lookup"))["tool_choice"] == {
        "type": "function",
        "function": {"name": "lookup"},
    }
    no_tools = ChatRequest(messages=[Message("user", "hi")], tool_choice="none")
    assert "tool_choice" not in wire("m", no_tools)  # OpenAI refuses a choice without tools
    assert wire("m", _request(reasoning_effort="high"))["reasoning_effort"] == "high"
    assert "reasoning_effort" not in wire("m", _request())


def test_anthropic_wire() -> None:
    thinker = ModelInfo("anthropic", "claude", max_output_tokens=4096, supports_reasoning=True)
    plain = ModelInfo("anthropic", "haiku", max_output_tokens=4096)
    wire = anthropic.request_to_wire
    assert wire(plain, _request(tool_choice="none"))["tool_choice"] == {"type": "none"}
    assert wire(plain, _request(tool_choice="required"))["tool_choice"] == {"type": "any"}
    assert wire(plain, _request(tool_choice="function:lookup"))["tool_choice"] == {
        "type": "tool",
        "name": "lookup",
    }
    sent = wire(thinker, _request(reasoning_effort="medium"))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert sent["max_tokens"] > 8192  # the answer still has room after thinking
    assert "thinking" not in wire(plain, _request(reasoning_effort="medium"))


def test_parallel_tool_calls_and_strict_in_each_providers_terms() -> None:
    strict = ToolSpec("lookup", "Look up.", {"type": "object", "properties": {}}, strict=True)
    one_at_a_time = ChatRequest(
        messages=[Message("user", "hi")], tools=[strict], parallel_tool_calls=False
    )
    sent = openai_compat.request_to_wire("m", one_at_a_time)
    assert sent["parallel_tool_calls"] is False
    assert sent["tools"][0]["function"]["strict"] is True
    plain = openai_compat.request_to_wire("m", _request())
    assert "parallel_tool_calls" not in plain and "strict" not in plain["tools"][0]["function"]

    info = ModelInfo("anthropic", "haiku", max_output_tokens=4096)
    wire = anthropic.request_to_wire
    assert wire(info, one_at_a_time)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    forced = _request(tool_choice="function:lookup", parallel_tool_calls=False)
    assert wire(info, forced)["tool_choice"] == {
        "type": "tool",
        "name": "lookup",
        "disable_parallel_tool_use": True,
    }
    # "none" takes no such flag (Anthropic refuses it there)
    none = _request(tool_choice="none", parallel_tool_calls=False)
    assert wire(info, none)["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in wire(info, _request())
    assert "strict" not in wire(info, one_at_a_time)["tools"][0]
