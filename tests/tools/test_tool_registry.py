"""ToolRegistry.run: validation, timeouts, failures, output caps, context injection."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from parley.errors import ToolError
from parley.messages import ToolCall
from parley.tools import ToolContext, ToolRegistry, tool, validate


@tool
def add(a: int, b: int = 1) -> int:
    """Add two integers."""
    return a + b


@tool
async def whoami(ctx: ToolContext) -> dict[str, str | None]:
    """Who is asking, and when."""
    return {"conversation": ctx.conversation_id, "now": ctx.now().isoformat()}


@tool(timeout_s=0.05)
async def nap(seconds: float) -> str:
    """Sleep."""
    await asyncio.sleep(seconds)
    return "rested"


@tool
def blocking(seconds: float) -> str:
    """Sleep in a thread."""
    time.sleep(seconds)
    return "rested"


@tool
def shout(text: str) -> str:
    """Repeat loudly."""
    return text.upper() * 1000


@tool
def fail(kind: str) -> str:
    """Fail in various ways."""
    if kind == "tool":
        raise ToolError("The service said no.")
    if kind == "timeout":
        raise TimeoutError("socket timed out")
    raise ValueError("bad value")


REGISTRY = ToolRegistry([add, whoami, nap, blocking, shout, fail], max_output_chars=100)


async def run(name: str, arguments: str, **kwargs: object) -> tuple[str, bool]:
    outcome = await REGISTRY.run(ToolCall("id", name, arguments), **kwargs)  # type: ignore[arg-type]
    return outcome.output, outcome.is_error


async def test_valid_call_returns_rendered_output() -> None:
    assert await run("add", '{"a": 2, "b": 40}') == ("42", False)
    assert await run("add", '{"a": 2}') == ("3", False)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{oops", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "missing required argument 'a'"),
        ('{"a": "2"}', "'a' must be integer, got string"),
        ('{"a": true}', "'a' must be integer, got boolean"),
        ('{"a": 1.5}', "'a' must be integer, got number"),
        ('{"a": 1, "c": 3}', "unknown argument 'c'"),
    ],
)
async def test_bad_arguments_get_a_clear_error(arguments: str, message: str) -> None:
    output, is_error = await run("add", arguments)
    assert is_error and message in output and output.startswith("Invalid arguments for tool 'add'")


async def test_unknown_tool_lists_the_available_ones() -> None:
    output, is_error = await run("nope", "{}")
    assert is_error and output.startswith("Unknown tool 'nope'. Available tools: add, whoami")


async def test_failures_become_error_results() -> None:
    assert await run("fail", '{"kind": "tool"}') == ("The service said no.", True)
    assert await run("fail", '{"kind": "value"}') == (
        "Tool 'fail' failed: ValueError: bad value",
        True,
    )
    output, is_error = await run("fail", '{"kind": "timeout"}')
    assert is_error and output == "Tool 'fail' failed: TimeoutError: socket timed out"


async def test_timeouts_use_the_smaller_limit() -> None:
    started = time.monotonic()
    output, is_error = await run("nap", '{"seconds": 5}', timeout_s=10)
    assert is_error and output == "Tool 'nap' timed out after 0.05 s."
    output, is_error = await run("blocking", '{"seconds": 0.5}', timeout_s=0.05)
    assert is_error and "timed out after 0.05 s" in output
    assert time.monotonic() - started < 4  # the nap alone is 5 s
    assert await run("nap", '{"seconds": 0}', timeout_s=10) == ("rested", False)


async def test_output_is_capped_with_a_note() -> None:
    output, is_error = await run("shout", '{"text": "ab"}')
    assert not is_error and output.startswith("AB" * 50)
    assert output.endswith("[output truncated: 2000 characters, only the first 100 are shown]")


async def test_context_is_injected_and_results_are_json() -> None:
    ctx = ToolContext(
        timezone="Asia/Tokyo",
        conversation_id="conv-1",
        clock=lambda: datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    )
    output, is_error = await run("whoami", "{}", context=ctx)
    assert not is_error
    assert output == '{"conversation": "conv-1", "now": "2026-01-01T09:00:00+09:00"}'
    default, _ = await run("whoami", "{}")
    assert '"conversation": null' in default


async def test_cancellation_propagates() -> None:
    task = asyncio.create_task(REGISTRY.run(ToolCall("id", "nap", '{"seconds": 0.04}')))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_registry_bookkeeping() -> None:
    registry = ToolRegistry([add])
    registry.register(whoami)
    assert registry.names() == ["add", "whoami"] and "add" in registry and len(registry) == 2
    assert registry.get("add") is add and registry.get("nope") is None
    with pytest.raises(ValueError, match="already registered"):
        registry.register(add)

    def plain(x: str) -> str:
        """A plain function."""
        return x

    assert registry.register(plain).name == "plain"
    assert [s.name for s in registry.specs(["whoami", "gone", "add"])] == ["whoami", "add"]
    assert [s.name for s in registry.specs()] == ["add", "whoami", "plain"]


def test_validate_covers_nested_shapes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "mode": {"enum": ["a", "b"]},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
    }
    assert validate({"tags": ["x"], "mode": "a", "maybe": None}, schema) == []
    assert validate({"tags": ["x", 2]}, schema) == ["'tags'[1] must be string, got integer"]
    assert validate({"mode": "c"}, schema) == ['\'mode\' must be one of "a", "b"']
    assert validate({"maybe": "x"}, schema) == ["'maybe' does not match any allowed form"]


def test_invalid_user_zone_falls_back_to_utc() -> None:
    ctx = ToolContext(timezone="Not/AZone", clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert ctx.now().utcoffset() is not None and ctx.now().hour == 0
