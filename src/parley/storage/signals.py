"""Stop requests in the database: how a Stop reaches a turn on another worker
when Redis is not configured, or is down.

A stop is one row (an increasing id, the key stopped: a conversation id or an
owner key, ``parley.turns.control.owner``). Every worker remembers the highest id
it has seen and polls for newer rows (one indexed range read; ``parley.turns.control``
says how often). Rows older than ``KEEP_S`` are deleted by whoever writes the next
one: a worker that was away longer than that has no running turn to stop anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, utcnow

KEEP_S = 600.0

__all__ = ["KEEP_S", "StopRequest", "add_stop", "newest_stop", "stops_after"]


class StopRequest(Base):
    """One Stop (or revocation), for the workers that poll."""

    __tablename__ = "stop_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


async def add_stop(session: AsyncSession, key: str) -> int:
    """Record a stop of ``key``; returns its id (sent along over Redis, so a worker
    that heard it there skips the row). The caller commits."""
    row = StopRequest(key=key)
    session.add(row)
    await session.flush()
    cutoff = utcnow() - timedelta(seconds=KEEP_S)
    await session.execute(delete(StopRequest).where(StopRequest.created_at < cutoff))
    return row.id


async def newest_stop(session: AsyncSession) -> int:
    """The highest id so far (a worker starting polls for rows after it)."""
    return int((await session.scalar(select(func.max(StopRequest.id)))) or 0)


async def stops_after(session: AsyncSession, last_id: int) -> list[tuple[int, str]]:
    """``(id, key)`` of the stops newer than ``last_id``, oldest first."""
    rows = await session.execute(
        select(StopRequest.id, StopRequest.key)
        .where(StopRequest.id > last_id)
        .order_by(StopRequest.id)
    )
    return [(int(i), str(k)) for i, k in rows.all()]
