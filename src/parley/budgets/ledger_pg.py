"""PostgreSQL's reserve and settle: each ONE statement, run in autocommit.

A single statement is atomic on its own, so neither needs ``BEGIN`` and
``COMMIT`` (two round trips), and both run on ``Database.direct``, the pool
without a ping (a third): a reservation costs one round trip, however many
limits apply. ``parley.budgets.ledger`` has the rules; this module their SQL.

Locks: both statements lock the counters they touch first, in (budget id,
window) order (``ORDER BY`` before ``FOR UPDATE``: rows are locked as they
leave the sort), in a ``MATERIALIZED`` CTE that the rest of the statement reads
whole before it writes; so two reservations, or a reservation and a settle,
never wait on each other in a cycle (the sweep and ``add_spent`` update row by
row in the same order). A counter another transaction changed is re-read once
its lock is granted (read committed): the checks see committed numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.budgets.tables import BudgetCounter
from parley.storage.db import Database

__all__ = ["reserve_pg", "settle_pg"]

T = TypeVar("T")

# ``verdict``: every claim's counter exists and each checked one has room. Only
# then does ``taken`` add to them and ``held`` write the reservation's rows;
# otherwise the counters come back as they stand (what is left, for the refusal).
_RESERVE = text(
    """
WITH claim AS (
    SELECT * FROM unnest(
        CAST(:ids AS varchar[]), CAST(:windows AS varchar[]), CAST(:amounts AS float8[]),
        CAST(:limits AS float8[]), CAST(:checks AS boolean[])
    ) AS c(budget_id, win, amount, lim, chk)
), locked AS MATERIALIZED (
    SELECT bc.budget_id, bc."window", bc.spent, bc.reserved, claim.amount, claim.lim, claim.chk
    FROM budget_counters AS bc
    JOIN claim ON bc.budget_id = claim.budget_id AND bc."window" = claim.win
    ORDER BY bc.budget_id, bc."window"
    FOR UPDATE OF bc
), verdict AS MATERIALIZED (
    SELECT count(*) = CAST(:n AS integer) AND coalesce(
        bool_and(NOT chk OR spent + reserved + amount <= lim + 1e-9), true
    ) AS ok FROM locked
), taken AS (
    UPDATE budget_counters AS bc SET reserved = bc.reserved + l.amount
    FROM locked AS l, verdict AS v
    WHERE v.ok AND bc.budget_id = l.budget_id AND bc."window" = l."window"
    RETURNING bc.budget_id, bc.spent, bc.reserved
), held AS (
    INSERT INTO budget_reservations (id, budget_id, "window", amount, expires_at)
    SELECT CAST(:rid AS varchar), l.budget_id, l."window", l.amount,
        CAST(:expires AS timestamptz)
    FROM locked AS l, verdict AS v WHERE v.ok
)
SELECT true AS took, budget_id, spent, reserved FROM taken
UNION ALL
SELECT false, budget_id, spent, reserved FROM locked WHERE NOT (SELECT ok FROM verdict)
"""
)

# Settles many calls at once: their reservation rows deleted (``gone``: whoever
# deletes a row, this or the sweep, gives its amount back, exactly once), their
# actual amounts added to ``spent``, summed per counter.
_SETTLE = text(
    """
WITH gone AS (
    DELETE FROM budget_reservations WHERE id = ANY(CAST(:rids AS varchar[]))
    RETURNING budget_id, "window", amount
), back AS (
    SELECT budget_id, "window" AS win, sum(amount) AS amount FROM gone GROUP BY 1, 2
), charge AS (
    SELECT budget_id, win, sum(actual) AS actual FROM unnest(
        CAST(:ids AS varchar[]), CAST(:windows AS varchar[]), CAST(:actual AS float8[])
    ) AS c(budget_id, win, actual) GROUP BY 1, 2
), locked AS MATERIALIZED (
    SELECT bc.budget_id, bc."window", charge.actual
    FROM budget_counters AS bc
    JOIN charge ON bc.budget_id = charge.budget_id AND bc."window" = charge.win
    ORDER BY bc.budget_id, bc."window"
    FOR UPDATE OF bc
)
UPDATE budget_counters AS bc
SET reserved = bc.reserved - coalesce(back.amount, 0), spent = bc.spent + l.actual
FROM locked AS l LEFT JOIN back ON back.budget_id = l.budget_id AND back.win = l."window"
WHERE bc.budget_id = l.budget_id AND bc."window" = l."window"
"""
)


async def _once_more(db: Database, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` on an autocommit connection of ``db.direct``; again on a fresh one
    when the first was dropped (a restarted server: the pool pings nothing). Safe for
    a reservation: had the first run reserved, the second fails on its rows' key."""
    for attempt in (1, 2):
        try:
            async with db.direct.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await work(conn)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


async def reserve_pg(
    db: Database,
    reservation_id: str,
    ordered: Sequence[Any],
    expires_at: datetime,
    create: bool,
) -> list[tuple[bool, str, float, float]]:
    """Run ``_RESERVE`` for the claims (``create``: their counters made first).
    Rows ``(took, budget_id, spent, reserved)``: all ``took`` when reserved; else
    the counters as they stand (a missing one is absent)."""
    params = {
        "ids": [c.budget_id for c in ordered],
        "windows": [c.window for c in ordered],
        "amounts": [float(c.amount) for c in ordered],
        "limits": [float(c.limit) for c in ordered],
        "checks": [bool(c.check) for c in ordered],
        "n": len(ordered),
        "rid": reservation_id,
        "expires": expires_at,
    }

    async def work(conn: AsyncConnection) -> list[tuple[bool, str, float, float]]:
        if create:
            rows = [
                {"budget_id": c.budget_id, "window": c.window, "spent": 0.0, "reserved": 0.0}
                for c in ordered
            ]
            await conn.execute(
                postgresql.insert(BudgetCounter).values(rows).on_conflict_do_nothing()
            )
        found = (await conn.execute(_RESERVE, params)).all()
        return [(bool(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in found]

    return await _once_more(db, work)


async def settle_pg(
    db: Database, items: Sequence[tuple[str, Sequence[Any], dict[str, float]]]
) -> None:
    """Settle ``(reservation id, claims, actual per budget id)`` items at once, on the
    pinged pool and never twice (a settle run again would charge again): it is off
    the request's path."""
    ids, windows, actual = [], [], []
    for _, claims, spent in items:
        for c in claims:
            ids.append(c.budget_id)
            windows.append(c.window)
            actual.append(float(spent.get(c.budget_id, 0.0)))
    params = {
        "rids": [rid for rid, _, _ in items],
        "ids": ids,
        "windows": windows,
        "actual": actual,
    }

    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(_SETTLE, params)
