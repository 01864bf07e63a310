"""Automatic memories: after a turn, a model proposes what to add, update or delete.

Runs as an ``AfterTurn`` hook, in the background once the answer is stored.
The model (``memory_model``, default the chat's) gets the user's message and
the memories most related to it, numbered, and must answer JSON following
``SCHEMA`` (``ChatRequest.response_format``: a llama.cpp grammar on the local
model, structured output elsewhere), so even the tiny embedded model produces
parseable operations.

Nothing is trusted blindly: a fact is saved only if most of its meaningful
words are in what the user wrote (``supported_by``), so facts lifted from
the assistant's answer, tool results or web pages are dropped; a delete must
concern a memory the user's message talks about. In review mode new facts
wait as ``pending`` (the model also sees those related to the message, so it
updates them instead of proposing twice), an update of an active memory waits
as a proposal naming it, and nothing is deleted automatically.

Most messages say nothing about the user; a cheap first-person test skips the
model call for them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from parley.jobs.queue import Claimed
from parley.jobs.runner import Jobs
from parley.memory.forget_words import parse_forget
from parley.memory.forgetting import ForgetService
from parley.memory.scopes import home_of, recall_scope
from parley.memory.service import (
    MemoryService,
    Recalled,
    memory_enabled,
    review_enabled,
)
from parley.memory.store import MemoryStore
from parley.memory.text import clean_fact, content_words, parse_request, supported_by
from parley.memory.turninfo import turn_info_from_json, turn_info_json
from parley.messages import MemorySource, MemoryUpdated, Message, TextDelta
from parley.providers.base import ChatModel, ChatRequest
from parley.storage.tables import Message as MessageRow
from parley.turns.hooks import TurnInfo

__all__ = [
    "SCHEMA",
    "MemoryExtractor",
    "Operation",
    "mentions_self",
    "parse_operations",
    "plausible",
]

log = logging.getLogger(__name__)

EXTRACT_JOB = "memory.extract"

MAX_OPERATIONS = 5
RELATED = 8
PENDING_RELATED = 3
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "memories": {
            "type": "array",
            "maxItems": MAX_OPERATIONS,
            "items": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["add", "update", "delete"]},
                    "fact": {"type": "string", "maxLength": 300},
                    # An enum, not minimum/maximum: llama.cpp's grammar enforces the
                    # listed values but not numeric bounds (SmolLM2 wrote 10**15).
                    "memory": {"type": "integer", "enum": list(range(RELATED + 1))},
                },
                "required": ["action", "fact", "memory"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["memories"],
    "additionalProperties": False,
}

INSTRUCTIONS = (
    "You maintain a list of durable facts about the user: identity, family, home, work, "
    "preferences, diet, health, goals, projects. Read the user's message and decide what to "
    "store. Rules: only facts the USER states about themselves in this message; nothing "
    "from questions, requests for help, hypotheticals, or general knowledge; one short "
    "sentence per fact, in the user's words. Use action 'add' for a new fact (memory 0), "
    "'update' with the number of the existing memory it changes or contradicts, 'delete' "
    "with the number of a memory the user says is no longer true. Return "
    '{"memories": []} when there is nothing to store (the usual case).'
)

_SELF = re.compile(r"\b(i|i'm|im|i've|i'd|my|mine|me|myself|we|our|us)\b", re.IGNORECASE)


def mentions_self(text: str) -> bool:
    """Cheap gate: a message without first-person words rarely states a fact about the user."""
    return bool(_SELF.search(text.replace("’", "'"))) and len(content_words(text)) >= 2


_META = re.compile(r"\b(message|memories|memory|assistant|the fact)\b", re.IGNORECASE)


def plausible(fact: str) -> bool:
    """Small models echo questions or talk about the task ("The user's message
    is...", "The user has updated the fact..."): neither is a fact worth keeping."""
    return bool(fact) and not fact.rstrip(".").endswith("?") and not _META.search(fact)


@dataclass(slots=True, frozen=True)
class Operation:
    action: str
    fact: str
    memory: int  # 1-based index into the related memories; 0 = none


def parse_operations(text: str) -> list[Operation]:
    """Operations from the model's JSON; anything malformed is skipped."""
    try:
        data = json.loads(text.strip().removeprefix("```json").removesuffix("```").strip())
    except ValueError:
        return []
    items = data.get("memories") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    found: list[Operation] = []
    for item in items[:MAX_OPERATIONS]:
        if not isinstance(item, dict):
            continue
        action, fact, index = item.get("action"), item.get("fact"), item.get("memory", 0)
        if action not in ("add", "update", "delete") or not isinstance(fact, str):
            continue
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= RELATED:
            index = 0
        found.append(Operation(action, clean_fact(fact), index))
    return found


ModelResolver = Callable[[TurnInfo], Awaitable[ChatModel]]


class MemoryExtractor:
    name = "memory_extraction"
    late_events = True  # what it learned shows on the answer still open in the chat

    def __init__(
        self,
        service: MemoryService,
        resolve_model: ModelResolver,
        *,
        enabled: bool = True,
        forgets: ForgetService | None = None,
        jobs: Jobs | None = None,
    ) -> None:
        """``jobs``: run each extraction as a durable job (``memory.extract``), here."""
        self.service = service
        self.jobs = jobs
        self.resolve_model = resolve_model
        self.enabled = enabled
        self.forgets = forgets

    async def after_turn(
        self, info: TurnInfo, answer: str, status: str
    ) -> list[MemoryUpdated] | None:
        """Extraction for a finished answer; what it changed, as the late event that
        shows the "Memory updated" chip on the answer still open in the chat."""
        if not self.enabled or info.temporary or status != "complete":
            return None
        if not memory_enabled(info.preferences) or parse_request(info.query) is not None:
            return None  # off, or the explicit fast path already handled this message
        if not mentions_self(info.query):
            return None
        if self.jobs is not None:
            # a durable job run here at once: its event reaches this answer's stream; if
            # this worker dies first, another worker extracts (the event is then lost,
            # the answer's sources keep the record)
            result: list[MemoryUpdated] | None = await self.jobs.run_here(
                EXTRACT_JOB,
                self.payload(info),
                key=info.user_message_id or None,
                user_id=info.user_id,
            )
            return result
        return await self._extract_for(info)

    @staticmethod
    def payload(info: TurnInfo) -> dict[str, Any]:
        return turn_info_json(info, query=True)

    async def run_job(self, job: Claimed) -> list[MemoryUpdated] | None:
        """The ``memory.extract`` job: extraction for the turn in its payload."""
        return await self._extract_for(turn_info_from_json(job.payload))

    async def _extract_for(self, info: TurnInfo) -> list[MemoryUpdated] | None:
        if await self._forget_asked(info):
            return None  # a confirmation chip handles it; the model must not delete on its own
        changed: list[MemorySource] = []
        await self.extract(info, changed)
        return [MemoryUpdated(changed)] if changed else None

    async def extract(self, info: TurnInfo, changed: list[MemorySource] | None = None) -> list[str]:
        """Run extraction for one user message; returns what was done (for tests and
        evals) and appends what it changed to ``changed``."""
        scope = home_of(info)
        review = review_enabled(info.preferences)
        related: list[Recalled] = await self.service.recall(
            info.user_id, info.query, recall_scope(info), RELATED
        )
        if review:  # what waits for approval can be updated too, instead of proposed twice
            waiting = await self._pending_related(info.user_id, info.query, scope)
            related = related[: RELATED - len(waiting)] + waiting
        numbered = "\n".join(f"{n}. {m.text}" for n, m in enumerate(related, 1)) or "(none)"
        request = ChatRequest(
            messages=[
                Message("system", INSTRUCTIONS),
                Message(
                    "user",
                    f"Existing memories:\n{numbered}\n\nThe user's message:\n"
                    f"<user_message>\n{info.query[:4000]}\n</user_message>",
                ),
            ],
            temperature=0.0,
            max_tokens=300,
            response_format=SCHEMA,
        )
        model = await self.resolve_model(info)
        parts = [e.text async for e in model.stream(request) if isinstance(e, TextDelta)]
        done: list[str] = []
        changed = [] if changed is None else changed
        for op in parse_operations("".join(parts)):
            target = related[op.memory - 1] if 0 < op.memory <= len(related) else None
            if op.action == "delete":
                if review or target is None:
                    continue
                if not content_words(target.text) & content_words(info.query):
                    continue  # the user did not talk about it
                async with self.service.db.session() as session:
                    await MemoryStore(session, info.user_id).delete(target.id)
                    await session.commit()
                done.append(f"deleted: {target.text}")
                changed.append(
                    {"kind": "memory", "id": target.id, "title": target.text, "action": "deleted"}
                )
                continue
            if not plausible(op.fact) or not supported_by(op.fact, info.query):
                log.info("extraction proposed an unsupported fact; dropped")
                continue
            result = await self.service.remember(
                info.user_id,
                op.fact,
                source="auto",
                conversation_id=info.conversation_id,
                message_id=info.user_message_id,
                scope=scope,
                status="pending" if review else "active",
                replaces=target.id if op.action == "update" and target else None,
            )
            done.append(f"{result.action}: {result.memory.text}")
            if result.action != "merged":  # "already saved": nothing changed
                changed.append(
                    {
                        "kind": "memory",
                        "id": result.memory.id,
                        "title": result.memory.text,
                        "action": result.action,
                    }
                )
        if changed:
            await self._note_on_answer(info, changed)
        return done

    async def _forget_asked(self, info: TurnInfo) -> bool:
        """The message is a request to forget that matched memories (its chip waits);
        one that matched nothing still goes to the model."""
        if self.forgets is None or parse_forget(info.query) is None:
            return False
        if not info.user_message_id:
            return False
        return await self.forgets.for_message(info.user_id, info.user_message_id) is not None

    async def _note_on_answer(self, info: TurnInfo, changed: list[MemorySource]) -> None:
        """Add what extraction changed to the answer's ``sources`` (with each
        ``action``), so the answer shows the "Memory updated" chip once it is read
        again (the live stream gets it as a late ``memory_updated`` after ``done``)."""
        async with self.service.db.session() as session:
            row = await session.get(MessageRow, info.assistant_message_id)
            if row is None or row.user_id != info.user_id:
                return
            row.sources = [*(row.sources or []), *changed]
            await session.commit()

    async def _pending_related(
        self, user_id: str, query: str, scope: tuple[str | None, str | None]
    ) -> list[Recalled]:
        """Up to ``PENDING_RELATED`` memories waiting for review that share words
        with the message (new ones in this scope, and proposed updates of its memories)."""
        words = content_words(query)
        async with self.service.db.session() as session:
            store = MemoryStore(session, user_id)
            rows = (await store.list(status="pending", limit=200))[0]
        scored = []
        for row in rows:
            overlap = len(words & content_words(row.text))
            if (row.scope_type, row.scope_id) == scope and overlap:
                scored.append((overlap, row))
        scored.sort(key=lambda item: item[0], reverse=True)
        return [Recalled(r.id, r.text) for _, r in scored[:PENDING_RELATED]]
