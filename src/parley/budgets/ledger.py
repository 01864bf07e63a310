"""Reserving, settling and sweeping: the budget counters' arithmetic, in SQL.

A call reserves its worst case against every limit that applies, in ONE
transaction: per limit, the period's counter row is created if missing
(``INSERT ... ON CONFLICT DO NOTHING``), then

    UPDATE budget_counters SET reserved = reserved + :x
    WHERE budget_id = :b AND window = :w AND spent + reserved + :x <= :limit
    RETURNING spent, reserved

No row back means the limit would be passed: the transaction rolls back and
nothing is reserved anywhere. Why a conditional ``UPDATE`` and not ``SELECT ...
FOR UPDATE``: it is one statement on both databases. On PostgreSQL a concurrent
``UPDATE`` of the same row waits for the first to commit and then re-checks its
``WHERE`` against the committed row (read committed), so two workers cannot both
pass the check on stale numbers; ``FOR UPDATE`` would need a read, a check in
Python and a write (three round trips holding the lock), and SQLite has no
``FOR UPDATE`` at all. On SQLite the first write of a transaction takes the
database's write lock, so reservations are serialized outright (others wait up
to the busy timeout). Counters are updated in budget id order, so two
transactions touching the same limits never wait on each other in a cycle.

Settling deletes the call's reservation rows (``DELETE ... RETURNING``: whoever
deletes a row, the settle or the sweep, gives its amount back, exactly once)
and adds the actual amount to ``spent`` of the window it reserved in. A worker
that died mid-call never settles; its rows pass their ``expires_at`` and
``sweep`` gives them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, insert, or_, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from parley.budgets.tables import BudgetCounter, BudgetReservation
from parley.storage.db import Database

__all__ = ["Claim", "Taken", "add_spent", "reserve", "settle", "sweep"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One limit's share of a call: ``amount`` against ``limit`` in ``window``;
    ``check`` false adds it without checking (a downgraded call, after-turn work)."""

    budget_id: str
    window: str
    amount: float
    limit: float
    check: bool = True


@dataclass(frozen=True, slots=True)
class Taken:
    """A claim's counter after it was taken (``spent``, ``reserved``), or the
    counter that refused it (``refused``: its numbers before the call)."""

    claim: Claim
    spent: float
    reserved: float
    refused: bool = False


def _insert(db: Database) -> object:
    return postgresql.insert if db.dialect == "postgresql" else sqlite.insert


async def _ensure_counters(session: AsyncSession, db: Database, claims: Sequence[Claim]) -> None:
    insert = _insert(db)
    rows = [
        {"budget_id": c.budget_id, "window": c.window, "spent": 0.0, "reserved": 0.0}
        for c in claims
    ]
    stmt = insert(BudgetCounter).values(rows).on_conflict_do_nothing()  # type: ignore[operator]
    await session.execute(stmt)


async def reserve(
    db: Database,
    reservation_id: str,
    claims: Sequence[Claim],
    expires_at: datetime,
    known: set[tuple[str, str]] | None = None,
) -> tuple[bool, list[Taken]]:
    """Take every claim or none (see the module). (True, what each counter holds now)
    or (False, the counters that refused, with their numbers). ``known``: counters
    this process has seen exist (their ``INSERT`` is skipped; one round trip less).

    All the claims are one ``UPDATE`` (each row's own condition, checked per row by
    both databases as above): the rows that come back are those with room; fewer
    than the claims and the transaction rolls back."""
    ordered = sorted(claims, key=lambda c: c.budget_id)
    by_id = {c.budget_id: c for c in ordered}
    amount = case({c.budget_id: c.amount for c in ordered}, value=BudgetCounter.budget_id)
    limit = case({c.budget_id: c.limit for c in ordered}, value=BudgetCounter.budget_id)
    unchecked = [c.budget_id for c in ordered if not c.check]
    room = BudgetCounter.spent + BudgetCounter.reserved + amount <= limit + 1e-9
    stmt = (
        update(BudgetCounter)
        .where(
            tuple_(BudgetCounter.budget_id, BudgetCounter.window).in_(
                [(c.budget_id, c.window) for c in ordered]
            ),
            or_(room, BudgetCounter.budget_id.in_(unchecked)) if unchecked else room,
        )
        .values(reserved=BudgetCounter.reserved + amount)
        .returning(BudgetCounter.budget_id, BudgetCounter.spent, BudgetCounter.reserved)
        .execution_options(synchronize_session=False)
    )
    async with db.session() as session:
        if known is None or any((c.budget_id, c.window) not in known for c in ordered):
            await _ensure_counters(session, db, ordered)
        if db.dialect == "postgresql":
            rows = await _one_by_one(session, ordered)
        else:  # one writer at a time: one statement for every limit
            rows = list((await session.execute(stmt)).all())
        if len(rows) < len(ordered):
            await session.rollback()
            got = {row[0] for row in rows}
            refused = [Taken(c, 0.0, 0.0, refused=True) for c in ordered if c.budget_id not in got]
            return False, await _numbers(db, refused)
        await session.execute(
            insert(BudgetReservation),
            [
                {
                    "id": reservation_id,
                    "budget_id": c.budget_id,
                    "window": c.window,
                    "amount": c.amount,
                    "expires_at": expires_at,
                }
                for c in ordered
            ],
        )
        await session.commit()
    if known is not None:
        if len(known) > 10_000:  # old windows: forget them all, they are re-learned
            known.clear()
        known.update((c.budget_id, c.window) for c in ordered)
    return True, [Taken(by_id[row[0]], float(row[1]), float(row[2])) for row in rows]


