"""Built-in tools: the current date and time, and a safe calculator.

Small models are bad at dates and arithmetic; these two tools fix the most
common wrong answers. The calculator walks a parsed ``ast`` over a whitelist
(never ``eval``) and bounds the size of every integer it builds, because its
input is written by a model that may be echoing a hostile prompt.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated

from parley.errors import ToolError
from parley.timezones import find_zone
from parley.tools.base import Tool, ToolContext, ToolRegistry, tool

__all__ = ["CalculatorError", "calculator", "current_datetime", "default_registry", "evaluate"]

MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 14_000  # ~4,200 digits: below Python's int->str limit, cheap to compute
MAX_EXPONENT = 100_000  # even float powers beyond this are almost surely a mistake

Number = int | float


class CalculatorError(ToolError):
    """An expression the calculator refuses or cannot compute; the message says why."""


def _bits(value: Number) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(
            f"The result is too large (more than {MAX_INT_BITS} bits); "
            "use smaller numbers or floating point (e.g. 10.0**400)."
        )
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"Exponent {exponent} is too large (limit {MAX_EXPONENT}).")
    # Predict the size before computing: bits(base**n) ~= n * log2(|base|).
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if exact and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise CalculatorError(
            f"{base}**{exponent} is too large to compute exactly (more than {MAX_INT_BITS} bits)."
        )
    result = operator.pow(base, exponent)
    if isinstance(result, complex):
        raise CalculatorError("The result is a complex number, which is not supported.")
    return result


def _multiply(left: Number, right: Number) -> Number:
    if _bits(left) + _bits(right) > MAX_INT_BITS + 1:
        raise CalculatorError(f"The product is too large (more than {MAX_INT_BITS} bits).")
    return left * right


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _round(value: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int) or abs(digits) > 100:
        raise CalculatorError("round() takes a whole number of digits between -100 and 100.")
    return round(value, digits) if digits else round(value)


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(value) if base is None else math.log(value, base)


# name -> (function, minimum arguments, maximum arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "exp": (math.exp, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_SYNTAX_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Subscript: "indexing",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignments",
    ast.Tuple: "tuples",
    ast.List: "lists",
    ast.Dict: "dictionaries",
    ast.Set: "sets",
    ast.JoinedStr: "strings",
}


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"Only numbers are allowed, not {node.value!r}.")
        return _check_int(node.value)
    if isinstance(node, ast.BinOp):
        binary = _BINARY.get(type(node.op))
        if binary is None:
            raise CalculatorError(f"The operator {type(node.op).__name__} is not supported.")
        return _check_int(binary(_eval(node.left), _eval(node.right)))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise CalculatorError(f"The operator {type(node.op).__name__} is not supported.")
        return unary(_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(
            f"Unknown name '{node.id}'. Known constants: {', '.join(_CONSTANTS)}."
        )
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else "this call"
            raise CalculatorError(
                f"Unknown function '{shown}'. Known functions: {', '.join(_FUNCTIONS)}."
            )
        fn, low, high = _FUNCTIONS[node.func.id]
        if node.keywords or not low <= len(node.args) <= high:
            raise CalculatorError(f"{node.func.id}() takes {low} to {high} plain arguments.")
        args = [_eval(a) for a in node.args if not isinstance(a, ast.Starred)]
        if len(args) != len(node.args):
            raise CalculatorError("Argument unpacking is not supported.")
        return _check_int(fn(*args))
    what = _SYNTAX_NAMES.get(type(node), type(node).__name__)
    raise CalculatorError(
        f"Unsupported syntax ({what}): only numbers, + - * / // % **, parentheses "
        "and the known functions are allowed."
    )


def evaluate(expression: str) -> Number:
    """Evaluate arithmetic safely; raises ``CalculatorError`` with a clear message."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(
            f"The expression is too long ({len(expression)} characters, "
            f"limit {MAX_EXPRESSION_CHARS})."
        )
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculatorError("The expression is empty.")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CalculatorError(f"Cannot parse {expression!r} as arithmetic.") from exc
    try:
        result = _eval(tree)
    except CalculatorError:
        raise
    except ZeroDivisionError as exc:
        raise CalculatorError("Division by zero.") from exc
    except OverflowError as exc:
        raise CalculatorError("The result is too large for floating point.") from exc
    except ValueError as exc:
        raise CalculatorError(
            f"Math error: {exc} (e.g. sqrt or log of a negative number)."
        ) from exc
    except (RecursionError, MemoryError) as exc:
        raise CalculatorError("The expression is too complex.") from exc
    except TypeError as exc:
        raise CalculatorError(f"Invalid operation: {exc}.") from exc
    if isinstance(result, float) and not math.isfinite(result):
        raise CalculatorError("The result is not a finite number.")
    return result


def format_number(value: Number) -> str:
    """Integers exactly, floats to 15 significant digits (hides 0.1+0.2 noise)."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")


@tool(title="Calculator", summary="Works out arithmetic exactly")
def calculator(
    expression: Annotated[str, "Arithmetic such as '2 * (3 + 4) ** 2' or 'sqrt(2) * pi'"],
) -> str:
    """Evaluate an arithmetic expression exactly; use it instead of computing in your head.

    Supports + - * / // % ** and parentheses, the functions sqrt, sin, cos,
    tan, log, log10, exp, abs, round, floor, ceil and the constants pi and e.
    """
    return format_number(evaluate(expression))


@tool(
    title="Date and time", summary="Tells the current date and time, in your time zone or another"
)
def current_datetime(
    ctx: ToolContext,
    timezone: Annotated[
        str | None,
        "IANA time zone such as 'Europe/Paris'; omit for the user's own time zone",
    ] = None,
) -> str:
    """Get the current date, time and weekday, in the user's time zone or a given one."""
    name = timezone or ctx.timezone
    zone = find_zone(name)
    if zone is None:
        raise ToolError(
            f"Unknown time zone '{name}'. Use an IANA name such as 'Europe/Paris', "
            "'America/New_York' or 'UTC'."
        )
    now = ctx.clock().astimezone(zone)
    offset = now.strftime("%z")
    return (
        f"{now:%A %Y-%m-%d %H:%M:%S} ({name}, UTC{offset[:3]}:{offset[3:]}); "
        f"ISO 8601: {now.isoformat(timespec='seconds')}"
    )


BUILTIN_TOOLS: tuple[Tool, ...] = (current_datetime, calculator)


def default_registry() -> ToolRegistry:
    """A fresh registry holding the built-in tools (callers may add their own)."""
    return ToolRegistry(BUILTIN_TOOLS)
