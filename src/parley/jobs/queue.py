"""The job queue's SQL: enqueue, claim with a lease, finish, fail, and the admin's verbs.

Claiming is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`` on PostgreSQL, so any number of workers on any number of hosts
take disjoint jobs without waiting for each other; on SQLite (one process)
the same statement runs under SQLite's single writer lock. A job is claimable
when it is queued and its ``run_after`` has come, or when it is running and
its lease ran out (its worker died: ``kill -9``, a lost host). Every write
after the claim is *fenced* by the worker's id and the attempt number, so a
worker that lost its lease cannot finish or fail a job someone else now holds.

Backoff after a failure is ``backoff_base_s * 2**(attempt-1)`` (at most
``backoff_max_s``), half of it random so retries of a burst spread out. A job
out of attempts is ``dead``: kept, with its last error, for an admin to retry
or discard (Admin -> Jobs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from parley.jobs.tables import STATES, Job
from parley.storage.db import Database
from parley.storage.tables import new_id, utcnow

__all__ = ["Claimed", "JobQueue", "backoff_s"]

ERROR_CHARS = 2000


def backoff_s(attempt: int, base_s: float, max_s: float, *, jitter: float = 0.5) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, half random."""
    delay = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return delay * (1 - jitter) + delay * jitter * random.random()


