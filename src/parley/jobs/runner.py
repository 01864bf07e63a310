"""``Jobs``: handlers by kind, and the loop that claims and runs them.

Features register a handler per kind at start (``jobs.handle("knowledge.ingest",
fn, concurrency=2)``) and enqueue work (``await jobs.enqueue(kind, payload,
key=...)``). Every process that starts the features registers the same
handlers; whether it also *runs* jobs is the ``jobs_in_server`` setting (the
web server does by default) or being a ``parley worker``. So with several
hosts, a web server may enqueue and only the workers run.

The loop claims jobs while it has room (``jobs_concurrency`` in all, each
kind at most its own ``concurrency``), runs each in a task, and sleeps until
woken by a local enqueue or ``jobs_poll_s`` (work enqueued by another
process). A heartbeat extends the leases it holds every third of
``jobs_lease_s``; a job whose lease it lost (a stall longer than the lease,
another worker took it) is cancelled here, so one job never runs in two
places for long. Handlers must be idempotent: a job is run again after a
crash, from the start.

Stopping (graceful shutdown) claims nothing more, lets running jobs finish for
up to ``grace_s``, then cancels the rest and hands them back queued (the
attempt not counted), for another worker or the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from parley.jobs.queue import Claimed, JobQueue
from parley.storage.db import Database
from parley.storage.tables import new_id

__all__ = ["Handler", "Jobs", "Permanent"]

log = logging.getLogger(__name__)

Handler = Callable[[Claimed], Awaitable[Any]]
PURGE_EVERY_S = 3600.0
KEEP_DONE = timedelta(days=1)


async def _finish(task: asyncio.Task[None] | None, limit_s: float = 30.0) -> None:
    """Wait for a task asked to stop (cancelled only if it does not within the limit)."""
    if task is None:
        return
    done, _ = await asyncio.wait({task}, timeout=limit_s)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class Permanent(Exception):
    """Raised by a handler: this job can never succeed; dead at once, no retries."""


@dataclass(slots=True)
class _Kind:
    handler: Handler
    concurrency: int
    max_attempts: int


class Jobs:
    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 4,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 300.0,
        worker: str | None = None,
    ) -> None:
        self.queue = JobQueue(
            db, lease_s=lease_s, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s
        )
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.worker = worker or f"{socket.gethostname()[:30]}:{os.getpid()}:{new_id()[:6]}"
        self._kinds: dict[str, _Kind] = {}
        self._running: dict[str, tuple[Claimed, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._finished: list[tuple[Claimed, asyncio.Future[None]]] = []
        self._completing: set[str] = set()  # finished, being marked done
        self._expired_at = 0.0  # when to look for jobs whose lease ran out next
        self._finish_wake = asyncio.Event()
        self._finish_task: asyncio.Task[None] | None = None
        self.ran: Counter[str] = Counter()  # jobs this process finished, by kind (tests, bench)

    # ------------------------------------------------------------ registration

    def handle(
        self, kind: str, handler: Handler, *, concurrency: int | None = None, max_attempts: int = 5
    ) -> None:
        """Run ``handler`` for jobs of ``kind`` (at most ``concurrency`` at once here)."""
        self._kinds[kind] = _Kind(handler, concurrency or self.concurrency, max_attempts)

    def unhandle(self, kind: str) -> None:
        self._kinds.pop(kind, None)

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        user_id: str | None = None,
        delay_s: float = 0.0,
    ) -> str | None:
        """Queue work (see ``JobQueue.enqueue``) and wake this process's loop."""
        spec = self._kinds.get(kind)
        job_id = await self.queue.enqueue(
            kind,
            payload,
            key=key,
            user_id=user_id,
            max_attempts=spec.max_attempts if spec else 5,
            delay_s=delay_s,
        )
        self._wake.set()
        return job_id

    async def run_here(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        key: str | None = None,
        user_id: str | None = None,
    ) -> Any:
        """Queue a job and run it now in this process, returning its handler's result.

        For work whose result this process wants at once (an after-turn hook's late
        event on a stream only this worker holds) and that must not be lost if the
        process dies: the job is durable from the start, so a worker killed midway
        leaves it to another (which runs it without anyone waiting for the result).
        None when the same work is already queued or running, another worker took
        it first, or it failed (then it is retried elsewhere after its backoff)."""
        spec = self._kinds.get(kind)
        if spec is None:
            raise KeyError(f"no handler for {kind!r}")
        job_id = await self.queue.enqueue(
            kind, payload, key=key, user_id=user_id, max_attempts=spec.max_attempts
        )
        if job_id is None:
            return None
        job = await self.queue.claim_id(job_id, self.worker)
        if job is None:
            return None
        ended = asyncio.Event()
        renewing = asyncio.create_task(self._renew_one(job.id, ended), name=f"job-lease-{job.id}")
        try:
            result = await spec.handler(job)
        except Permanent as exc:
            await self._record_failure(job, str(exc) or type(exc).__name__, permanent=True)
            return None
        except Exception as exc:
            log.warning("job %s (%s) failed here: %r", job.id, job.kind, exc)
            await self._record_failure(job, f"{type(exc).__name__}: {exc}")
            return None
        finally:
            ended.set()  # it ends at its next wait: never cancelled mid-statement (see stop)
            await _finish(renewing)
        self.ran[job.kind] += 1
        with contextlib.suppress(Exception):
            await self.queue.complete(job)
        return result

    async def _renew_one(self, job_id: str, ended: asyncio.Event) -> None:
        every = max(0.05, self.queue.lease_s / 3)
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), every)
            if ended.is_set():
                return
            with contextlib.suppress(Exception):
                await self.queue.renew(self.worker, [job_id])

    def wake(self) -> None:
        """Look for jobs now (an admin queued one again)."""
        self._wake.set()

    # ------------------------------------------------------------ the loop

    @property
    def running(self) -> bool:
        return self._loop_task is not None

    def start(self) -> None:
        """Start claiming and running jobs in this process."""
        if self._loop_task is not None:
            return
        self._stopping = False
        self._stop_event.clear()
        self._loop_task = asyncio.create_task(self._loop(), name="parley-jobs")
        self._beat_task = asyncio.create_task(self._heartbeat(), name="parley-jobs-lease")
        self._finish_task = asyncio.create_task(self._completer(), name="parley-jobs-done")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Claim nothing more; let running jobs finish for ``grace_s``, hand the rest back.

        The loop, the heartbeat and the completer are asked to stop and end at their
        next wait, never cancelled in the middle of a statement: a claim or a lease
        renewal cut between its UPDATE and its COMMIT would leave rows locked on
        PostgreSQL until the connection closed, and handing the jobs back would wait
        on them."""
        self._stopping = True
        self._wake.set()
        self._stop_event.set()
        await _finish(self._loop_task)
        self._loop_task = None
        tasks = [task for _, task in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for job, task in list(self._running.values()):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                with contextlib.suppress(Exception):  # bounded: shutdown never hangs here
                    await asyncio.wait_for(self.queue.release(job), 5.0)
        self._running.clear()
        self._finish_wake.set()
        await _finish(self._finish_task)
        self._finish_task = None
        await _finish(self._beat_task)
        self._beat_task = None

    async def _loop(self) -> None:
        purge_at = 0.0
        loop = asyncio.get_running_loop()
        batch = max(1, self.concurrency // 4)
        woken = False
        while not self._stopping:
            room = self.concurrency - len(self._running)
            claimed = 0
            # After a wake-up (a job finished here), claim once a few slots are free:
            # fewer, larger claims than one per finished job. A poll tick claims for
            # any free slot.
            if room >= batch or (room > 0 and not woken):
                try:
                    claimed = await self._claim_some()
                    if loop.time() >= purge_at:
                        purge_at = loop.time() + PURGE_EVERY_S
                        await self.queue.purge_done(KEEP_DONE)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("claiming jobs failed")
            if claimed and self.concurrency - len(self._running) >= batch:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
                woken = True
            except TimeoutError:
                woken = False

    async def _claim_some(self) -> int:
        busy = Counter(job.kind for job, _ in self._running.values())
        total = 0
        # jobs whose worker died are looked for every third of a lease, not every claim
        now = asyncio.get_running_loop().time()
        expired = now >= self._expired_at
        if expired:
            self._expired_at = now + self.queue.lease_s / 3
        for kind, spec in list(self._kinds.items()):
            room = min(spec.concurrency - busy[kind], self.concurrency - len(self._running))
            if room <= 0:
                continue
            for job in await self.queue.claim([kind], self.worker, room, expired=expired):
                task = asyncio.create_task(self._run(job), name=f"job-{job.kind}-{job.id}")
                self._running[job.id] = (job, task)
                total += 1
        return total

    async def _run(self, job: Claimed) -> None:
        spec = self._kinds.get(job.kind)
        try:
            if spec is None:
                raise Permanent(f"no handler for {job.kind!r}")
            await spec.handler(job)
        except asyncio.CancelledError:
            # Stopping hands it back (stop()); a lost lease leaves it to its new holder.
            raise
        except Permanent as exc:
            log.warning("job %s (%s) cannot succeed: %s", job.id, job.kind, exc)
            await self._record_failure(job, str(exc) or type(exc).__name__, permanent=True)
        except Exception as exc:
            log.warning("job %s (%s) attempt %d failed: %r", job.id, job.kind, job.attempt, exc)
            await self._record_failure(job, f"{type(exc).__name__}: {exc}")
        else:
            self.ran[job.kind] += 1
            self._completing.add(job.id)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._finished.append((job, done))
            self._finish_wake.set()
            with contextlib.suppress(Exception):
                await done
        finally:
            self._completing.discard(job.id)
            if not self._stopping:
                self._running.pop(job.id, None)
                self._wake.set()

    async def _completer(self) -> None:
        """Mark finished jobs done, every job that finished while the previous commit
        was in flight in one transaction (a commit per job would cap the rate)."""
        while True:
            await self._finish_wake.wait()
            self._finish_wake.clear()
            batch, self._finished = self._finished, []
            if not batch:
                if self._stopping:
                    return
                continue
            try:
                await self.queue.complete_many([job for job, _ in batch])
            except Exception:
                log.exception("marking %d job(s) done failed (they will run again)", len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _record_failure(self, job: Claimed, error: str, *, permanent: bool = False) -> None:
        try:
            await self.queue.fail(job, error, permanent=permanent)
        except Exception:
            log.exception("recording the failure of job %s failed", job.id)

    async def _heartbeat(self) -> None:
        every = max(0.05, self.queue.lease_s / 3)
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), every)
            if self._stopping:
                return
            held_ids = list(self._running)
            if not held_ids:
                continue
            try:
                held = await self.queue.renew(self.worker, held_ids)
            except Exception:
                log.exception("renewing job leases failed")
                continue
            for job_id in held_ids:
                if (
                    job_id not in held
                    and job_id in self._running
                    and job_id not in self._completing
                ):
                    job, task = self._running.pop(job_id)
                    log.warning("lost the lease of job %s (%s): cancelled here", job_id, job.kind)
                    task.cancel()

    # ------------------------------------------------------------ tests and benchmarks

    async def drain(self, kinds: list[str] | None = None, limit_s: float = 60.0) -> None:
        """Until no job (of ``kinds``) is queued or running, anywhere."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while await self.queue.pending(kinds):
            if loop.time() > deadline:
                raise TimeoutError("jobs still pending")
            self._wake.set()
            await asyncio.sleep(0.05)
