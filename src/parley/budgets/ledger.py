"""Reserving, settling and sweeping: the budget counters' arithmetic, in SQL.

A call reserves its worst case against every limit that applies, at once: per
limit, the period's counter row is created if missing (``INSERT ... ON CONFLICT
DO NOTHING``, skipped for counters this process has seen), then each counter
gets ``reserved + x`` only if ``spent + reserved + x <= limit``; if any has no
room, nothing is reserved anywhere. The call's reservation rows (one per limit)
are written with it. How each database makes that atomic:

- SQLite: one conditional ``UPDATE ... RETURNING`` over every counter (each row
  checks its own condition) and the reservation rows, in one transaction. Its
  first write takes the database's write lock, so reservations are serialized
  outright; fewer rows back than claims and it rolls back.
- PostgreSQL: one statement in autocommit (``parley.budgets.ledger_pg``): lock
  the counters in order, check them all, update them all and write the
  reservation rows, or only read them back. One round trip.

Several calls queued together in one worker (a burst) reserve in one transaction
instead (``reserve_many``): the counters locked and read once, each call decided
in order, all or nothing, then the counters and reservation rows written.

Settling deletes the calls' reservation rows (``DELETE ... RETURNING``: whoever
deletes a row, the settle or the sweep, gives its amount back, exactly once)
and adds the actual amounts to ``spent`` of the windows they reserved in; many
calls settle in one transaction (``settle``: the budgets service batches them
off the request's path). A worker that died mid-call never settles; its rows
pass their ``expires_at`` and ``sweep`` gives them back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from parley.budgets.ledger_pg import reserve_pg, settle_pg
from parley.budgets.tables import BudgetCounter, BudgetReservation
from parley.storage.db import Database
from parley.storage.tables import UTCDateTime

__all__ = [
    "Ask",
    "Claim",
    "Settlement",
    "Taken",
    "add_spent",
    "reserve",
    "reserve_many",
    "settle",
    "sweep",
]


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


async def _ensure_counters(
    conn: AsyncSession | AsyncConnection, db: Database, claims: Sequence[Claim]
) -> None:
    insert = _insert(db)
    rows = [
        {"budget_id": c.budget_id, "window": c.window, "spent": 0.0, "reserved": 0.0}
        for c in claims
    ]
    stmt = insert(BudgetCounter).values(rows).on_conflict_do_nothing()  # type: ignore[operator]
    await conn.execute(stmt)


def _unknown(known: set[tuple[str, str]] | None, ordered: Sequence[Claim]) -> bool:
    return known is None or any((c.budget_id, c.window) not in known for c in ordered)


def _learn(known: set[tuple[str, str]] | None, ordered: Sequence[Claim]) -> None:
    if known is not None:
        if len(known) > 10_000:  # old windows: forget them all, they are re-learned
            known.clear()
        known.update((c.budget_id, c.window) for c in ordered)


# SQLite: the claims travel as one JSON array of [budget id, window, amount, limit,
# check] (fixed statements: nothing to build or compile per call). Each counter row
# checks its own condition; the rows that come back are those with room.
_RESERVE_SQLITE = text(
    """
UPDATE budget_counters SET reserved = budget_counters.reserved + c.amount
FROM (
    SELECT json_extract(value, '$[0]') AS budget_id, json_extract(value, '$[1]') AS win,
        json_extract(value, '$[2]') AS amount, json_extract(value, '$[3]') AS lim,
        json_extract(value, '$[4]') AS chk
    FROM json_each(:claims)
) AS c
WHERE budget_counters.budget_id = c.budget_id AND budget_counters."window" = c.win
    AND (NOT c.chk OR budget_counters.spent + budget_counters.reserved + c.amount <= c.lim + 1e-9)
RETURNING budget_counters.budget_id, budget_counters.spent, budget_counters.reserved
"""
)
_HOLD_SQLITE = text(
    """