@dataclass(slots=True)
class Claimed:
    """A job a worker holds: what to do (``kind``, ``payload``) and which attempt this is."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    user_id: str | None = None
    worker: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class JobQueue:
    def __init__(
        self,
        db: Database,
        *,
        lease_s: float = 60.0,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 300.0,
    ) -> None:
        self.db = db
        self.lease_s = lease_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s

    # ------------------------------------------------------------ producers

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        user_id: str | None = None,
        max_attempts: int = 5,
        delay_s: float = 0.0,
    ) -> str | None:
        """Add a job; its id, or None when a job with the same ``kind`` and ``key`` is
        already queued or running (the same work is never waiting twice)."""
        now = utcnow()
        job_id = new_id()
        row = Job(
            id=job_id,
            kind=kind,
            payload=payload or {},
            active_key=f"{kind}:{key}" if key is not None else None,
            user_id=user_id,
            state="queued",
            attempts=0,
            max_attempts=max_attempts,
            run_after=now + timedelta(seconds=delay_s),
            created_at=now,
            updated_at=now,
        )
        async with self.db.session() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None
        return job_id

    # ------------------------------------------------------------ workers

    async def claim(
        self, kinds: list[str], worker: str, limit: int, *, expired: bool = True
    ) -> list[Claimed]:
        """Take up to ``limit`` due jobs of ``kinds`` (queued ones, and with ``expired``
        running ones whose lease ran out) for ``worker``, with a fresh lease; each claim
        is one attempt. Without ``expired`` the query is a range of the (state,
        run_after) index: the hot path; expired leases are looked for less often."""
        if not kinds or limit <= 0:
            return []
        now = utcnow()
        queued = (Job.state == "queued") & (Job.run_after <= now)
        due = (
            select(Job.id)
            .where(
                Job.kind.in_(kinds),
                or_(queued, (Job.state == "running") & (Job.lease_until < now))
                if expired
                else queued,
            )
            .order_by(Job.run_after)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()))
            .values(
                state="running",
                attempts=Job.attempts + 1,
                lease_until=now + timedelta(seconds=self.lease_s),
                worker=worker,
                updated_at=now,
            )
            .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.user_id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session:
            rows = (await session.execute(claim)).all()
            await session.commit()
        claimed = [
            Claimed(r.id, r.kind, dict(r.payload or {}), r.attempts, r.max_attempts, r.user_id)
            for r in rows
        ]
        for job in claimed:
            job.worker = worker
        # A job whose worker died on its last attempt is claimed once more than it may
        # run: it goes to the dead letters instead.
        over = [job for job in claimed if job.attempt > job.max_attempts]
        for job in over:
            await self._dead(job, "its worker stopped (lease expired) on the last attempt")
        return [job for job in claimed if job.attempt <= job.max_attempts]

    async def claim_id(self, job_id: str, worker: str) -> Claimed | None:
        """Take one queued job by id (the process that queued it runs it at once:
        ``Jobs.run_here``); None when another worker was quicker."""
        now = utcnow()
        async with self.db.session() as session:
            row = (
                await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == "queued")
                    .values(
                        state="running",
                        attempts=Job.attempts + 1,
                        lease_until=now + timedelta(seconds=self.lease_s),
                        worker=worker,
                        updated_at=now,
                    )
                    .returning(
                        Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.user_id
                    )
                    .execution_options(synchronize_session=False)
                )
            ).first()
            await session.commit()
        if row is None:
            return None
        return Claimed(
            row.id,
            row.kind,
            dict(row.payload or {}),
            row.attempts,
            row.max_attempts,
            row.user_id,
            worker,
        )

    async def renew(self, worker: str, job_ids: list[str]) -> set[str]:
        """Extend the leases ``worker`` holds; the ids it still holds."""
        if not job_ids:
            return set()
        now = utcnow()
        async with self.db.session() as session:
            rows = await session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.worker == worker, Job.state == "running")
                .values(lease_until=now + timedelta(seconds=self.lease_s))
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
            held = {r.id for r in rows}
            await session.commit()
        return held

    def _fenced(self, job: Claimed) -> Any:
        return (
            (Job.id == job.id)
            & (Job.worker == job.worker)
            & (Job.attempts == job.attempt)
            & (Job.state == "running")
        )

    async def complete(self, job: Claimed) -> bool:
        """Mark a held job done; False when the worker no longer held it."""
        now = utcnow()
        async with self.db.session() as session:
            result = await session.execute(
                update(Job)
                .where(self._fenced(job))
                .values(
                    state="done",
                    payload={},  # a done job's input (a user's words) is not kept
                    active_key=None,
                    lease_until=None,
                    finished_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return getattr(result, "rowcount", 0) == 1

    async def complete_many(self, jobs: list[Claimed]) -> set[str]:
        """``complete`` for several held jobs in one transaction (a worker's finished
        jobs, batched while the previous commit was in flight); the ids marked done."""
        if not jobs:
            return set()
        now = utcnow()
        async with self.db.session() as session:
            rows = await session.execute(
                update(Job)
                .where(
                    tuple_(Job.id, Job.worker, Job.attempts).in_(
                        [(job.id, job.worker, job.attempt) for job in jobs]
                    ),
                    Job.state == "running",
                )
                .values(
                    state="done",
                    payload={},  # a done job's input (a user's words) is not kept
                    active_key=None,
                    lease_until=None,
                    finished_at=now,
                    updated_at=now,
                )
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
            done = {r.id for r in rows}
            await session.commit()
        return done

    async def fail(self, job: Claimed, error: str, *, permanent: bool = False) -> str:
        """Record a failed attempt: queued again after a backoff, or ``dead`` when it
        was the last (or ``permanent``). The job's new state."""
        if permanent or job.attempt >= job.max_attempts:
            await self._dead(job, error)
            return "dead"
        now = utcnow()
        wait = backoff_s(job.attempt, self.backoff_base_s, self.backoff_max_s)
        async with self.db.session() as session:
            await session.execute(
                update(Job)
                .where(self._fenced(job))
                .values(
                    state="queued",
                    lease_until=None,
                    worker=None,
                    run_after=now + timedelta(seconds=wait),
                    last_error=error[:ERROR_CHARS],
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return "queued"

    async def release(self, job: Claimed) -> None:
        """Hand a held job back unfinished (a worker shutting down): queued again at
        once, the attempt not counted."""
        now = utcnow()
        async with self.db.session() as session:
            await session.execute(
                update(Job)
                .where(self._fenced(job))
                .values(
                    state="queued",
                    attempts=Job.attempts - 1,
                    lease_until=None,
                    worker=None,
                    run_after=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def _dead(self, job: Claimed, error: str) -> None:
        now = utcnow()
        async with self.db.session() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.worker == job.worker, Job.attempts == job.attempt)
                .values(
                    state="dead",
                    active_key=None,
                    lease_until=None,
                    last_error=error[:ERROR_CHARS],
                    finished_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    # ------------------------------------------------------------ admins and housekeeping

    async def get(self, job_id: str) -> Job | None:
        async with self.db.session() as session:
            return await session.get(Job, job_id)

    async def recent(self, state: str | None = None, limit: int = 100) -> list[Job]:
        """Newest change first."""
        query = select(Job).order_by(Job.updated_at.desc(), Job.id).limit(limit)
        if state is not None:
            query = query.where(Job.state == state)
        async with self.db.session() as session:
            return list((await session.scalars(query)).all())

    async def counts(self) -> dict[str, int]:
        async with self.db.session() as session:
            rows = (
                await session.execute(select(Job.state, func.count()).group_by(Job.state))
            ).all()
        found = {state: int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in STATES}

    async def retry(self, job_id: str) -> Job | None:
        """Queue a dead (or waiting) job again now, with its attempts reset; None when
        there is no such job or it is running or done."""
        now = utcnow()
        async with self.db.session() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state.in_(("dead", "queued")))
                .values(
                    state="queued",
                    attempts=0,
                    run_after=now,
                    lease_until=None,
                    worker=None,
                    finished_at=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = await session.get(Job, job_id)  # as queued (a worker may claim it at once)
            await session.commit()
            return row

    async def discard(self, job_id: str) -> bool:
        """Delete a dead or waiting job (a running one is its worker's)."""
        async with self.db.session() as session:
            result = await session.execute(
                delete(Job).where(Job.id == job_id, Job.state.in_(("dead", "queued")))
            )
            await session.commit()
        return getattr(result, "rowcount", 0) == 1

    async def purge_done(self, older_than: timedelta) -> int:
        """Forget finished jobs older than ``older_than`` (dead ones stay for admins)."""
        cutoff: datetime = utcnow() - older_than
        async with self.db.session() as session:
            result = await session.execute(
                delete(Job).where(Job.state == "done", Job.finished_at < cutoff)
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending(self, kinds: list[str] | None = None) -> int:
        """Jobs queued or running (of ``kinds``): 0 when the queue is drained."""
        query = select(func.count()).select_from(Job).where(Job.state.in_(("queued", "running")))
        if kinds is not None:
            query = query.where(Job.kind.in_(kinds))
        async with self.db.session() as session:
            return int(await session.scalar(query) or 0)
