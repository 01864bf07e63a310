"""What a caller of the turn service may set besides the message: the API's knobs.

The web app's turns use none of these (the conversation's model and tools, the
user's settings). ``/v1/responses`` sets them from its request: instructions,
the caller's own function tools, which of Parley's tools to offer, sampling and
the output's shape, images on the question. They hold for one turn and are not
stored on the conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parley.messages import ImagePart, ToolSpec


@dataclass(frozen=True, slots=True)
class TurnOptions:
    instructions: str = ""  # added to the system prompt, after Parley's own
    client_tools: tuple[ToolSpec, ...] = ()  # offered; a call to one ends the turn
    tools: tuple[str, ...] | None = None  # Parley's tools to offer (None: the chat's)
    temperature: float | None = None
    max_output_tokens: int | None = None
    response_format: dict[str, Any] | None = None  # a JSON schema for the answer
    tool_choice: str | None = None  # "none", "required", "function:<name>" (first call)
    reasoning_effort: str | None = None  # for models that reason ("low", "high"...)
    extra: dict[str, Any] = field(default_factory=dict)  # top_p
    images: tuple[ImagePart, ...] = ()  # on the question (not stored with it)
    endpoint: str = "chat"  # what the usage ledger calls the path the turn came by
    may_use: Callable[[str], bool] | None = None  # an API key's model scope (fallbacks too)


DEFAULT = TurnOptions()
