"""Tools models can call: declared once from plain functions, run by a registry.

``@tool`` turns a typed, documented function into a ``Tool``; ``ToolRegistry``
runs a model's calls safely; ``default_registry()`` holds the built-ins.
"""

from parley.tools.base import (
    MAX_OUTPUT_CHARS,
    Tool,
    ToolContext,
    ToolOutcome,
    ToolOutput,
    ToolRegistry,
    cap_output,
    tool,
    tool_from_function,
    validate,
)
from parley.tools.builtin import (
    CalculatorError,
    calculator,
    current_datetime,
    default_registry,
    evaluate,
)

__all__ = [
    "MAX_OUTPUT_CHARS",
    "CalculatorError",
    "Tool",
    "ToolContext",
    "ToolOutcome",
    "ToolOutput",
    "ToolRegistry",
    "calculator",
    "cap_output",
    "current_datetime",
    "default_registry",
    "evaluate",
    "tool",
    "tool_from_function",
    "validate",
]
