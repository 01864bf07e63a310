"""The engine: context assembly, the model<->tool loop, JSON tools for plain models.

Imports no web framework, ORM or provider SDK: the HTTP API and the CLI drive
it with typed messages and consume typed events.
"""

from parley.engine.context import (
    UNTRUSTED_TOOL_OUTPUT_RULE,
    AssembledContext,
    assemble_context,
    build_system_prompt,
    format_now,
    needs_summary,
    summarize,
    unsummarized,
    wrap_tool_output,
)
from parley.engine.loop import Limits, run_tool_loop
from parley.engine.tokens import TokenCounter, counter_for, estimate_tokens, messages_tokens

__all__ = [
    "UNTRUSTED_TOOL_OUTPUT_RULE",
    "AssembledContext",
    "Limits",
    "TokenCounter",
    "assemble_context",
    "build_system_prompt",
    "counter_for",
    "estimate_tokens",
    "format_now",
    "messages_tokens",
    "needs_summary",
    "run_tool_loop",
    "summarize",
    "unsummarized",
    "wrap_tool_output",
]
