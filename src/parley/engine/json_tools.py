"""Tool calling for models without native tools, through constrained JSON.

Small local models (and some servers) have no tool-call API but can follow a
JSON schema (llama.cpp turns it into a grammar). Each step asks for a
decision object ``{"tool": "<name>" | "none", "arguments": {...}}``; a chosen
tool runs like a native one (same events, limits and safety), and its result
is shown to the model as untrusted data. When the model chooses "none", or
its JSON cannot be used, a normal call without tools streams the answer, so
the user always sees the reply arrive token by token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

from parley.messages import EngineEvent, Message, ToolCall, ToolSpec
from parley.providers.base import ChatRequest

from .context import UNTRUSTED_TOOL_OUTPUT_RULE, wrap_tool_output

if TYPE_CHECKING:
    from .loop import ToolLoop

__all__ = ["decision_instruction", "decision_schema", "json_tool_loop", "parse_decision"]

NONE = "none"
DECISION_MAX_TOKENS = 512


def decision_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The JSON schema of a decision. A plain object at the root with an enum
    of tool names: the shape every structured-output backend accepts."""
    return {
        "type": "object",
        "properties": {
            "tool": {"type": "string", "enum": [*(t.name for t in tools), NONE]},
            "arguments": {"type": "object"},
        },
        "required": ["tool", "arguments"],
        "additionalProperties": False,
    }


def _describe_arguments(parameters: dict[str, Any]) -> str:
    props: dict[str, Any] = parameters.get("properties", {})
    if not props:
        return "no arguments"
    required = set(parameters.get("required", []))
    parts = []
    for name, schema in props.items():
        kind = schema.get("type", "any")
        kind = "/".join(kind) if isinstance(kind, list) else kind
        need = "required" if name in required else "optional"
        desc = f": {schema['description']}" if schema.get("description") else ""
        parts.append(f'"{name}" ({kind}, {need}){desc}')
    return "; ".join(parts)


def decision_instruction(tools: Sequence[ToolSpec]) -> str:
    """The short instruction appended for decision calls: tools, then the format."""
    listing = "\n".join(
        f"- {t.name}: {t.description} Arguments: {_describe_arguments(t.parameters)}."
        for t in tools
    )
    return (
        "You may use a tool before answering the user's last message.\n"
        f"Tools:\n{listing}\n\n"
        'Reply with one JSON object only. To use a tool: {"tool": "<tool name>", '
        '"arguments": {...}}. If no tool is needed, or the tool results above already '
        'answer the question: {"tool": "none", "arguments": {}}.\n'
        f"{UNTRUSTED_TOOL_OUTPUT_RULE}"
    )


def parse_decision(text: str, names: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """``(tool, arguments)`` from a decision, or ``None`` for "none" and for
    anything unusable (the caller then answers without tools). Tolerates code
    fences and prose around the object, for servers that ignore the schema."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    name = value.get("tool")
    arguments = value.get("arguments", {})
    if not isinstance(name, str) or name not in names or not isinstance(arguments, dict):
        return None
    return name, arguments


async def json_tool_loop(run: ToolLoop) -> AsyncGenerator[EngineEvent, None]:
    """Decide (constrained JSON) -> run tool -> ... -> stream the final answer.

    At most ``max_steps - 1`` decisions, so the final streamed answer always
    fits in the step budget. A provider that refuses ``response_format``
    (bad request) falls back to a plain answer instead of failing the reply.
    """
    names = [spec.name for spec in run.specs]
    schema = decision_schema(run.specs)
    instruction = Message("system", decision_instruction(run.specs))
    for step in range(1, max(1, run.limits.max_steps)):
        if run.tools_left() == 0:
            break
        request = ChatRequest(
            messages=[*run.convo, instruction],
            temperature=0.0,
            max_tokens=DECISION_MAX_TOKENS,
            response_format=schema,
        )
        async for event in run.call_model(request, forward=False):
            yield event
        result = run.result
        if result.error is not None and result.error.code == "provider_bad_request":
            break
        ended = run.stopped(result)
        if ended is not None:
            for event in ended:
                yield event
            return
        decision = parse_decision(result.text, names)
        if decision is None:
            break
        name, arguments = decision
        call = ToolCall(id=f"json_call_{step}", name=name, arguments=json.dumps(arguments))
        if name in run.client:
            async for event in run.hand_over("", [call]):
                yield event
            return
        # The model sees its own decision, then the result as a user-side note:
        # models without tool support often have chat templates without a tool role.
        run.convo.append(Message("assistant", json.dumps({"tool": name, "arguments": arguments})))
        async for event in run.run_tools([call]):
            yield event
        outcome = run.outcomes[0]
        run.convo.append(
            Message(
                "user",
                f"Result of the {name} tool:\n"
                + wrap_tool_output(name, outcome.output, is_error=outcome.is_error),
            )
        )
        if run.reason is not None:
            for event in run.interrupt_events():
                yield event
            return

    final = ChatRequest(
        messages=run.convo,
        temperature=run.temperature,
        max_tokens=run.max_tokens,
        response_format=run.response_format,
        reasoning_effort=run.reasoning_effort,
        extra=run.extra,
    )
    async for event in run.call_model(final):
        yield event
    ended = run.stopped(run.result)
    if ended is not None:
        for event in ended:
            yield event
        return
    finish = run.result.finish
    run.finish = "stop" if finish in (None, "tool_calls") else finish
