"""The feature seam: how an optional capability plugs into Parley, below HTTP.

A feature (memory, knowledge, the code sandbox, web tools, and those to come)
is an object with a ``name``, an optional ``router`` and ``body_limits`` (read
when the app is built), and ``start``/``stop`` (run by the app's lifespan).
``start`` receives a ``FeatureContext`` and says what the feature adds, with
verbs rather than by reaching into other objects:

- ``add_tool``: a tool the model may call (removed again at ``stop``);
- ``add_context_source`` / ``add_after_turn``: text for the system prompt before
  the model is called, work after the answer is stored, whose events (a memory
  learned) still reach the answer's open stream (``parley.turns.hooks``);
- ``provide`` / ``require`` / ``lookup``: shared services by typed key
  (``parley.container``), e.g. the knowledge feature provides
  ``CONVERSATION_FILES`` and the sandbox looks it up when it runs code;
- ``add_user_data``: the feature's part of a user's export, import and deletion;
- ``add_conversation_data``: what the feature keeps per conversation, removed
  when a conversation is deleted (``parley.userdata.conversations``);
- ``add_revoker``: stop what the feature runs for a user whose access just
  ended (account disabled or deleted), on every worker.

A feature imports this module and the layers below it (turns, storage,
providers, tools, engine, messages), plus ``parley.http`` for its router; never
``parley.api`` and never another feature. ``parley.api.app`` is the one
composition root that lists the features and builds the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select

from parley.config import Settings
from parley.container import Key, MissingService, Services
from parley.providers.registry import ModelRegistry
from parley.routing.service import (
    BUDGET_STATE,
    CONVERSATION_IMAGES,
    BudgetQuery,
    BudgetState,
    ConversationImages,
)
from parley.storage.db import Database
from parley.telemetry.metrics import BUDGET_METRICS, BudgetReporter
from parley.tools import Tool, ToolRegistry
from parley.turns.hooks import AfterTurn, ContextSource, Revoker
from parley.userdata import ConversationData, UserData, UserDataHooks

__all__ = [
    "ASSISTANTS",
    "AUDIO_TRANSCRIBER",
    "BUDGET_METRICS",
    "BUDGET_STATE",
    "CONVERSATION_FILES",
    "CONVERSATION_IMAGES",
    "CONVERSATION_KNOWLEDGE",
    "PROJECT_KNOWLEDGE",
    "SHARED_KNOWLEDGE",
    "USER_GROUPS",
    "USER_GROUPS_QUERY",
    "AssistantGateway",
    "AudioTranscriber",
    "BudgetQuery",
    "BudgetReporter",
    "BudgetState",
    "ConversationData",
    "ConversationFiles",
    "ConversationImages",
    "ConversationKnowledge",
    "Feature",
    "FeatureContext",
    "FeatureFactory",
    "GroupLookup",
    "GroupQuery",
    "Key",
    "MissingService",
    "UserData",
    "UserDataHooks",
]

T = TypeVar("T")


ConversationFiles = Callable[[str, str | None], Awaitable[Sequence[tuple[str, Path]]]]
"""``(user_id, conversation_id) -> [(filename, path on disk), ...]``: the files a
conversation sees (attached to it, or in its collections); names are unique."""

CONVERSATION_FILES: Key[ConversationFiles] = Key("conversation_files")
"""Provided by the knowledge feature; the code sandbox copies these into /mnt/data."""


ConversationKnowledge = Callable[[str, str], Awaitable[tuple[Sequence[str], Sequence[str]]]]
"""``(user_id, conversation_id) -> (collection ids, file ids)`` a conversation sees
besides its own attachments and links: an assistant's knowledge in its chats."""

CONVERSATION_KNOWLEDGE: Key[ConversationKnowledge] = Key("conversation_knowledge")
"""Provided by the assistants feature; the knowledge feature adds it to a chat's scope."""

SHARED_KNOWLEDGE: Key[ConversationKnowledge] = Key("shared_knowledge")
"""``(user_id, conversation_id) -> (collection ids, file ids)`` of *someone else's*
knowledge a chat may search: a shared assistant's (provided by assistants). The
knowledge feature searches them under their owner's index for the chat's answers
and cites them, and never lists them, serves their bytes or copies them into the
sandbox for this user. The provider decides, on every call, that the user may."""

PROJECT_KNOWLEDGE: Key[ConversationKnowledge] = Key("project_knowledge")
"""The same for a project's files in its chats (provided by projects): files of
any member, added to the project (``knowledge_files.project_id``)."""


class AssistantGateway(Protocol):
    """Assistants as ``/v1`` models (``assistant/<slug>``), for the routers that
    resolve a model: ``GET /v1/models``, chat completions and ``/v1/responses``.
    ``allowed(id, slug)`` is the API key's assistants scope."""

    async def model_ids(self, user_id: str, allowed: Callable[[str, str], bool]) -> list[str]:
        """``assistant/<slug>`` of every assistant the caller may use."""
        ...

    async def resolve(self, user_id: str, model: str, allowed: Callable[[str, str], bool]) -> str:
        """The id of the assistant ``model`` names (``NotFound``; ``Forbidden`` when
        the key's scope leaves it out)."""
        ...

    async def chat_completion(self, principal: Any, body: Any) -> Any:
        """``POST /v1/chat/completions`` with an assistant: a turn in a chat, the
        answer as a completion (a FastAPI response; typed loosely here)."""
        ...


ASSISTANTS: Key[AssistantGateway] = Key("assistants")
"""Provided by the assistants feature."""


GroupLookup = Callable[[str], Awaitable[Sequence[str]]]
"""``user_id -> ids of the groups the user is in``, read fresh on every call (no
cached permissions: removing a user from a group ends what it granted at once)."""

