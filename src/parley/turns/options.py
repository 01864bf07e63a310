"""What a caller of the turn service may set besides the message: the API's knobs.

The web app's turns use none of these (the conversation's model and tools, the
user's settings). ``/v1/responses`` sets them from its request: instructions,
the caller's own function tools, which of Parley's tools to offer, sampling and
the output's shape, images on the question. They hold for one turn and are not
stored on the conversation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from parley.container import Key
from parley.messages import ImagePart, ToolSpec
from parley.storage.tables import Conversation


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
    parallel_tool_calls: bool | None = None  # False: one tool call per model answer
    max_tool_calls: int | None = None  # Parley tool calls in the whole answer
    extra: dict[str, Any] = field(default_factory=dict)  # top_p
    images: tuple[ImagePart, ...] = ()  # on the question (not stored with it)
    endpoint: str = "chat"  # what the usage ledger calls the path the turn came by
    may_use: Callable[[str], bool] | None = None  # an API key's model scope (fallbacks too)


DEFAULT = TurnOptions()


MemoryMode = Literal["off", "user", "scoped"]


@dataclass(frozen=True, slots=True)
class TurnProfile:
    """What a conversation's own settings add to its turns (an assistant's chat):
    options merged under the caller's, the model unless the chat picked one, how
    memory applies, and ``answered(session, message_id)`` to note which version
    wrote the answer (in the turn's own transaction)."""

    options: TurnOptions
    model: str | None = None
    memory: MemoryMode = "user"
    answered: Callable[[AsyncSession, str], Awaitable[None]] | None = None
    # a project's: its instructions add to the user's custom instructions or replace
    # them; its memory mode ("default" or "project", ``parley.memory.scopes``)
    custom_instructions: Literal["add", "replace"] = "add"
    project_memory: str | None = None

    def merged(self, caller: TurnOptions) -> TurnOptions:
        """The caller's knobs win where set; instructions add up (profile first)."""
        told = [t for t in (self.options.instructions, caller.instructions) if t]
        return replace(
            caller,
            instructions="\n\n".join(told),
            tools=caller.tools if caller.tools else self.options.tools,
            temperature=(
                caller.temperature if caller.temperature is not None else self.options.temperature
            ),
        )


TurnProfiles = Callable[[AsyncSession, str, Conversation], Awaitable[TurnProfile | None]]
"""``(session, user_id, conversation) -> profile``: asked by ``TurnService.prepare``
for a conversation with an ``assistant_id``; raises ``NotFound`` when the
conversation's assistant is gone or no longer the user's to use."""

TURN_PROFILES: Key[TurnProfiles] = Key("turn_profiles")
"""Provided by the assistants feature."""


PROJECT_PROFILES: Key[TurnProfiles] = Key("project_profiles")
"""Provided by the projects feature: asked for a conversation with a ``project_id``
(None when the user is no longer a member: the project's context ends at once).
Its options go under the assistant's, which go under the caller's."""


ProjectAccess = Callable[[str, str], Awaitable[str | None]]
"""``(user_id, project_id) -> the user's role in the project now`` (``owner``,
``editor``, ``viewer``) or None (no such project, or no longer a member); read
fresh on every call."""

PROJECT_ACCESS: Key[ProjectAccess] = Key("project_access")
"""Provided by the projects feature; ``parley.http.deps`` asks it for every ``/v1``
request that runs in a project (``parley.auth.scopes``), and key creation for the
projects a key is limited to. Without it no request can run in a project."""
