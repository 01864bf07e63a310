"""What a running chat turn has produced, and writing it down.

The driver (``driver.TurnDriver``, part of ``TurnService``) decides what happens in a turn; the
``Recorder`` keeps what it produced and stores it, so each can be read alone:

- progress: text and reasoning deltas (an append, a count and a flag: the
  per-token path stays O(1)), tool steps (opened at ``tool_start`` with the
  ``offset`` of the text written before them, completed at ``tool_result``), the
  sources (the context's first, then those tools cite);
- a periodic flush of the text, reasoning and steps so far every
  ``flush_interval_s`` while the turn runs, so a crash loses at most that much;
- the finish: the full record (status, tokens, latency, time to first token,
  finish reason, cost, error), the automatic title, and the ``Final`` item that
  ends the stream with the stored message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parley.messages import Done, ErrorEvent, Source, ToolResult, ToolStart, ToolStep, Usage
from parley.providers.base import ModelInfo
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import Message as MessageRow
from parley.turns.events import Resync
from parley.turns.titles import heuristic_title
from parley.usage.prices import PriceBook

# A running turn writes its row at least this often, changed or not, so readers on
# other workers can tell a quiet turn (a slow tool) from one whose worker died
# (``parley.turns.streams.STALE_S``).
HEARTBEAT_S = 10.0

__all__ = ["Final", "Recorder"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Final:
    """The last item of a turn's stream: the stored assistant message."""

    message: MessageRow
    finish_reason: str
    usage: Usage
    title: str | None = None
    siblings: list[str] | None = None