USER_GROUPS: Key[GroupLookup] = Key("user_groups")
"""Provided by the groups feature; budgets, sharing and model access read it. A
consumer without it (no groups feature) treats every user as in no group."""

GroupQuery = Callable[[str], "Select[Any]"]
"""``user_id -> a SELECT of the ids of the groups the user is in``: for a check
that embeds membership in its own statement, one round trip instead of two,
still read fresh."""

USER_GROUPS_QUERY: Key[GroupQuery] = Key("user_groups_query")
"""Provided by the groups feature beside ``USER_GROUPS``; optional for consumers
(without it they read ``USER_GROUPS`` first)."""


AudioTranscriber = Callable[[str, Path, str, str | None], Awaitable[str]]
"""``(user_id, path on disk, file name, conversation_id) -> transcript``: the text of
an audio file, charged to the user; raises with a message for the user when the
audio is bad or speech is off."""

AUDIO_TRANSCRIBER: Key[AudioTranscriber] = Key("audio_transcriber")
"""Provided by the speech feature; the knowledge feature indexes an attached audio
file's transcript through it."""

# Routing and metrics (``parley.routing``, ``parley.telemetry``) define these keys;
# they are re-exported here for the features that provide or use them:
# - ``CONVERSATION_IMAGES``: provided by knowledge; Auto's ``vision`` rule counts the
#   images a chat shows the model.
# - ``BUDGET_STATE``: to be provided by the budgets feature (``BudgetQuery`` -> the
#   largest share used of the budgets that apply, or None); Auto's ``budget`` rule
#   reads it, and never matches without it.
# - ``BUDGET_METRICS``: provided by the app (``Metrics.budget``); the budgets feature
#   calls it with ``(scope, scope_id, spent, limit)`` whenever a budget's use changes,
#   and ``/metrics`` serves ``parley_budget_spent``/``_limit``/``_used_ratio``.


class TurnHookSink(Protocol):
    """What the context needs of the turn service (``parley.turns.TurnService``)."""

    def add_context_source(self, source: ContextSource) -> None: ...

    def remove_context_source(self, source: ContextSource) -> None: ...

    def add_after_turn(self, hook: AfterTurn) -> None: ...

    def add_revoker(self, hook: Revoker) -> None: ...


class Feature(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def router(self) -> Any:
        """A ``fastapi.APIRouter`` or None (typed loosely: the seam needs no web framework)."""

    @property
    def body_limits(self) -> Mapping[str, int]:
        """Path prefix -> largest request body accepted there (uploads)."""

    async def start(self, ctx: FeatureContext) -> None: ...

    async def stop(self) -> None: ...


FeatureFactory = Callable[[Settings], Feature]


class FeatureContext:
    """What a starting feature may use and the verbs it registers its parts with."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        models: ModelRegistry,
        tools: ToolRegistry,
        turns: TurnHookSink,
        services: Services,
    ) -> None:
        self.settings = settings
        self.db = db
        self.models = models
        self._tools = tools
        self._turns = turns
        self._services = services
        self._user_data = services.require(UserDataHooks)  # the composition root's

    # ------------------------------------------------------------------ tools

    def add_tool(self, tool: Tool, *, replace: bool = False) -> None:
        """Offer a tool to the model; ``replace`` swaps one of the same name."""
        if replace and tool.name in self._tools:
            self._tools.unregister(tool.name)
        self._tools.register(tool)

    def remove_tool(self, name: str) -> None:
        if name in self._tools:
            self._tools.unregister(name)

    def withhold_tool(self, tool: Tool, reason: str) -> None:
        """The feature has ``tool`` but cannot offer it now (the sandbox cannot start):
        it is not offered, and the tools list shows it unavailable with ``reason``
        until ``add_tool`` offers it again."""
        self._tools.withhold(tool, reason)

    @property
    def tool_registry(self) -> ToolRegistry:
        """The registry itself, for a feature that keeps a changing set of tools
        (MCP servers come and go while the app runs)."""
        return self._tools

    # ------------------------------------------------------------------ turns

    def add_context_source(self, source: ContextSource) -> None:
        self._turns.add_context_source(source)

    def remove_context_source(self, source: ContextSource) -> None:
        self._turns.remove_context_source(source)

    def add_after_turn(self, hook: AfterTurn) -> None:
        self._turns.add_after_turn(hook)

    def add_revoker(self, hook: Revoker) -> None:
        """``hook(user_id)`` when a user's access ends: stop what runs for them now."""
        self._turns.add_revoker(hook)

    # --------------------------------------------------------------- services

    def provide(self, key: type[T] | Key[T], value: T) -> None:
        self._services.provide(key, value)

    def withdraw(self, key: type[T] | Key[T]) -> None:
        self._services.withdraw(key)

    def require(self, key: type[T] | Key[T]) -> T:
        """A service that must exist now (raises ``MissingService``)."""
        return self._services.require(key)

    def lookup(self, key: type[T] | Key[T]) -> Callable[[], T | None]:
        """A service another feature may provide, resolved each time it is used."""
        services = self._services
        return lambda: services.get(key)

    # -------------------------------------------------------------- user data

    def add_user_data(self, hook: UserData) -> None:
        self._user_data.hooks.append(hook)

    def add_conversation_data(self, hook: ConversationData) -> None:
        """What the feature keeps per conversation (attachments, outputs, a kernel).

        Deleting a conversation (the user's ``DELETE``, the purge of expired
        temporary chats) goes through ``parley.userdata.conversations.
        delete_conversations``, which calls ``hook.delete_conversations`` in its
        transaction and runs the hook's after-commit work. Without it a feature's
        rows would go by database cascade but its bytes, caches and processes
        would outlive the conversation, out of the user's reach.
        """
        self._user_data.conversations.append(hook)
