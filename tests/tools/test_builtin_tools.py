"""Built-in tools: the safe calculator and the current date and time."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from parley.messages import ToolCall
from parley.tools import CalculatorError, ToolContext, default_registry, evaluate
from parley.tools.builtin import MAX_EXPRESSION_CHARS, format_number


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 2", 4),
        ("2 * (3 + 4) ** 2", 98),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("-(-3)", 3),
        ("+5", 5),
        ("2 ** -1", 0.5),
        ("2 ^ 10", 1024),  # a caret means power to people
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("floor(2.7) + ceil(2.1)", 5),
        ("log(8, 2)", 3.0),
        ("log10(1000)", 3.0),
        ("exp(0) + cos(0) + sin(0) + tan(0)", 2.0),
        ("pi", math.pi),
        ("e ** 1", math.e),
        ("2 ** 1000", 2**1000),
        ("1e3 * 2", 2000.0),
        ("(" * 150 + "1" + ")" * 150, 1),
        ("-" * 400 + "1", 1),
    ],
)
def test_ordinary_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "Unknown function '__import__'"),
        ("().__class__", "Unsupported syntax (attribute access)"),
        ("()", "Unsupported syntax (tuples)"),
        ("(1).__class__", "Unsupported syntax (attribute access)"),
        ("open('x')", "Unknown function 'open'"),
        ("lambda: 1", "Unsupported syntax (lambdas)"),
        ("[x for x in (1, 2)]", "Unsupported syntax (comprehensions)"),
        ("'abc'", "Only numbers are allowed"),
        ("True + 1", "Only numbers are allowed"),
        ("1j * 2", "Only numbers are allowed"),
        ("x + 1", "Unknown name 'x'"),
        ("math.sqrt(4)", "Unknown function 'this call'"),
        ("sqrt(x=4)", "sqrt() takes 1 to 1 plain arguments"),
        ("sqrt(*[4])", "Argument unpacking is not supported"),
        ("1 if 1 else 2", "conditional expressions"),
        ("1 < 2", "comparisons"),
        ("1 << 100", "not supported"),
        ("(y := 3)", "assignments"),
        ("9**9**9", "too large"),
        ("10**100000", "too large"),
        ("2**20000", "too large"),
        ("(2**10000) * (2**10000)", "too large"),
        ("10.0 ** 400", "too large for floating point"),
        ("exp(1000)", "too large for floating point"),
        ("1 / 0", "Division by zero"),
        ("5 % 0", "Division by zero"),
        ("sqrt(-1)", "Math error"),
        ("(-8) ** (1/3)", "complex number"),
        ("round(1.5, 1000)", "round() takes a whole number of digits"),
        ("2 +", "Cannot parse"),
        ("", "empty"),
        ("1" + "+1" * MAX_EXPRESSION_CHARS, "too long"),
    ],
)
def test_refusals_are_clear(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError) as info:
        evaluate(expression)
    assert message in str(info.value)


def test_hostile_inputs_are_refused_quickly() -> None:
    started = time.monotonic()
    for expression in ("9**9**9", "10**100000", "(10**4000)**(10**4000)", "2**9000 * 3**9000"):
        with pytest.raises(CalculatorError):
            evaluate(expression)
    assert time.monotonic() - started < 5  # computing any of these would take minutes


def test_format_number() -> None:
    assert format_number(0.1 + 0.2) == "0.3"
    assert format_number(4.0) == "4"
    assert format_number(1e20) == "1e+20"
    assert format_number(10**30) == str(10**30)


async def test_calculator_tool_through_the_registry() -> None:
    registry = default_registry()
    ok = await registry.run(ToolCall("1", "calculator", '{"expression": "0.1 + 0.2"}'))
    assert (ok.output, ok.is_error) == ("0.3", False)
    bad = await registry.run(ToolCall("2", "calculator", '{"expression": "__import__(\'os\')"}'))
    assert bad.is_error and "Unknown function '__import__'" in bad.output


async def test_current_datetime_uses_the_users_zone_or_the_argument() -> None:
    registry = default_registry()
    ctx = ToolContext(
        timezone="Europe/Paris", clock=lambda: datetime(2026, 11, 22, 13, 3, 5, tzinfo=UTC)
    )
    mine = await registry.run(ToolCall("1", "current_datetime", "{}"), context=ctx)
    assert mine.output.startswith("Sunday 2026-11-22 14:03:05 (Europe/Paris, UTC+01:00)")
    assert "2026-11-22T14:03:05+01:00" in mine.output
    tokyo = await registry.run(
        ToolCall("2", "current_datetime", '{"timezone": "Asia/Tokyo"}'), context=ctx
    )
    assert tokyo.output.startswith("Sunday 2026-11-22 22:03:05 (Asia/Tokyo, UTC+09:00)")
    bad = await registry.run(
        ToolCall("3", "current_datetime", '{"timezone": "Mars/Olympus"}'), context=ctx
    )
    assert bad.is_error and "Unknown time zone 'Mars/Olympus'" in bad.output
    traversal = await registry.run(
        ToolCall("4", "current_datetime", '{"timezone": "../../etc/passwd"}'), context=ctx
    )
    assert traversal.is_error and "Unknown time zone" in traversal.output


def test_default_registry_holds_the_builtins() -> None:
    registry = default_registry()
    assert registry.names() == ["current_datetime", "calculator"]
    assert default_registry() is not registry  # a fresh one each time
    schema = registry.specs(["current_datetime"])[0].parameters
    assert schema["required"] == [] and "ctx" not in schema["properties"]
