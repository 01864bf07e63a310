"""Budgets and rate limits: which apply to a call, reserving its worst case
before it runs, settling to what it cost after, and what to tell the caller.

``Budgets`` keeps the administrators' limits in memory (re-read at most every
``REFRESH_S`` on each worker, at once on the worker that changed them), so a call
that no limit applies to costs no query at all. When limits apply, a model call
costs one reservation before it starts (``ledger.reserve``: one statement on
PostgreSQL, one short transaction on SQLite, however many limits apply), and its
settle joins the others that ended within ``SETTLE_AFTER_S`` in one background
transaction (``ledger.settle``); the sweep of expired leases runs in the
background too. The arithmetic lives in ``parley.budgets.ledger``; the model
wrapper that calls this in ``parley.budgets.model``.

Who a call counts against (``Payer``): the instance, each group of the user
(``USER_GROUPS`` through ``groups``: every group binds), the user, the chat's
project and the API key. A cost budget counts the instance's currency (the
prices of ``parley.usage.prices``); a rate limit counts requests or tokens per
minute, in the same counters (the database, shared by every worker; Redis is not
used: one transaction covers the budgets and the rate limits of a call, so a
refused rate limit never leaves a budget reserved).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from parley.budgets import ledger
from parley.budgets.ledger import Claim, Taken
from parley.budgets.tables import Budget, BudgetCounter
from parley.budgets.windows import PERIODS, RATE_PERIOD, window_of
from parley.engine.tokens import TokenCounter, estimate_tokens, messages_tokens, tools_tokens
from parley.errors import BudgetExceeded, Conflict, Invalid, NotFound
from parley.providers.base import ChatRequest, ModelInfo
from parley.storage.db import Database
from parley.usage.prices import PriceBook

__all__ = [
    "WARN_AT",
    "Budgets",
    "Limit",
    "Payer",
    "Ticket",
    "Verdict",
    "delete_limit",
    "save_limit",
]

log = logging.getLogger(__name__)

WARN_AT = 0.8  # a cost budget this much spent warns its users
SETTLE_BATCH = 500  # calls settled by one transaction at most
SCOPES = ("instance", "group", "user", "project", "key")
KINDS = ("cost", "requests", "tokens")
GroupLookup = Callable[[str], Awaitable[Sequence[str]]]
T = TypeVar("T")
# a reservation waiting for the worker's reservation lock: (id, claims, lease's end,
# its answer)
_Ask = tuple[str, list[Claim], datetime, "asyncio.Future[tuple[bool, list[Taken]]]"]


async def _retrying(attempt: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """``attempt()``, again when PostgreSQL chose it as a deadlock's victim (two
    reservations that locked shared counters in different orders: it waits a second
    to detect it; rare, since every reservation updates its rows in one statement)."""
    for n in range(tries):
        try:
            return await attempt()
        except DBAPIError as exc:
            orig = exc.orig
            names = (type(orig).__name__ + type(getattr(orig, "__cause__", None)).__name__).lower()
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if n == tries - 1 or not (code == "40P01" or "deadlock" in names):
                raise
            log.warning("budget reservation was a deadlock's victim; trying again")
    raise AssertionError("unreachable")


@asynccontextmanager
async def _using(db: Database, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    """The caller's session when given (left open), else a new one (closed)."""
    if session is not None:
        yield session
        return
    async with db.session() as own:
        yield own


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget or rate limit as the administrator set it (a ``budgets`` row)."""

    id: str
    scope: str
    scope_id: str
    kind: str
    period: str
    amount: float
    downgrade_model: str | None = None

    def describe(self) -> str:
        """How a user reads it: "the daily budget of your group", "requests per minute
        of this API key"."""
        whose = {
            "instance": "this server",
            "group": "your group",
            "user": "your account",
            "project": "this project",
            "key": "this API key",
        }[self.scope]
        if self.kind == "cost":
            per = {"day": "daily", "week": "weekly", "month": "monthly", "total": "total"}
            return f"the {per[self.period]} budget of {whose}"
        return f"the {self.kind}-per-minute limit of {whose}"

    def unit(self, value: float, currency: str) -> str:
        if self.kind == "cost":
            return f"{value:.2f} {currency}"
        return f"{int(value)} {self.kind}"