async def _one_by_one(session: AsyncSession, ordered: Sequence[Claim]) -> list[Any]:
    """PostgreSQL: one conditional ``UPDATE`` per limit, in budget id order. A single
    statement over several rows locks them in whatever order its plan reads them, and
    two reservations (or a reservation and a settle) sharing two counters then
    deadlock (seen: 100 reservations at once over five shared counters); in one
    global order they cannot."""
    rows = []
    for claim in ordered:
        where = [BudgetCounter.budget_id == claim.budget_id, BudgetCounter.window == claim.window]
        if claim.check:
            where.append(
                BudgetCounter.spent + BudgetCounter.reserved + claim.amount <= claim.limit + 1e-9
            )
        row = (
            await session.execute(
                update(BudgetCounter)
                .where(*where)
                .values(reserved=BudgetCounter.reserved + claim.amount)
                .returning(BudgetCounter.budget_id, BudgetCounter.spent, BudgetCounter.reserved)
            )
        ).first()
        if row is None:
            break  # refused: the caller rolls back (the rest need not be tried)
        rows.append(row)
    return rows


async def _numbers(db: Database, refused: list[Taken]) -> list[Taken]:
    """The refusing counters' numbers as they stand (for "how much is left")."""
    out = []
    async with db.session() as session:
        for t in refused:
            row = await session.get(BudgetCounter, (t.claim.budget_id, t.claim.window))
            spent, reserved = (row.spent, row.reserved) if row is not None else (0.0, 0.0)
            out.append(Taken(t.claim, spent, reserved, refused=True))
    return out


async def _release(session: AsyncSession, rows: Sequence[tuple[str, str, float]]) -> None:
    for budget_id, window, amount in sorted(rows):
        await session.execute(
            update(BudgetCounter)
            .where(BudgetCounter.budget_id == budget_id, BudgetCounter.window == window)
            .values(reserved=BudgetCounter.reserved - amount)
        )


async def settle(
    db: Database, reservation_id: str, claims: Sequence[Claim], actual: dict[str, float]
) -> None:
    """End a call: its reservation given back (unless the sweep already did: a call
    longer than its lease) and ``actual[budget_id]`` added to ``spent`` in the window
    each claim reserved in. Two statements: the delete, one update."""
    ordered = sorted(claims, key=lambda c: c.budget_id)
    if not ordered:
        return
    async with db.session() as session:
        gone = (
            await session.execute(
                delete(BudgetReservation)
                .where(BudgetReservation.id == reservation_id)
                .returning(BudgetReservation.budget_id, BudgetReservation.amount)
            )
        ).all()
        held = {row[0]: float(row[1]) for row in gone}
        if db.dialect == "postgresql":  # row by row, in budget id order (``_one_by_one``)
            for c in ordered:
                await session.execute(
                    update(BudgetCounter)
                    .where(
                        BudgetCounter.budget_id == c.budget_id,
                        BudgetCounter.window == c.window,
                    )
                    .values(
                        reserved=BudgetCounter.reserved - held.get(c.budget_id, 0.0),
                        spent=BudgetCounter.spent + actual.get(c.budget_id, 0.0),
                    )
                )
            await session.commit()
            return
        ids = {c.budget_id: c for c in ordered}
        back = case({b: held.get(b, 0.0) for b in ids}, value=BudgetCounter.budget_id)
        spent = case({b: actual.get(b, 0.0) for b in ids}, value=BudgetCounter.budget_id)
        await session.execute(
            update(BudgetCounter)
            .where(
                tuple_(BudgetCounter.budget_id, BudgetCounter.window).in_(
                    [(c.budget_id, c.window) for c in ordered]
                )
            )
            .values(reserved=BudgetCounter.reserved - back, spent=BudgetCounter.spent + spent)
            .execution_options(synchronize_session=False)
        )
        await session.commit()


async def sweep(db: Database, now: datetime) -> int:
    """Give back the reservations whose lease ran out (a crashed worker's); returns
    how many rows were released."""
    async with db.session() as session:
        gone = (
            await session.execute(
                delete(BudgetReservation)
                .where(BudgetReservation.expires_at < now)
                .returning(
                    BudgetReservation.budget_id, BudgetReservation.window, BudgetReservation.amount
                )
            )
        ).all()
        if not gone:
            await session.rollback()
            return 0
        await _release(session, [(r[0], r[1], float(r[2])) for r in gone])
        await session.commit()
        return len(gone)


async def add_spent(db: Database, claims: Sequence[Claim]) -> None:
    """Count ``claims`` as spent without a reservation or a check: work that is
    charged but never refused (titles, memory extraction, summaries)."""
    if not claims:
        return
    ordered = sorted(claims, key=lambda c: c.budget_id)
    async with db.session() as session:
        await _ensure_counters(session, db, ordered)
        for claim in ordered:
            await session.execute(
                update(BudgetCounter)
                .where(
                    BudgetCounter.budget_id == claim.budget_id, BudgetCounter.window == claim.window
                )
                .values(spent=BudgetCounter.spent + claim.amount)
            )
        await session.commit()