class Recorder:
    """One turn's answer as it grows, written to ``message`` (its assistant row).

    ``title_from`` is the question to make the conversation's title from, or
    None when the conversation needs none.
    """

    def __init__(
        self,
        db: Database,
        *,
        user_id: str,
        conversation_id: str,
        message: MessageRow,
        model: ModelInfo,
        title_from: str | None,
        flush_interval_s: float,
        prices: PriceBook | None = None,
    ) -> None:
        """``prices``: what the message's cost is computed with (the usage ledger's,
        so the message and its ledger rows agree), else the model's own prices."""
        self.prices = prices
        # more columns the finish writes (a budget's notice, a downgrade's model)
        self.extra: dict[str, Any] = {}
        self.db = db
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.message = message
        self.model = model
        self.title_from = title_from
        self.flush_interval_s = flush_interval_s
        self.parts: list[str] = []
        self.length = 0  # characters in ``parts``: where a step starting now falls
        self._after_step = False  # a step came since the last text
        self.reasoning: list[str] = []
        self.steps: list[ToolStep] = []
        self.sources: list[Source] = []
        self.usage = Usage()
        self.done: Done | None = None
        self.error: ErrorEvent | None = None
        self.dirty = False  # something the periodic flush has not written yet
        self._from_context = 0  # sources the context gave; tools' are counted after these
        self._started = time.monotonic()
        self._first_token: float | None = None
        self._flusher: asyncio.Task[None] | None = None
        # The sequence number of the newest item the turn published (its log's
        # ``last``): the flush stores it with the content it matches, so a reader
        # following the stored answer from another worker keeps the stream's ids.
        self.seq: Callable[[], int] | None = None

    def text(self) -> str:
        return "".join(self.parts)

    def snapshot(self, seq: int) -> Resync:
        """The answer so far, as a reattaching reader must see it once the items it
        missed are gone (``turns/events.py``): copies, made only then."""
        steps = [step.copy() for step in self.steps]
        return Resync(seq, self.text(), "".join(self.reasoning), steps, list(self.sources))

    # ------------------------------------------------------------ progress

    def add_text(self, text: str) -> None:
        if self._first_token is None:
            self._first_token = time.monotonic()
        self.parts.append(text)
        self.length += len(text)
        self.dirty = True

    def paragraph_break(self, text: str) -> str:
        """What must go before ``text``, the first text after a tool step, so the text
        before the step and the text after it are separate paragraphs: ``"\n\n"``,
        less the line breaks already there ('' when the answer had no text before the
        step). Called only while ``resuming`` (once per step, not per token)."""
        self._after_step = False
        if not self.length:
            return ""
        tail = "".join(self.parts[-2:])[-2:]
        head = text[:2]
        have = len(tail) - len(tail.rstrip("\n")) + len(head) - len(head.lstrip("\n"))
        return "\n" * max(0, 2 - have)

    @property
    def resuming(self) -> bool:
        """True until the first text after a tool step."""
        return self._after_step

    def add_reasoning(self, text: str) -> None:
        if self._first_token is None:
            self._first_token = time.monotonic()
        self.reasoning.append(text)
        self.dirty = True

    def tool_started(self, event: ToolStart) -> None:
        """Open a step at the current end of the text; ``event.offset`` is set to it,
        so the ``tool_start`` event carries it too."""
        event.offset = self.length
        self._after_step = True
        step: ToolStep = {"id": event.id, "name": event.name, "arguments": event.arguments}
        step["offset"] = self.length
        self.steps.append(step)

    def confirmation_asked(self, call_id: str) -> None:
        """The call waits for the user's approval (a ``tool_confirm`` was sent)."""
        for step in reversed(self.steps):
            if step["id"] == call_id:
                step["needs_confirmation"] = True
                return

    def tool_finished(self, event: ToolResult) -> None:
        for step in reversed(self.steps):
            if step["id"] == event.id:
                break
        else:  # a result without a start: recorded anyway
            step = {"id": event.id, "name": event.name, "arguments": "", "offset": self.length}
            self.steps.append(step)
            self._after_step = True
        step["output"] = event.output
        step["is_error"] = event.is_error
        step["duration_ms"] = event.duration_ms
        if event.attachments:
            step["attachments"] = event.attachments
        self.dirty = True

    def context_sources(self, sources: list[Source]) -> None:
        """The sources of the context the features added (before the model is called)."""
        self.sources = sources
        self._from_context = len(sources)

    def tool_sources(self, cited: list[Source]) -> bool:
        """Take the sources tools have cited so far (``ToolContext.sources``); True
        when there are new ones. ``sources`` becomes a new list, so a list already
        sent in a ``sources`` event stays as it was sent."""
        fresh = cited[len(self.sources) - self._from_context :]
        if fresh:
            self.sources = self.sources + fresh
        return bool(fresh)

    def ended(self, done: Done) -> None:
        self.done = done
        self.usage = done.usage

    def failed(self, error: ErrorEvent) -> None:
        self.error = error

    # ------------------------------------------------------------ writing

    def start_flushing(self) -> None:
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def stop_flushing(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def _flush_periodically(self) -> None:
        written = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_interval_s)
            if not self.dirty and time.monotonic() - written < HEARTBEAT_S:
                continue
            self.dirty = False
            written = time.monotonic()
            try:
                async with self.db.session() as session:
                    store = ConversationStore(session, self.user_id)
                    await store.update_message(
                        self.message.id,
                        content=self.text(),
                        reasoning="".join(self.reasoning),
                        steps=list(self.steps),
                        sources=list(self.sources),
                        stream_seq=self.seq() if self.seq is not None else None,
                    )
                    await session.commit()
            except Exception:
                log.exception("periodic flush failed; will retry")
                self.dirty = True

    async def finish(self) -> Final:
        """Write the full record (and the title) and return the stored message."""
        done, error, usage = self.done, self.error, self.usage
        finish = done.finish_reason if done else "error"
        status = {"error": "failed", "cancelled": "cancelled"}.get(finish, "complete")
        if error is not None and status == "complete":
            status = "failed"
        first_token = self._first_token
        fields: dict[str, Any] = {
            "content": self.text(),
            "reasoning": "".join(self.reasoning),
            "steps": list(self.steps),
            "sources": self.sources,
            "status": status,
            "finish_reason": finish,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "latency_ms": round((time.monotonic() - self._started) * 1000, 1),
            "ttft_ms": round((first_token - self._started) * 1000, 1) if first_token else None,
            "cost": (
                self.prices.cost(
                    self.model,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cached_input_tokens,
                )
                if self.prices is not None
                else self.model.cost(usage.input_tokens, usage.output_tokens)
            ),
            "error_code": error.code if error else None,
            "error_message": error.message if error else None,
            **self.extra,
        }
        title: str | None = None
        async with self.db.session() as session:
            store = ConversationStore(session, self.user_id)
            await store.update_message(self.message.id, **fields)
            if self.title_from is not None:
                conv = await store.get(self.conversation_id)
                if conv is not None and not conv.title_generated:
                    title = heuristic_title(self.title_from)
                    await store.update(conv, title=title, title_generated=True)
            await session.commit()
            message = await store.get_message(self.message.id) or self.message
            siblings = (await store.siblings_map([message])).get(message.id)
        return Final(message, finish, usage, title, siblings)
