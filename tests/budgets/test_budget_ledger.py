"""The budget counters on a real database (SQLite and PostgreSQL): 200 reservations
at once against a budget worth ten cannot overspend, expired reservations are given
back, rate limits count requests and tokens per minute, a downgrade budget answers
instead of refusing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from parley.budgets.service import Budgets, Payer, Ticket, Verdict, save_limit
from parley.budgets.tables import BudgetCounter, BudgetReservation
from parley.errors import BudgetExceeded
from parley.storage import Database
from parley.storage.tables import User
from parley.usage.prices import PriceBook

ESTIMATE = 0.01  # one request's worst case


async def _user(db: Database, email: str = "a@example.com") -> str:
    async with db.session() as session:
        user = User(email=email, name="A", password_hash="x", role="user")
        session.add(user)
        await session.commit()
        return user.id


async def _budgets(db: Database, **kwargs: object) -> Budgets:
    return Budgets(db, PriceBook(db), **kwargs)  # type: ignore[arg-type]


async def _counter(db: Database) -> tuple[float, float]:
    async with db.session() as session:
        rows = (await session.scalars(select(BudgetCounter))).all()
    return sum(r.spent for r in rows), sum(r.reserved for r in rows)


async def test_200_at_once_spend_stops_within_one_estimate(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="cost",
        period="day",
        amount=10 * ESTIMATE,
        downgrade_model=None,
    )
    payer = Payer(user)

    async def one() -> bool:
        try:
            ticket = await budgets.reserve(payer, cost=ESTIMATE, tokens=100)
        except BudgetExceeded:
            return False
        assert isinstance(ticket, Ticket)
        await asyncio.sleep(0.01)  # the call runs
        budgets.settle_soon(ticket, ESTIMATE * 0.9, 90)  # cost a bit less than its worst case
        return True

    results = await asyncio.gather(*(one() for _ in range(200)))
    await budgets.drain()
    spent, reserved = await _counter(db)
    assert reserved == pytest.approx(0.0, abs=1e-9)
    # never more than the budget; the calls that were let through are what was spent
    assert spent <= 10 * ESTIMATE + 1e-9
    assert spent == pytest.approx(sum(results) * ESTIMATE * 0.9)
    # spending stopped within one request's estimate of the budget
    assert spent >= 10 * ESTIMATE - ESTIMATE - 1e-9
    assert 10 <= sum(results) <= 11


async def test_a_refusal_says_which_limit_what_is_left_and_when_it_resets(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db, currency="EUR")
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="cost",
        period="day",
        amount=1.0,
        downgrade_model=None,
    )
    ticket = await budgets.reserve(Payer(user), cost=0.7, tokens=10)
    assert isinstance(ticket, Ticket)
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.reserve(Payer(user), cost=0.5, tokens=10)
    err = refused.value
    assert err.code == "budget_exceeded"
    assert "daily budget of your account" in err.message
    assert "0.30 EUR left of 1.00 EUR" in err.message
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert err.details["resets_at"] == f"{tomorrow}T00:00:00+00:00"
    assert err.details["remaining"] == pytest.approx(0.3)
    assert err.details["limit"] == {"scope": "user", "kind": "cost", "period": "day", "amount": 1.0}


async def test_an_expired_reservation_is_given_back(db: Database) -> None:
    """A worker that died mid-call never settles: once the lease runs out the
    reservation no longer holds the budget."""
    user = await _user(db)
    crashed = await _budgets(db, lease_s=0.2)
    await save_limit(
        crashed,
        scope="user",
        scope_id=user,
        kind="cost",
        period="total",
        amount=1.0,
        downgrade_model=None,
    )
    assert isinstance(await crashed.reserve(Payer(user), cost=0.9, tokens=10), Ticket)
    other = await _budgets(db)  # another worker
    with pytest.raises(BudgetExceeded):
        await other.reserve(Payer(user), cost=0.5, tokens=10)
    await asyncio.sleep(0.3)
    ticket = await other.reserve(Payer(user), cost=0.5, tokens=10)  # swept, then reserved
    assert isinstance(ticket, Ticket)
    async with db.session() as session:
        left = (await session.scalars(select(BudgetReservation))).all()
    assert [r.id for r in left] == [ticket.id]
    assert await _counter(db) == (0.0, pytest.approx(0.5))


async def test_a_late_settle_after_the_sweep_still_charges_once(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db, lease_s=0.1)
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="cost",
        period="total",
        amount=1.0,
        downgrade_model=None,
    )
    ticket = await budgets.reserve(Payer(user), cost=0.6, tokens=10)
    assert isinstance(ticket, Ticket)
    await asyncio.sleep(0.2)
    from parley.budgets import ledger

    assert await ledger.sweep(db, datetime.now(UTC)) == 1
    budgets.settle_soon(ticket, 0.4, 10)
    await budgets.drain()
    assert await _counter(db) == (pytest.approx(0.4), pytest.approx(0.0))


async def test_rate_limits_count_requests_and_tokens_per_minute(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="requests",
        period="minute",
        amount=3,
        downgrade_model=None,
    )
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="tokens",
        period="minute",
        amount=1000,
        downgrade_model=None,
    )
    payer = Payer(user)
    for _ in range(3):
        ticket = await budgets.reserve(payer, cost=0.0, tokens=100)
        assert isinstance(ticket, Ticket)
        budgets.settle_soon(ticket, 0.0, 50)
    await budgets.drain()
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.reserve(payer, cost=0.0, tokens=100)
    assert refused.value.code == "rate_limited"
    assert "requests-per-minute limit of your account" in refused.value.message
    assert 1 <= int(refused.value.details["retry_after_s"]) <= 60  # type: ignore[call-overload]


async def test_tokens_per_minute_refuses_a_request_that_would_pass_it(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="key",
        scope_id="k1",
        kind="tokens",
        period="minute",
        amount=1000,
        downgrade_model=None,
    )
    payer = Payer(user, api_key_id="k1")
    assert isinstance(await budgets.reserve(payer, cost=0.0, tokens=800), Ticket)
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.reserve(payer, cost=0.0, tokens=300)
    assert "tokens-per-minute limit of this API key" in refused.value.message
    # another key is not bound by it
    assert await budgets.reserve(Payer(user, api_key_id="k2"), cost=0.0, tokens=300) is None


async def test_a_spent_budget_with_a_downgrade_model_names_it(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="cost",
        period="day",
        amount=0.5,
        downgrade_model="local/small",
    )
    payer = Payer(user)
    first = await budgets.reserve(payer, cost=0.4, tokens=10)
    assert isinstance(first, Ticket)
    verdict = await budgets.reserve(payer, cost=0.4, tokens=10)
    assert isinstance(verdict, Verdict)
    assert verdict.downgrade_model == "local/small"
    assert "daily budget of your account is spent" in verdict.notice.lower()
    # the cheaper model's call is charged to the spent budget without a check
    assert isinstance(
        await budgets.reserve(payer, cost=0.2, tokens=10, exempt=verdict.exempt), Ticket
    )


async def test_every_group_of_a_user_binds(db: Database) -> None:
    user = await _user(db)

    async def groups(user_id: str) -> list[str]:
        return ["g1", "g2"]

    budgets = await _budgets(db, groups=lambda: groups)
    await save_limit(
        budgets,
        scope="group",
        scope_id="g1",
        kind="cost",
        period="month",
        amount=10.0,
        downgrade_model=None,
    )
    await save_limit(
        budgets,
        scope="group",
        scope_id="g2",
        kind="cost",
        period="month",
        amount=0.1,
        downgrade_model=None,
    )
    payer = await budgets.payer(user)
    assert payer.groups == ("g1", "g2")
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.reserve(payer, cost=0.2, tokens=10)
    assert "monthly budget of your group" in refused.value.message
    spent, reserved = await _counter(db)
    assert (spent, reserved) == (0.0, 0.0)  # nothing reserved on g1 either: all or none


async def test_the_80_percent_warning(db: Database) -> None:
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="instance",
        scope_id="",
        kind="cost",
        period="week",
        amount=1.0,
        downgrade_model=None,
    )
    payer = Payer(user)
    ticket = await budgets.reserve(payer, cost=0.85, tokens=10)
    assert isinstance(ticket, Ticket) and ticket.warnings == []
    budgets.settle_soon(ticket, 0.85, 10)
    await budgets.drain()
    verdict, warnings = await budgets.preflight(payer)
    assert verdict is None
    assert warnings and warnings[0].startswith("85% of the weekly budget of this server is used")


async def test_overlapping_limits_at_once_stay_consistent(db: Database) -> None:
    """Two users in the same two groups, under the instance's budget, reserving at
    once: every reservation locks several shared counters; none fails, and each
    shared counter holds exactly what was settled on it."""
    alice, bob = await _user(db, "alice@example.com"), await _user(db, "bob@example.com")

    async def groups(user_id: str) -> list[str]:
        return ["g1", "g2"] if user_id == alice else ["g2", "g1"]

    budgets = await _budgets(db, groups=lambda: groups)
    for scope, scope_id in (("instance", ""), ("group", "g1"), ("group", "g2")):
        await save_limit(
            budgets,
            scope=scope,
            scope_id=scope_id,
            kind="cost",
            period="day",
            amount=100.0,
            downgrade_model=None,
        )
    for user in (alice, bob):
        await save_limit(
            budgets,
            scope="user",
            scope_id=user,
            kind="cost",
            period="day",
            amount=100.0,
            downgrade_model=None,
        )
    payers = [await budgets.payer(alice), await budgets.payer(bob)]

    async def one(i: int) -> None:
        ticket = await budgets.reserve(payers[i % 2], cost=0.01, tokens=1)
        assert isinstance(ticket, Ticket)
        budgets.settle_soon(ticket, 0.01, 1)

    await asyncio.gather(*(one(i) for i in range(100)))
    await budgets.drain()
    async with db.session() as session:
        rows = (await session.scalars(select(BudgetCounter))).all()
    by_limit = {r.budget_id: (round(r.spent, 6), round(r.reserved, 6)) for r in rows}
    assert sorted(by_limit.values()) == [(0.5, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 0.0), (1.0, 0.0)]


async def test_calls_that_end_together_settle_in_one_transaction(db: Database) -> None:
    """Settling is off the request's path and batched: fifty calls ending at once
    are one write, and each is charged exactly what it cost."""
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="cost",
        period="day",
        amount=100.0,
        downgrade_model=None,
    )
    tickets = [await budgets.reserve(Payer(user), cost=0.01, tokens=10) for _ in range(50)]
    settles: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "DELETE FROM budget_reservations" in statement:
            settles.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for ticket in tickets:
            assert isinstance(ticket, Ticket)
            budgets.settle_soon(ticket, 0.004, 4)
        await budgets.drain()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(settles) == 1
    spent, reserved = await _counter(db)
    assert spent == pytest.approx(50 * 0.004)
    assert reserved == pytest.approx(0.0, abs=1e-9)
    async with db.session() as session:
        assert (await session.scalars(select(BudgetReservation))).all() == []


async def test_a_burst_reserves_together_and_a_request_that_went_away_keeps_nothing(
    db: Database,
) -> None:
    """A worker's reservations queue on one lock; whoever holds it reserves for
    everyone queued, in one transaction, each still all or nothing. Requests
    cancelled while they wait hold nothing once the burst is over."""
    user = await _user(db)
    budgets = await _budgets(db)
    await save_limit(
        budgets,
        scope="user",
        scope_id=user,
        kind="cost",
        period="day",
        amount=30 * ESTIMATE,
        downgrade_model=None,
    )
    await budgets.reserve(Payer(user), cost=0.0, tokens=1)  # the counter exists
    writes: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        text = statement.strip()  # the first statement of each reservation's transaction
        if (
            (text.startswith("UPDATE budget_counters") and "RETURNING" in text)
            or text.startswith("WITH claim")
            or (text.startswith("SELECT budget_id") and "FOR UPDATE" in text)
        ):
            writes.append(text)

    async def one() -> Ticket | None:
        try:
            got = await budgets.reserve(Payer(user), cost=ESTIMATE, tokens=10)
        except BudgetExceeded:
            return None
        assert isinstance(got, Ticket)
        return got

    engines = {db.engine.sync_engine, db.direct.sync_engine}  # one on SQLite
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        tasks = [asyncio.create_task(one()) for _ in range(60)]
        await asyncio.sleep(0)
        for task in tasks[::3]:  # a third go away before they are answered
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        await budgets.drain()
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    kept = [t for t in done if isinstance(t, Ticket)]
    assert 1 <= len(kept) <= 30
    spent, reserved = await _counter(db)
    assert spent == pytest.approx(0.0, abs=1e-9)
    assert reserved == pytest.approx(len(kept) * ESTIMATE)  # the cancelled hold nothing
    assert 1 <= len(writes) < 20, writes  # 40 requests, far fewer transactions
    for ticket in kept:
        budgets.settle_soon(ticket, ESTIMATE, 10)
    await budgets.drain()
    assert await _counter(db) == pytest.approx((len(kept) * ESTIMATE, 0.0))
