"""Servers that number tool calls per response (``call_0`` in every round, as the
scripted upstream and some local servers do) still give each step of a turn its
own id: steps, results and confirmations are keyed by it (the web app's list
of steps broke on the repeat)."""

from __future__ import annotations

from parley.engine import run_tool_loop
from parley.messages import Message, ToolCall, ToolResult, ToolStart
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import ToolRegistry, tool


@tool
def lookup(term: str) -> str:
    """Look something up."""
    return f"{term}: found"


async def test_repeated_call_ids_get_unique_ids_within_a_turn() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("call_0", "lookup", '{"term": "a"}')]),
            Reply(tool_calls=[ToolCall("call_0", "lookup", '{"term": "b"}')]),
            Reply(tool_calls=[ToolCall("call_0", "lookup", '{"term": "c"}')]),
            "done",
        ]
    )
    events = [
        e async for e in run_tool_loop(model, [Message("user", "go")], tools=ToolRegistry([lookup]))
    ]
    starts = [e.id for e in events if isinstance(e, ToolStart)]
    results = {e.id: e.output for e in events if isinstance(e, ToolResult)}
    assert len(starts) == 3 and len(set(starts)) == 3, starts
    assert starts[0] == "call_0"  # a first use keeps the model's id
    assert [results[i] for i in starts] == ["a: found", "b: found", "c: found"]
    # each result answers its own call in what the model saw next
    last = model.requests[-1].messages
    calls = [c.id for m in last if m.tool_calls for c in m.tool_calls]
    answered = [m.tool_call_id for m in last if m.role == "tool"]
    assert calls == answered == starts
