"""The ``jobs`` table: one row per piece of background work (``parley.jobs``).

A job is ``queued`` (waiting, maybe until ``run_after`` for a retry's backoff),
``running`` (a worker holds it until ``lease_until``; a lease that runs out
means the worker died and the job is claimed again), ``done``, or ``dead``
(out of attempts: kept for an admin to retry or discard). ``active_key`` is
``<kind>:<key>`` while the job is queued or running and NULL after: a unique
index on it makes enqueueing the same work twice a no-op. A done job keeps no
payload (it can hold a user's words), and a deleted account's jobs are deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

STATES = ("queued", "running", "done", "dead")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_after", "state", "run_after"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    # whose work (admin view only); a deleted account's jobs go with it, payload and all
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
