"""Extension points of a chat turn, for features that add context or learn from it.

- A ``ContextSource`` contributes delimited blocks to the system prompt before
  the model is called (saved memories, retrieved passages, attached files) and
  the sources shown to the user. Sources run concurrently under a time limit;
  one that fails or is slow is skipped and logged, never failing the turn.
- An ``AfterTurn`` hook runs once the answer is stored (memory extraction,
  summaries). It runs in the background and never delays the reply; what it
  returns (e.g. ``MemoryUpdated`` for a memory extraction learned) is published
  late on the answer's stream, which stays open for it (``run_after_turn``).
- A ``ToolConfirmer`` (service key ``TOOL_CONFIRMER``) makes side-effecting
  tool calls wait for the user's approval.

``TurnInfo`` says what a feature may know about the turn, including the scopes
(project, assistant) that later features use to keep data where it belongs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley.container import Key
from parley.messages import Source, ToolCall, ToolConfirm, TurnEvent
from parley.providers.base import ModelInfo
from parley.turns.events import TurnLog

log = logging.getLogger(__name__)

GATHER_TIMEOUT_S = 5.0
AFTER_TURN_HOLD_S = 60.0  # the longest a finished turn's stream waits for its hooks


@dataclass(slots=True, frozen=True)
class TurnInfo:
    user_id: str
    conversation_id: str
    user_message_id: str
    assistant_message_id: str
    query: str
    model: ModelInfo
    temporary: bool = False
    project_id: str | None = None
    assistant_id: str | None = None
    api_key_id: str | None = None  # the key the turn was asked with (the usage ledger)
    preferences: dict[str, Any] = field(default_factory=dict)
    # For after-turn hooks: the estimated tokens of the messages the turn sent in
    # full (after the summary) plus its answer, or None when the history was cut
    # to the window; lets a hook decide without reading the conversation again.
    history_tokens: int | None = None


@dataclass(slots=True)
class ContextBlock:
    """Text for the system prompt, and what the user is shown as this turn's sources.

    ``sources`` are ``parley.messages.Source`` objects (e.g. ``{"kind": "memory",
    "id": ..., "title": ...}``); they are stored on the assistant message and
    streamed in a ``sources`` event.
    """

    title: str
    text: str
    sources: list[Source] = field(default_factory=list)

    def render(self) -> str:
        return f"<{self.title}>\n{self.text.strip()}\n</{self.title}>"


class ContextSource(Protocol):
    name: str

    async def gather(self, info: TurnInfo, budget_tokens: int) -> list[ContextBlock]: ...


class AfterTurn(Protocol):
    """Work once the answer is stored. A hook with ``late_events`` may return events
    (``MemoryUpdated``...) for the answer's readers, who get them after ``done``: the
    turn's stream stays open until such hooks have returned (at most
    ``AFTER_TURN_HOLD_S``). Hooks without it (summaries) return None and run after
    those, while nobody waits for them."""

    name: str
    late_events: bool

    async def after_turn(
        self, info: TurnInfo, answer: str, status: str
    ) -> Sequence[TurnEvent] | None: ...


class Revoker(Protocol):
    """Ends what a feature runs for a user whose access just ended (an account
    disabled or deleted): kill their code kernels, drop their queued jobs. Runs on
    every worker; must be quick and safe to call twice."""

    async def __call__(self, user_id: str) -> None: ...


async def revoke_quietly(hook: Revoker, user_id: str) -> None:
    try:
        await hook(user_id)
    except Exception:
        log.exception("revoking user %s: a feature's revoker failed", user_id)


class ToolConfirmer(Protocol):
    """Asks the user to approve side-effecting tool calls (state shared by workers).

    ``open`` records the pending call before its ``tool_confirm`` event reaches
    the client; ``wait`` returns the decision (a timeout denies); ``close``
    expires whatever is still pending when the turn ends.
    """

    async def open(self, info: TurnInfo, call: ToolConfirm) -> None: ...

    async def wait(self, info: TurnInfo, call: ToolCall) -> bool: ...

    async def close(self, info: TurnInfo) -> None: ...

    async def decide(
        self, user_id: str, conversation_id: str, call_id: str, approve: bool
    ) -> object | None:
        """The user's answer to their pending call (the web app's buttons, an API
        client's approval response); None when nothing of theirs is pending."""
        ...


TOOL_CONFIRMER: Key[ToolConfirmer] = Key("tool_confirmer")
"""Provided by the web tools feature; without it side-effecting calls run unasked."""


async def gather_context(
    sources: Sequence[ContextSource], info: TurnInfo, budget_tokens: int
) -> list[ContextBlock]:
    """Blocks from every source, in source order; failures and timeouts are skipped."""
    if not sources:
        return []
    share = max(budget_tokens // len(sources), 0)

    async def one(source: ContextSource) -> list[ContextBlock]:
        try:
            return await asyncio.wait_for(source.gather(info, share), GATHER_TIMEOUT_S)
        except Exception:
            log.exception("context source %s failed; answering without it", source.name)
            return []

    results = await asyncio.gather(*(one(s) for s in sources))
    return [block for blocks in results for block in blocks]


async def run_after_turn(
    hooks: Sequence[AfterTurn],
    info: TurnInfo,
    answer: str,
    status: str,
    turn_log: TurnLog | None = None,
    heard: Callable[[], None] | None = None,
) -> None:
    """The hooks with ``late_events`` first, publishing what each returns on
    ``turn_log`` while the log is open (a log closed by its time limit drops late
    events: the hooks keep their own record, e.g. on the answer's ``sources``);
    then ``heard()`` (the stream may close) and the other hooks."""
    try:
        for hook in [h for h in hooks if h.late_events]:
            late = await _quietly(hook, info, answer, status)
            if late and turn_log is not None and not turn_log.closed:
                for event in late:
                    turn_log.publish(event)
    finally:
        if heard is not None:
            heard()
    for hook in [h for h in hooks if not h.late_events]:
        await _quietly(hook, info, answer, status)


async def _quietly(
    hook: AfterTurn, info: TurnInfo, answer: str, status: str
) -> Sequence[TurnEvent] | None:
    try:
        return await hook.after_turn(info, answer, status)
    except Exception:
        log.exception("after-turn hook %s failed", hook.name)
        return None