@dataclass(frozen=True, slots=True)
class Payer:
    """Who a call is charged to. ``groups`` is filled by ``Budgets.payer``."""

    user_id: str
    api_key_id: str | None = None
    project_id: str | None = None
    groups: tuple[str, ...] = ()

    def ids(self) -> dict[str, set[str]]:
        return {
            "instance": {""},
            "group": set(self.groups),
            "user": {self.user_id},
            "project": {self.project_id} if self.project_id else set(),
            "key": {self.api_key_id} if self.api_key_id else set(),
        }


@dataclass(slots=True)
class Ticket:
    """A call's reservation: settle it once with what the call cost."""

    id: str
    claims: list[Claim]
    limits: dict[str, Limit]
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Verdict:
    """A refusal that an administrator turned into a downgrade: answer with
    ``downgrade_model``; ``exempt``: the spent budgets, charged without a check."""

    downgrade_model: str
    exempt: frozenset[str]
    notice: str


class Budgets:
    REFRESH_S = 2.0
    SWEEP_S = 30.0
    SETTLE_AFTER_S = 0.05  # a finished call's settle waits this long for others to join it

    def __init__(
        self,
        db: Database,
        prices: PriceBook,
        *,
        currency: str = "USD",
        lease_s: float = 900.0,
        groups: Callable[[], GroupLookup | None] = lambda: None,
    ) -> None:
        self.db = db
        self.prices = prices
        self.currency = currency
        self.lease_s = lease_s
        self.groups = groups
        self._limits: list[Limit] = []
        self._read_at = -1e9
        self._swept_at = time.monotonic()
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()
        self._settling: list[ledger.Settlement] = []  # finished calls, to settle together
        self._settler: asyncio.Task[None] | None = None
        self._asks: list[_Ask] = []  # reservations waiting for ``_reserving``
        self._sweeps, self._freed = 0, 0  # refusals' sweeps so far; what the last gave back
        self._known: set[tuple[str, str]] = set()  # counter rows seen to exist
        # SQLite has one writer at a time and a waiting writer sleeps in steps of up to
        # 100 ms (its busy handler): this worker's own budget writes queue here instead,
        # each waking the moment the previous one commits. PostgreSQL locks rows only.
        self._writes = asyncio.Lock() if db.dialect == "sqlite" else contextlib.nullcontext()
        # reservations queue here (``_queued``): SQLite's is the write lock itself
        self._reserving = self._writes if db.dialect == "sqlite" else asyncio.Lock()
        # ``(scope, scope_id, spent, limit)`` of each budget whenever its use is read
        # (``/metrics``' budget gauges, set by the composition root: ``BUDGET_METRICS``)
        self.reporter: Callable[[str, str, float, float], None] | None = None

    # ------------------------------------------------------------ the limits

    async def limits(self, session: AsyncSession | None = None) -> list[Limit]:
        """Every limit, re-read at most every ``REFRESH_S`` (a failed read keeps the
        old copy). ``session``: the caller's, so a request never holds two pooled
        connections (a burst would wait on itself); while another task re-reads,
        the copy in hand is used."""
        if time.monotonic() - self._read_at < self.REFRESH_S:
            return self._limits
        if self._lock.locked() and self._read_at > 0:
            return self._limits
        async with self._lock:
            if time.monotonic() - self._read_at < self.REFRESH_S:
                return self._limits
            try:
                async with _using(self.db, session) as s:
                    rows = (await s.scalars(select(Budget))).all()
                self._limits = [
                    Limit(r.id, r.scope, r.scope_id, r.kind, r.period, r.amount, r.downgrade_model)
                    for r in rows
                ]
            except Exception:
                log.exception("could not read the budgets; keeping the last copy")
            self._read_at = time.monotonic()
        return self._limits

    def invalidate(self) -> None:
        self._read_at = -1e9

    async def payer(
        self,
        user_id: str,
        api_key_id: str | None = None,
        project_id: str | None = None,
        session: AsyncSession | None = None,
    ) -> Payer:
        """The payer with the user's groups, looked up only when a group has a limit."""
        groups: tuple[str, ...] = ()
        if any(limit.scope == "group" for limit in await self.limits(session)):
            lookup = self.groups()
            if lookup is not None:
                groups = tuple(await lookup(user_id))
        return Payer(user_id, api_key_id, project_id, groups)

    async def applying(self, payer: Payer) -> list[Limit]:
        ids = payer.ids()
        return [limit for limit in await self.limits() if limit.scope_id in ids[limit.scope]]

    # ------------------------------------------------------------ a call

    @staticmethod
    def worst_case(
        info: ModelInfo, request: ChatRequest, count: TokenCounter = estimate_tokens
    ) -> tuple[int, int]:
        """(prompt tokens, the most the answer may be): the reservation's tokens."""
        prompt = messages_tokens(request.messages, count) + tools_tokens(request.tools, count)
        return prompt, request.max_tokens or info.max_output_tokens

    def estimate(self, info: ModelInfo, prompt: int, output: int) -> float:
        price = self.prices.price(info)
        return price.cost(prompt, 0) + price.cost(0, output)

    async def reserve(
        self,
        payer: Payer,
        *,
        cost: float,
        tokens: int,
        exempt: frozenset[str] = frozenset(),
        check: bool = True,
        downgrade: bool = True,
    ) -> Ticket | Verdict | None:
        """Reserve ``cost`` and ``tokens`` (and one request) against every limit that
        applies. ``None``: no limit applies (no query was made). A ``Verdict``: a spent
        budget with a downgrade model; reserve again for that model with its
        ``exempt`` (``downgrade`` false: refuse instead). Raises ``BudgetExceeded``
        at a limit."""
        limits = await self.applying(payer)
        if not limits:
            return None
        now = datetime.now(UTC)
        self._sweep_now_and_then(now)
        claims = self._claims(limits, now, cost, tokens, exempt, check)
        ticket_id = uuid.uuid4().hex
        expires = now + timedelta(seconds=self.lease_s)
        ok, taken = await self._queued(ticket_id, claims, expires)
        if not ok:
            ok, taken = await self._after_a_refusal(ticket_id, claims, expires, now, taken)
        by_id = {limit.id: limit for limit in limits}
        if not ok:
            return self._refusal(taken, by_id, now, downgrade)
        return Ticket(ticket_id, claims, by_id, self._warnings(taken, by_id, now))

    async def _after_a_refusal(
        self,
        ticket_id: str,
        claims: list[Claim],
        expires: datetime,
        now: datetime,
        taken: list[Taken],
    ) -> tuple[bool, list[Taken]]:
        """Before refusing: a crashed worker's lease may have run out (sweep, then try
        again if that gave anything back), or a counter this worker knew may be gone
        (it reads as zero: try again, creating it). Refusals waiting together share
        one sweep: a burst of 190 refusals is one sweep, not 190."""
        seen = self._sweeps
        async with self._writes:
            if self._sweeps == seen:  # nobody swept since this refusal
                self._sweeps += 1
                self._freed = await ledger.sweep(self.db, now)
            if self._freed or any(t.spent == 0 and t.reserved == 0 for t in taken):
                return await ledger.reserve(self.db, ticket_id, claims, expires)
        return False, taken

    async def _queued(
        self, ticket_id: str, claims: list[Claim], expires: datetime
    ) -> tuple[bool, list[Taken]]:
        """Wait for this worker's reservation lock; whoever gets it reserves for every
        call queued by then: alone, ``ledger.reserve`` (PostgreSQL: one statement);
        several, one transaction (``ledger.reserve_many``). A burst of N requests is a
        few transactions, not N waiting on each other's row locks (PostgreSQL) or on
        the database's write lock (SQLite)."""
        mine: asyncio.Future[tuple[bool, list[Taken]]] = asyncio.get_running_loop().create_future()
        ask = (ticket_id, claims, expires, mine)
        self._asks.append(ask)
        try:
            async with self._reserving:
                if not mine.done():
                    batch, self._asks = self._asks, []
                    # a task of its own: a cancelled request never leaves the others unanswered
                    await asyncio.shield(self._background(self._reserve_batch(batch)))
        except asyncio.CancelledError:  # a request that went away keeps nothing
            if ask in self._asks:
                self._asks.remove(ask)
            else:
                mine.add_done_callback(lambda done: self._give_back(ticket_id, claims, done))
            raise
        return mine.result()

    async def _reserve_batch(self, batch: list[_Ask]) -> None:
        try:
            if len(batch) == 1:
                rid, claims, expires, _ = batch[0]
                got = [
                    await _retrying(
                        lambda: ledger.reserve(self.db, rid, claims, expires, self._known)
                    )
                ]
            else:
                asks = [(rid, claims, expires) for rid, claims, expires, _ in batch]
                got = await _retrying(lambda: ledger.reserve_many(self.db, asks, self._known))
        except Exception as exc:  # each waiting request raises it
            for *_, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(exc)
            return
        for (*_, waiting), result in zip(batch, got, strict=True):
            if not waiting.done():
                waiting.set_result(result)

    def _give_back(
        self, ticket_id: str, claims: list[Claim], done: asyncio.Future[tuple[bool, list[Taken]]]
    ) -> None:
        """A reservation whose request went away: settled at nothing once it is made."""
        if done.cancelled() or done.exception() is not None or not done.result()[0]:
            return
        self._settling.append((ticket_id, claims, {}))  # settled at nothing: all given back
        if self._settler is None or self._settler.done():
            self._settler = self._background(self._settle_queued())

    async def preflight(
        self, payer: Payer, session: AsyncSession | None = None
    ) -> tuple[Verdict | None, list[str]]:
        """Before a turn stores anything: refuse (``BudgetExceeded``) when a limit that
        applies is already used up, or name the downgrade model of a spent budget that
        has one; with the 80% warnings. One read; each call's reservation comes later,
        with its size."""
        limits = await self.applying(payer)
        if not limits:
            return None, []
        now = datetime.now(UTC)
        full: list[Taken] = []
        seen: list[Taken] = []
        by_id = {limit.id: limit for limit in limits}
        for limit, spent, reserved, _ in await self.usage(limits, session):
            window, _ = window_of(limit.period, now)
            need = 1.0 if limit.kind == "requests" else 0.0
            taken = Taken(Claim(limit.id, window, need, limit.amount), spent, reserved)
            seen.append(taken)
            if spent + reserved + need > limit.amount or (
                limit.kind != "requests" and spent + reserved >= limit.amount
            ):
                full.append(Taken(taken.claim, spent, reserved, refused=True))
        warnings = self._warnings(seen, by_id, now)
        if not full:
            return None, warnings
        return self._refusal(full, by_id, now), warnings

    def _claims(
        self,
        limits: Sequence[Limit],
        now: datetime,
        cost: float,
        tokens: int,
        exempt: frozenset[str],
        check: bool,
    ) -> list[Claim]:
        out = []
        for limit in limits:
            amount = {"cost": cost, "tokens": float(tokens), "requests": 1.0}[limit.kind]
            window, _ = window_of(limit.period, now)
            out.append(
                Claim(limit.id, window, amount, limit.amount, check and limit.id not in exempt)
            )
        return out

    def settle_soon(self, ticket: Ticket, cost: float, tokens: int) -> None:
        """Settle off the request's path (a stream's end cannot wait; a cancelled
        request still settles): queued, and the calls that end within
        ``SETTLE_AFTER_S`` of each other settle in one transaction (500 streams
        ending together are a few writes, not 500, and rarely in a reservation's
        way). ``drain`` awaits them."""
        actual = {
            c.budget_id: {"cost": cost, "tokens": float(tokens), "requests": 1.0}[
                ticket.limits[c.budget_id].kind
            ]
            for c in ticket.claims
        }
        self._settling.append((ticket.id, ticket.claims, actual))
        if self._settler is None or self._settler.done():
            self._settler = self._background(self._settle_queued())

    def _background(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _settle_queued(self) -> None:
        await asyncio.sleep(self.SETTLE_AFTER_S)
        while self._settling:
            batch, self._settling = self._settling[:SETTLE_BATCH], self._settling[SETTLE_BATCH:]
            try:
                async with self._writes:
                    await ledger.settle(self.db, batch)
            except Exception:  # the leases' expiry gives the reservations back
                log.exception("could not settle %d budget reservations", len(batch))

    async def charge(
        self,
        user_id: str,
        api_key_id: str | None,
        project_id: str | None,
        cost: float,
        tokens: int,
    ) -> None:
        """Count a call that was not refused before it ran (titles, memory
        extraction, summaries: work after an answer is never cut off mid-way)."""
        try:
            payer = await self.payer(user_id, api_key_id, project_id)
            limits = await self.applying(payer)
            if not limits:
                return
            claims = self._claims(limits, datetime.now(UTC), cost, tokens, frozenset(), False)
            async with self._writes:
                await ledger.add_spent(self.db, claims)
        except Exception:
            log.exception("could not charge after-turn work to the budgets")

    def charged(self, fields: dict[str, Any]) -> None:
        """A usage row of work charged but not refused (``UsageLedger.on_charge``)."""
        if not self._limits and time.monotonic() - self._read_at < self.REFRESH_S:
            return  # no limits at all: nothing to count
        tokens = int(fields.get("input_tokens", 0)) + int(fields.get("output_tokens", 0))
        coro = self.charge(
            fields["user_id"],
            fields.get("api_key_id"),
            fields.get("project_id"),
            float(fields.get("cost", 0.0)),
            tokens,
        )
        self._background(coro)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _sweep_now_and_then(self, now: datetime) -> None:
        """Every ``SWEEP_S``, in the background: give back expired reservations, and
        report the budgets' use to the gauges."""
        if time.monotonic() - self._swept_at < self.SWEEP_S:
            return
        self._swept_at = time.monotonic()
        self._background(self._sweep(now))

    async def _sweep(self, now: datetime) -> None:
        try:
            async with self._writes:
                await ledger.sweep(self.db, now)
            if self.reporter is not None:  # the gauges at most SWEEP_S old
                await self.usage([limit for limit in await self.limits() if limit.kind == "cost"])
        except Exception:
            log.exception("could not sweep expired budget reservations")

    # ------------------------------------------------------------ what to say

    def _refusal(
        self, refused: list[Taken], limits: dict[str, Limit], now: datetime, downgrade: bool = True
    ) -> Verdict:
        spent = [limits[t.claim.budget_id] for t in refused]
        if downgrade and all(limit.kind == "cost" and limit.downgrade_model for limit in spent):
            first = spent[0]
            return Verdict(
                downgrade_model=first.downgrade_model or "",
                exempt=frozenset(limit.id for limit in spent),
                notice=f"{_cap(first.describe())} is spent; answered by "
                f"{first.downgrade_model} instead.",
            )
        hard = [
            t for t in refused if not (downgrade and limits[t.claim.budget_id].downgrade_model)
        ] or refused
        raise self._error(hard[0], limits[hard[0].claim.budget_id], now)

    def _error(self, taken: Taken, limit: Limit, now: datetime) -> BudgetExceeded:
        _, ends = window_of(limit.period, now)
        left = max(0.0, limit.amount - taken.spent - taken.reserved)
        when = f"; it resets at {ends:%Y-%m-%d %H:%M} UTC" if ends else "; it does not reset"
        code = "budget_exceeded" if limit.kind == "cost" else "rate_limited"
        verb = "is spent" if limit.kind == "cost" else "is reached"
        message = (
            f"{_cap(limit.describe())} {verb}: {limit.unit(left, self.currency)} left "
            f"of {limit.unit(limit.amount, self.currency)}, not enough for this request{when}."
        )
        details: dict[str, object] = {
            "limit": {
                "scope": limit.scope,
                "kind": limit.kind,
                "period": limit.period,
                "amount": limit.amount,
            },
            "remaining": round(left, 6),
            "resets_at": ends.isoformat() if ends else None,
        }
        if ends is not None:
            details["retry_after_s"] = max(1, math.ceil((ends - now).total_seconds()))
        return BudgetExceeded(message, code, details)

    def _warnings(self, taken: list[Taken], limits: dict[str, Limit], now: datetime) -> list[str]:
        out = []
        for t in taken:
            limit = limits[t.claim.budget_id]
            if limit.kind != "cost" or limit.amount <= 0 or t.spent < WARN_AT * limit.amount:
                continue
            _, ends = window_of(limit.period, now)
            when = f"; it resets at {ends:%Y-%m-%d %H:%M} UTC" if ends else ""
            share = min(100, int(100 * t.spent / limit.amount))
            out.append(
                f"{share}% of {limit.describe()} is used "
                f"({limit.unit(t.spent, self.currency)} of "
                f"{limit.unit(limit.amount, self.currency)}){when}."
            )
        return out

    # ------------------------------------------------------------ views

    async def usage(
        self, limits: Sequence[Limit], session: AsyncSession | None = None
    ) -> list[tuple[Limit, float, float, datetime | None]]:
        """Each limit with its current window's (spent, reserved) and reset time."""
        now = datetime.now(UTC)
        keys = {limit.id: window_of(limit.period, now) for limit in limits}
        found: dict[tuple[str, str], BudgetCounter] = {}
        if limits:
            async with _using(self.db, session) as s:
                rows = await s.scalars(
                    select(BudgetCounter).where(BudgetCounter.budget_id.in_(list(keys)))
                )
                found = {(r.budget_id, r.window): r for r in rows}
        out = []
        for limit in limits:
            window, ends = keys[limit.id]
            row = found.get((limit.id, window))
            out.append((limit, row.spent if row else 0.0, row.reserved if row else 0.0, ends))
        if self.reporter is not None:
            for limit, spent, _, _ in out:
                if limit.kind == "cost":
                    self.reporter(limit.scope, limit.scope_id, spent, limit.amount)
        return out

    async def share_used(self, query: Any) -> float | None:
        """The largest share used (spent and reserved, 0.0-1.0+) of the money budgets
        that apply to ``query``'s caller (a ``BudgetQuery``: user, key, project), or
        None when none does: what Auto's ``budget`` rule reads (``BUDGET_STATE``)."""
        payer = await self.payer(query.user_id, query.api_key_id, query.project_id)
        money = [
            limit
            for limit in await self.applying(payer)
            if limit.kind == "cost" and limit.amount > 0
        ]
        if not money:
            return None
        used = await self.usage(money)
        return max((spent + reserved) / limit.amount for limit, spent, reserved, _ in used)


# ---------------------------------------------------------------- administration


async def save_limit(
    budgets: Budgets,
    *,
    scope: str,
    scope_id: str,
    kind: str,
    period: str,
    amount: float,
    downgrade_model: str | None,
    budget_id: str | None = None,
) -> Limit:
    """Create (``budget_id`` None) or change a limit; the rules an admin's form
    meets: ``Invalid`` for a period that does not fit the kind, a downgrade on a
    rate limit, a scope without its id; ``Conflict`` for a second limit of the same
    kind and period on one scope; ``NotFound`` for an unknown id."""
    if scope not in SCOPES:
        raise Invalid(f"Unknown scope {scope!r}.", "invalid_scope")
    if kind not in KINDS:
        raise Invalid(f"Unknown limit kind {kind!r}.", "invalid_kind")
    if kind == "cost" and period not in PERIODS:
        raise Invalid("A budget's period is day, week, month or total.", "invalid_period")
    if kind != "cost" and period != RATE_PERIOD:
        raise Invalid("Requests and tokens are limited per minute.", "invalid_period")
    if kind != "cost" and downgrade_model:
        raise Invalid("Only a budget can answer with a cheaper model.", "invalid_downgrade")
    scope_id = "" if scope == "instance" else scope_id.strip()
    if scope != "instance" and not scope_id:
        raise Invalid(f"Say which {scope} the limit is for.", "invalid_scope")
    if amount < 0:
        raise Invalid("A limit cannot be negative.", "invalid_amount")
    now = datetime.now(UTC)
    async with budgets.db.session() as session:
        same = await session.scalar(
            select(Budget).where(
                Budget.scope == scope,
                Budget.scope_id == scope_id,
                Budget.kind == kind,
                Budget.period == period,
            )
        )
        if budget_id is None:
            if same is not None:
                raise Conflict("That scope already has this limit; edit it.", "budget_exists")
            row = Budget(scope=scope, scope_id=scope_id, kind=kind, period=period)
            session.add(row)
        else:
            found = await session.get(Budget, budget_id)
            if found is None:
                raise NotFound("budget")
            if same is not None and same.id != budget_id:
                raise Conflict("That scope already has this limit; edit it.", "budget_exists")
            row = found
            row.scope, row.scope_id, row.kind, row.period = scope, scope_id, kind, period
        row.amount = float(amount)
        row.downgrade_model = downgrade_model or None
        row.updated_at = now
        await session.commit()
        limit = Limit(
            row.id, row.scope, row.scope_id, row.kind, row.period, row.amount, row.downgrade_model
        )
    budgets.invalidate()
    return limit


async def delete_limit(budgets: Budgets, budget_id: str) -> None:
    async with budgets.db.session() as session:
        row = await session.get(Budget, budget_id)
        if row is None:
            raise NotFound("budget")
        await session.delete(row)
        await session.commit()
    budgets.invalidate()