INSERT INTO budget_reservations (id, budget_id, "window", amount, expires_at)
SELECT :rid, c.budget_id, c.win, c.amount, :expires FROM (
    SELECT json_extract(value, '$[0]') AS budget_id, json_extract(value, '$[1]') AS win,
        json_extract(value, '$[2]') AS amount, json_extract(value, '$[3]') AS lim,
        json_extract(value, '$[4]') AS chk
    FROM json_each(:claims)
) AS c
"""
).bindparams(bindparam("expires", type_=UTCDateTime()))


async def reserve(
    db: Database,
    reservation_id: str,
    claims: Sequence[Claim],
    expires_at: datetime,
    known: set[tuple[str, str]] | None = None,
) -> tuple[bool, list[Taken]]:
    """Take every claim or none (see the module). (True, what each counter holds now)
    or (False, the counters that refused, with their numbers). ``known``: counters
    this process has seen exist (their ``INSERT`` is skipped; one round trip less)."""
    ordered = sorted(claims, key=lambda c: (c.budget_id, c.window))
    by_id = {c.budget_id: c for c in ordered}
    if db.dialect == "postgresql":
        rows = await reserve_pg(db, reservation_id, ordered, expires_at, _unknown(known, ordered))
        if rows and rows[0][0]:
            _learn(known, ordered)
            return True, [Taken(by_id[b], spent, reserved) for _, b, spent, reserved in rows]
        seen = {b: (spent, reserved) for _, b, spent, reserved in rows}
        refused = []
        for c in ordered:
            spent, reserved = seen.get(c.budget_id, (0.0, 0.0))
            if c.budget_id not in seen or (
                c.check and spent + reserved + c.amount > c.limit + 1e-9
            ):
                refused.append(Taken(c, spent, reserved, refused=True))
        return False, refused
    params = {
        "claims": json.dumps(
            [[c.budget_id, c.window, c.amount, c.limit, c.check] for c in ordered]
        ),
        "rid": reservation_id,
        "expires": expires_at,
    }
    async with db.engine.connect() as conn:  # Core, not a Session: less work per call
        if _unknown(known, ordered):
            await _ensure_counters(conn, db, ordered)
        found = list((await conn.execute(_RESERVE_SQLITE, params)).all())
        if len(found) < len(ordered):
            await conn.rollback()
            got = {row[0] for row in found}
            refused = [Taken(c, 0.0, 0.0, refused=True) for c in ordered if c.budget_id not in got]
            return False, await _numbers(db, refused)
        await conn.execute(_HOLD_SQLITE, params)
        await conn.commit()
    _learn(known, ordered)
    return True, [Taken(by_id[row[0]], float(row[1]), float(row[2])) for row in found]


Ask = tuple[str, Sequence[Claim], datetime]  # (reservation id, claims, lease's end)

# SQLite, many reservations in one transaction: this no-op write takes the database's
# write lock and reads the counters, which then cannot change until the commit.
_LOCK_AND_READ = text(
    """
UPDATE budget_counters SET reserved = reserved
WHERE (budget_id, "window") IN (
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:keys)
)
RETURNING budget_id, "window", spent, reserved
"""
)
# PostgreSQL: the same read under row locks, taken in (budget id, window) order like
# every other writer of the counters (``ledger_pg``).
_LOCK_AND_READ_PG = text(
    """
