"""Token counting for budgets: a cheap estimate, or the model's own tokenizer.

Context assembly runs on every turn over the whole history, so the default is
an estimate (about four characters per token plus a fixed cost per message)
that errs on the high side. A ``ChatModel`` may expose an optional
``count_tokens(text) -> int`` (the local llama.cpp model does); ``counter_for``
picks it up so budgets are exact where that is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from parley.messages import Message, ToolSpec

__all__ = [
    "CHARS_PER_TOKEN",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "TokenCounter",
    "counter_for",
    "estimate_tokens",
    "message_tokens",
    "messages_tokens",
    "tools_tokens",
]

TokenCounter = Callable[[str], int]

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # role markers and separators in chat templates
IMAGE_TOKENS = 768  # a typical tile budget; providers vary widely


def estimate_tokens(text: str) -> int:
    """About one token per four characters, rounded up."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def counter_for(model: Any) -> TokenCounter:
    """The model's ``count_tokens`` when it has one, else ``estimate_tokens``."""
    counter = getattr(model, "count_tokens", None)
    return counter if callable(counter) else estimate_tokens


def message_tokens(message: Message, count: TokenCounter = estimate_tokens) -> int:
    total = MESSAGE_OVERHEAD + (count(message.content) if message.content else 0)
    for call in message.tool_calls:
        total += MESSAGE_OVERHEAD + count(call.name) + count(call.arguments)
    return total + IMAGE_TOKENS * len(message.images)


def messages_tokens(messages: Iterable[Message], count: TokenCounter = estimate_tokens) -> int:
    return sum(message_tokens(m, count) for m in messages)


def tools_tokens(tools: Iterable[ToolSpec], count: TokenCounter = estimate_tokens) -> int:
    """What tool schemas cost in the prompt (providers render them as JSON-ish text)."""
    return sum(
        MESSAGE_OVERHEAD
        + count(spec.name)
        + count(spec.description)
        + count(json.dumps(spec.parameters, separators=(",", ":")))
        for spec in tools
    )
