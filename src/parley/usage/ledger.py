"""The usage ledger: writing one row per billable call, and summing them.

``UsageLedger.record`` is called after a call ended (well or not). It opens its
own short session and never raises: accounting must not fail the request it
accounts for, so a failed write is logged and dropped. ``record_soon`` does the
same from code that cannot wait (a stream's end, where the client may already
have gone and the request's task be cancelled): a task the ledger keeps until it
is done, awaited by ``drain`` at shutdown.

``Meter`` tallies one model call as its events pass (text, reasoning and tool
call arguments kept, the provider's usage report when one comes) and turns it
into the row's numbers: the provider's token counts when given, else counts of
the request and the answer with the model's counter (``parley.engine.tokens``),
so a non-empty answer is never recorded as zero tokens; the cost is the
model's price (``ModelInfo.cost``, as chat turns price their messages).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select

from parley.engine.tokens import TokenCounter, estimate_tokens, messages_tokens, tools_tokens
from parley.messages import ReasoningDelta, TextDelta, ToolCallDelta, Usage, UsageEvent
from parley.providers.base import ChatRequest, ModelInfo
from parley.storage.db import Database
from parley.usage.prices import PriceBook
from parley.usage.tables import UsageEvent as UsageRow

__all__ = ["GROUPS", "Meter", "UsageFields", "UsageLedger", "UsageTotal", "UsageTotals"]

# What totals can be grouped by (``UsageLedger.summary``).
GROUPS = ("day", "model", "key", "user", "project", "assistant", "endpoint")

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UsageTotal:
    """Sums over some calls: ``key`` is a day (``YYYY-MM-DD``), a model ref or an
    API key id (``None``: calls made without a key)."""

    key: str | None
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


@dataclass(slots=True)
class UsageTotals:
    since: datetime
    by_day: list[UsageTotal] = field(default_factory=list)
    by_model: list[UsageTotal] = field(default_factory=list)
    by_key: list[UsageTotal] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UsageFields:
    """What ``UsageLedger.listeners`` see of each row."""

    endpoint: str
    provider: str
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float
    outcome: str


class UsageLedger:
    """Writes and sums ``usage_events``; shared on the services box (``Services``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.prices = PriceBook(db)  # what calls and messages are charged
        self._pending: set[asyncio.Task[None]] = set()
        # Called with each row's fields before it is written (the Prometheus counters:
        # ``parley.telemetry.metrics``); a listener must be quick and must not raise.
        self.listeners: list[Callable[[UsageFields], None]] = []
        # Told of each row of work that is charged but never refused before it runs
        # (titles, memory extraction, summaries, remote embeddings: ``metering``);
        # the budgets count it (``parley.budgets``, set by the composition root).
        self.on_charge: list[Callable[[dict[str, Any]], None]] = []

    def charged(self, **fields: Any) -> None:
        """``record_soon`` for work that no budget refused first: the row, and each
        ``on_charge`` listener told (a listener's failure is logged, never raised)."""
        self.record_soon(**fields)
        for listener in self.on_charge:
            try:
                listener(fields)
            except Exception:
                log.exception("a usage listener failed")

    async def record(
        self,
        *,
        user_id: str,
        endpoint: str,
        provider: str,
        model: str,
        api_key_id: str | None = None,
        conversation_id: str | None = None,
        project_id: str | None = None,
        assistant_id: str | None = None,
        input_tokens: int = 0,
        cached_input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float = 0.0,
        audio_seconds: float = 0.0,
        latency_ms: float = 0.0,
        outcome: str = "ok",
        at: datetime | None = None,
    ) -> None:
        """One call's row, in its own session; logs instead of raising. ``at``: when
        the call ended (default: now)."""
        if self.listeners:
            seen = UsageFields(
                endpoint,
                provider,
                model,
                input_tokens,
                cached_input_tokens,
                output_tokens,
                cost,
                latency_ms,
                outcome,
            )
            for listener in self.listeners:
                try:
                    listener(seen)
                except Exception:
                    log.exception("a usage listener failed")
        try:
            async with self.db.session() as session:
                session.add(
                    UsageRow(
                        at=at or datetime.now(UTC),
                        user_id=user_id,
                        api_key_id=api_key_id,
                        conversation_id=conversation_id,
                        project_id=project_id,
                        assistant_id=assistant_id,
                        endpoint=endpoint[:40],
                        provider=provider[:100],
                        model=model[:300],
                        input_tokens=max(0, int(input_tokens)),
                        cached_input_tokens=max(0, int(cached_input_tokens)),
                        output_tokens=max(0, int(output_tokens)),
                        cost=float(cost),
                        audio_seconds=max(0.0, float(audio_seconds)),
                        latency_ms=round(float(latency_ms), 1),
                        outcome=outcome[:60],
                    )
                )
                await session.commit()
        except Exception:
            log.exception("could not record usage of %s by user %s", endpoint, user_id)

    def record_soon(self, **fields: Any) -> None:
        """``record`` in a task of its own (kept until done): for a stream's end.
        Without a running loop (a stream finalized at interpreter exit) the row is
        lost and logged."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning(
                "usage of %s by %s not recorded: no event loop",
                fields.get("endpoint"),
                fields.get("user_id"),
            )
            return
        fields.setdefault("at", datetime.now(UTC))  # the call's end, not the write's
        task = loop.create_task(self.record(**fields))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the rows ``record_soon`` is still writing (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    @staticmethod
    def since(days: int) -> datetime:
        """The start (UTC midnight) of a period of ``days`` days, today included."""
        return datetime.combine(
            datetime.now(UTC).date() - timedelta(days=max(1, days) - 1),
            datetime.min.time(),
            tzinfo=UTC,
        )

    async def totals(self, user_id: str, days: int = 30) -> UsageTotals:
        """The user's calls of the last ``days`` days (UTC), summed by day, model and key."""
        since, found = await self.summary(user_id, days, ("day", "model", "key"))
        return UsageTotals(since, found["day"], found["model"], found["key"])

    async def summary(
        self, user_id: str | None, days: int, groups: Sequence[str]
    ) -> tuple[datetime, dict[str, list[UsageTotal]]]:
        """Calls of the last ``days`` days (UTC) summed by each of ``groups``
        (``GROUPS``), in SQL; one user's, or everyone's (``user_id`` None: admins)."""
        since = self.since(days)
        day: Any = (
            func.date(UsageRow.at)
            if self.db.dialect == "sqlite"
            else cast(func.timezone("UTC", UsageRow.at), Date)
        )
        columns: dict[str, Any] = {
            "day": day,
            "model": UsageRow.model,
            "key": UsageRow.api_key_id,
            "user": UsageRow.user_id,
            "project": UsageRow.project_id,
            "assistant": UsageRow.assistant_id,
            "endpoint": UsageRow.endpoint,
        }
        sums = (
            func.count(UsageRow.id),
            func.coalesce(func.sum(UsageRow.input_tokens), 0),
            func.coalesce(func.sum(UsageRow.cached_input_tokens), 0),
            func.coalesce(func.sum(UsageRow.output_tokens), 0),
            func.coalesce(func.sum(UsageRow.cost), 0.0),
        )
        out: dict[str, list[UsageTotal]] = {}
        async with self.db.session() as session:
            for group in groups:
                column = columns[group]
                query = select(column, *sums).where(UsageRow.at >= since)
                if user_id is not None:
                    query = query.where(UsageRow.user_id == user_id)
                rows = await session.execute(query.group_by(column).order_by(column))
                target = out[group] = []
                for key, requests, inp, cached, outp, cost in rows:
                    if isinstance(key, date):
                        key = key.isoformat()
                    target.append(
                        UsageTotal(
                            key, int(requests), int(inp), int(cached), int(outp), float(cost)
                        )
                    )
        return since, out

    async def rows(self, user_id: str | None, days: int) -> AsyncIterator[list[UsageRow]]:
        """The rows of the last ``days`` days, oldest first, in batches of 500 (the
        CSV export streams them); one user's, or everyone's."""
        query = select(UsageRow).where(UsageRow.at >= self.since(days))
        if user_id is not None:
            query = query.where(UsageRow.user_id == user_id)
        query = query.order_by(UsageRow.at, UsageRow.id).execution_options(yield_per=500)
        async with self.db.session() as session:
            result = await session.stream_scalars(query)
            async for batch in result.partitions(500):
                yield list(batch)


class Meter:
    """One model call's numbers, tallied from its events (``see`` is O(1))."""

    __slots__ = ("_count", "_parts", "_request", "_started", "model", "prices", "usage")

    def __init__(
        self,
        model: ModelInfo,
        request: ChatRequest,
        count: TokenCounter = estimate_tokens,
        prices: PriceBook | None = None,
    ) -> None:
        self.model = model
        self.prices = prices
        self._request = request
        self._count = count
        self._parts: list[str] = []
        self._started = time.monotonic()
        self.usage: Usage | None = None

    def see(self, event: object) -> None:
        if isinstance(event, TextDelta | ReasoningDelta):
            self._parts.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self._parts.append((event.name or "") + event.arguments)
        elif isinstance(event, UsageEvent):
            self.usage = event.usage

    def tokens(self) -> tuple[int, int]:
        """(input, output): the provider's report, else counted; a non-empty
        answer is never zero tokens. (Cached input: ``cached``.)"""
        reported = self.usage or Usage()
        input_tokens = reported.input_tokens
        if input_tokens <= 0:
            input_tokens = messages_tokens(self._request.messages, self._count) + tools_tokens(
                self._request.tools, self._count
            )
        output_tokens = reported.output_tokens
        if output_tokens <= 0 and self._parts:
            output_tokens = max(1, self._count("".join(self._parts)))
        return input_tokens, output_tokens

    def cached(self, input_tokens: int) -> int:
        """Input tokens the provider read from its cache (its report; else 0)."""
        reported = self.usage
        if reported is None or reported.input_tokens <= 0:
            return 0
        return min(reported.cached_input_tokens, input_tokens)

    def fields(self, outcome: str = "ok") -> dict[str, Any]:
        """The ledger row's numbers (``UsageLedger.record`` keywords)."""
        input_tokens, output_tokens = self.tokens()
        cached = self.cached(input_tokens)
        return {
            "provider": self.model.provider,
            "model": self.model.ref,
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "output_tokens": output_tokens,
            "cost": (
                self.prices.cost(self.model, input_tokens, output_tokens, cached)
                if self.prices is not None
                else self.model.cost(input_tokens, output_tokens)
            ),
            "latency_ms": (time.monotonic() - self._started) * 1000,
            "outcome": outcome,
        }