SELECT budget_id, "window", spent, reserved FROM budget_counters
WHERE (budget_id, "window") IN (
    SELECT * FROM unnest(CAST(:ids AS varchar[]), CAST(:windows AS varchar[]))
)
ORDER BY budget_id, "window"
FOR UPDATE
"""
)
_ADD_RESERVED = (
    update(BudgetCounter)
    .where(BudgetCounter.budget_id == bindparam("b_id"), BudgetCounter.window == bindparam("b_win"))
    .values(reserved=BudgetCounter.reserved + bindparam("add"))
)


def _taken(c: Claim, now: dict[tuple[str, str], list[float]], refused: bool = False) -> Taken:
    spent, reserved = now.get((c.budget_id, c.window), (0.0, 0.0))
    return Taken(c, spent, reserved, refused)


async def reserve_many(
    db: Database, asks: Sequence[Ask], known: set[tuple[str, str]] | None = None
) -> list[tuple[bool, list[Taken]]]:
    """``reserve`` for several calls in ONE transaction (a burst queued in this
    worker), each still all or nothing, decided in order on the counters as the lock
    found them (SQLite: the database's write lock; PostgreSQL: the counters' row
    locks): four statements for any number of calls."""
    every = sorted(
        {(c.budget_id, c.window): c for _, claims, _ in asks for c in claims}.values(),
        key=lambda c: (c.budget_id, c.window),
    )
    keys = json.dumps([[c.budget_id, c.window] for c in every])
    out: list[tuple[bool, list[Taken]]] = []
    async with db.engine.connect() as conn:
        if _unknown(known, every):
            await _ensure_counters(conn, db, every)
        if db.dialect == "postgresql":
            pairs = {"ids": [c.budget_id for c in every], "windows": [c.window for c in every]}
            found = await conn.execute(_LOCK_AND_READ_PG, pairs)
        else:
            found = await conn.execute(_LOCK_AND_READ, {"keys": keys})
        now = {(b, w): [float(spent), float(reserved)] for b, w, spent, reserved in found}
        added: dict[tuple[str, str], float] = {}
        held = []
        for rid, claims, expires in asks:
            ordered = sorted(claims, key=lambda c: (c.budget_id, c.window))
            full = [
                c
                for c in ordered
                if (c.budget_id, c.window) not in now
                or (c.check and sum(now[c.budget_id, c.window]) + c.amount > c.limit + 1e-9)
            ]
            if full:
                out.append((False, [_taken(c, now, refused=True) for c in full]))
                continue
            for c in ordered:
                now[c.budget_id, c.window][1] += c.amount
                added[c.budget_id, c.window] = added.get((c.budget_id, c.window), 0.0) + c.amount
                held.append(
                    {
                        "id": rid,
                        "budget_id": c.budget_id,
                        "window": c.window,
                        "amount": c.amount,
                        "expires_at": expires,
                    }
                )
            out.append((True, [_taken(c, now) for c in ordered]))
        if held:
            await conn.execute(
                _ADD_RESERVED,
                [{"b_id": b, "b_win": w, "add": x} for (b, w), x in sorted(added.items())],
            )
            await conn.execute(insert(BudgetReservation), held)
        await conn.commit()
    _learn(known, every)
    return out


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


Settlement = tuple[str, Sequence[Claim], dict[str, float]]  # (reservation id, claims, actual)

_SETTLE_ONE = (
    update(BudgetCounter)
    .where(BudgetCounter.budget_id == bindparam("b_id"), BudgetCounter.window == bindparam("b_win"))
    .values(
        reserved=BudgetCounter.reserved - bindparam("back"),
        spent=BudgetCounter.spent + bindparam("add"),
    )
)


_GIVE_BACK = (
    delete(BudgetReservation)
    .where(BudgetReservation.id.in_(bindparam("rids", expanding=True)))
    .returning(BudgetReservation.budget_id, BudgetReservation.window, BudgetReservation.amount)
)


async def settle(db: Database, items: Sequence[Settlement]) -> None:
    """End calls: each reservation given back (unless the sweep already did: a call
    longer than its lease) and each ``actual[budget_id]`` added to ``spent`` in the
    window its claim reserved in; all of ``items`` in one transaction."""
    items = [item for item in items if item[1]]
    if not items:
        return
    if db.dialect == "postgresql":
        await settle_pg(db, items)
        return
    async with db.engine.connect() as conn:
        gone = (await conn.execute(_GIVE_BACK, {"rids": [rid for rid, _, _ in items]})).all()
        counters: dict[tuple[str, str], list[float]] = {}  # (back, add)
        for budget_id, window, amount in gone:
            counters.setdefault((budget_id, window), [0.0, 0.0])[0] += float(amount)
        for _, claims, actual in items:
            for c in claims:
                counters.setdefault((c.budget_id, c.window), [0.0, 0.0])[1] += actual.get(
                    c.budget_id, 0.0
                )
        await conn.execute(
            _SETTLE_ONE,
            [
                {"b_id": b, "b_win": w, "back": back, "add": add}
                for (b, w), (back, add) in sorted(counters.items())
            ],
        )
        await conn.commit()


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
