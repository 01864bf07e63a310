"""Long conversations: summarize older turns ahead of need, off the reply path.

An ``AfterTurn`` hook. When the part of the active branch not yet covered by
the stored summary passes ``trigger`` of the history budget (the window minus
the output reserve and an allowance for the system prompt), the oldest turns
are folded into the summary, keeping the newest ``keep`` of the budget in
full. The result is stored on the conversation (``summary`` and
``summary_until_id``, the last message it covers); the turn then sends that
summary plus only the later messages (pinned ones always stay; the rules are
``parley.turns.history``'s, shared with the turn's preparation). So the
summary is computed in the background once per chunk, reused by every later
turn, and refreshed incrementally (previous summary + newly covered turns).
It runs as a durable job (``memory.summarize``, one per conversation at a time,
on whichever worker claims it): a worker that dies mid-summary leaves it to
another.
If a turn arrives before it is ready, the engine drops the oldest turns as
before: the reply never waits for a summary.
"""

from __future__ import annotations

import asyncio
import logging

from parley.engine.context import summarize
from parley.engine.tokens import message_tokens
from parley.jobs.queue import Claimed
from parley.jobs.runner import Jobs
from parley.memory.extract import ModelResolver
from parley.memory.turninfo import turn_info_from_json, turn_info_json
from parley.messages import Message
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import Message as MessageRow
from parley.turns.history import history_from_rows, split_summarized
from parley.turns.hooks import TurnInfo

__all__ = [
    "SUMMARY_JOB",
    "SYSTEM_ALLOWANCE",
    "HistorySummarizer",
    "plan_summary",
]

log = logging.getLogger(__name__)

SYSTEM_ALLOWANCE = 0.15  # of the window: system prompt, memories, tool schemas
SUMMARY_JOB = "memory.summarize"


def history_budget(context_window: int, max_output_tokens: int) -> int:
    reserve = min(max_output_tokens, context_window // 2)
    return max(0, int(context_window * (1 - SYSTEM_ALLOWANCE)) - reserve)


def plan_summary(rows: list[MessageRow], budget: int, *, trigger: float, keep: float) -> int | None:
    """How many leading ``rows`` to fold into the summary now, or None (not needed yet).

    Cuts only before a user message, so a turn is never split.
    """
    costs = [sum(message_tokens(m) for m in history_from_rows([row])[0]) for row in rows]
    if sum(costs) <= trigger * budget:
        return None
    kept, cut = 0, len(rows)
    for index in range(len(rows) - 1, 0, -1):
        kept += costs[index]
        if rows[index].role == "user":
            if kept > keep * budget:
                break
            cut = index
    return cut if 0 < cut < len(rows) else None


class HistorySummarizer:
    name = "history_summary"
    late_events = False  # nobody waits for it: the answer's stream need not stay open

    def __init__(
        self,
        db: Database,
        resolve_model: ModelResolver,
        *,
        enabled: bool = True,
        trigger: float = 0.7,
        keep: float = 0.4,
        jobs: Jobs | None = None,
    ) -> None:
        """``jobs``: run each summary as a durable job (None: in the after-turn task)."""
        self.db = db
        self.resolve_model = resolve_model
        self.enabled = enabled
        self.trigger = trigger
        self.keep = keep
        self._running: set[str] = set()
        self.last_run_s = 0.0
        self.jobs = jobs

    async def after_turn(self, info: TurnInfo, answer: str, status: str) -> None:
        if not self.enabled or status not in ("complete", "cancelled"):
            return None
        if self.jobs is not None:
            # Cheap to rule out here; otherwise a durable job (one per conversation at a
            # time, on any worker; a summary a dead worker started is done again).
            if not self._maybe_due(info):
                return None
            await self.jobs.enqueue(
                SUMMARY_JOB, turn_info_json(info), key=info.conversation_id, user_id=info.user_id
            )
            return None
        if info.conversation_id in self._running:
            return None  # one summary at a time per conversation; the next turn catches up
        self._running.add(info.conversation_id)
        try:
            await self.refresh(info)
        finally:
            self._running.discard(info.conversation_id)
        return None

    async def run_job(self, job: Claimed) -> None:
        """The ``memory.summarize`` job: the turn's conversation, read again."""
        await self.refresh(turn_info_from_json({**job.payload, "history_tokens": None}))

    def _maybe_due(self, info: TurnInfo) -> bool:
        budget = history_budget(info.model.context_window, info.model.max_output_tokens)
        return info.history_tokens is None or info.history_tokens > self.trigger * budget

    async def refresh(self, info: TurnInfo) -> bool:
        """Fold old turns into the stored summary when due; True when it changed.

        When the turn reports its history's size (``info.history_tokens``: the
        messages it sent in full plus its answer), a chat under the trigger is
        known not to be due without reading it: the messages still unsummarized
        are among those, so ``plan_summary`` would find nothing to fold. Otherwise
        every turn of a long chat would load its whole branch again."""
        budget = history_budget(info.model.context_window, info.model.max_output_tokens)
        if info.history_tokens is not None and info.history_tokens <= self.trigger * budget:
            return False
        async with self.db.session() as session:
            store = ConversationStore(session, info.user_id)
            conv = await store.get(info.conversation_id)
            if conv is None:
                return False
            path = await store.active_path(conv)
            previous_until = conv.summary_until_id
            _, previous = split_summarized(path, conv.summary, previous_until)
        ids = [row.id for row in path]
        start = ids.index(previous_until) + 1 if previous and previous_until else 0
        pending = path[start:]
        cut = plan_summary(pending, budget, trigger=self.trigger, keep=self.keep)
        if cut is None:
            return False
        folded: list[Message] = history_from_rows(pending[:cut])[0]
        if not folded:
            return False
        loop = asyncio.get_running_loop()
        started = loop.time()
        model = await self.resolve_model(info)
        text = await summarize(model, folded, previous=previous)
        self.last_run_s = loop.time() - started
        if not text:
            return False
        async with self.db.session() as session:
            store = ConversationStore(session, info.user_id)
            conv = await store.get(info.conversation_id)
            if conv is None or conv.summary_until_id != previous_until:
                return False  # another worker moved it meanwhile: keep theirs
            await store.update(conv, summary=text, summary_until_id=pending[cut - 1].id)
            await session.commit()
        log.info("summarized %d messages of %s", cut, info.conversation_id)
        return True
