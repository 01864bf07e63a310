"""Kernels per conversation: start on first use, keep warm, cap, reap, report.

One kernel per (user, conversation), so variables survive between the
model's calls; another conversation never shares it. A user has at most
``per_user`` kernels and the server at most ``total``: to make room the least
recently used idle kernel is shut down (its variables are lost; the next call
says so), and when every kernel is busy the call is refused with a message.

If the sandbox cannot be built (no bwrap, no kernel venv, a kernel that does
not start) the tool answers that code execution is unavailable and why; it
never falls back to running code without the sandbox.

Starting bwrap + ipykernel costs a few hundred ms (seconds on a loaded host),
and importing pandas and matplotlib more, so ``spares`` kernels are kept
started and warmed up (those modules imported, silently) but unclaimed; a new
conversation (or a session whose kernel died) adopts a ready one and another is
started in the background (one still warming up is left to finish). Spares are
built exactly like any kernel (same sandbox, same limits), count toward
``total``, belong to nobody until adopted, and are dropped first when room
is needed.

Each kernel gets a cgroup when the host offers one (``cgroups.py``): memory,
processes and CPU then count for the whole sandbox; ``cgroup_status`` says
when it does not and why. Outputs are kept within a quota per call and per
user, counted across files and images; what does not fit is never read
(``transfer.py`` moves files in and out; ``config.py`` holds the settings and
the check of the host's parts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parley.sandbox import files as sfiles
from parley.sandbox.bwrap import resolve_bwrap
from parley.sandbox.cgroups import CgroupSupport, detect
from parley.sandbox.config import SandboxConfig, config_from_settings, default_python, missing_parts
from parley.sandbox.outputs import Attachment
from parley.sandbox.transfer import (
    CallQuota,
    FilesSource,
    OutputSink,
    collect_files,
    reserve_quota,
    snapshot_of,
    sync_files,
)
from parley.sandbox.uids import UidBlock, UidBlockError

if TYPE_CHECKING:  # the kernel module needs the `sandbox` extra: imported when first used
    from parley.sandbox.kernel import Execution, Kernel

log = logging.getLogger(__name__)

__all__ = [
    "FilesSource",
    "OutputSink",
    "RunResult",
    "SandboxConfig",
    "SandboxManager",
    "config_from_settings",
    "default_python",
]


@dataclass(slots=True)
class RunResult:
    """One call's outcome, ready to render for the model and the web app."""

    execution: Execution | None = None
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: str = ""
    restarted: bool = False
    quota_note: str = ""  # what the output quota kept and dropped, when it dropped something


@dataclass(slots=True)
class _Session:
    key: tuple[str, str]
    slot: int
    kernel: Kernel | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    synced: dict[str, tuple[int, int]] = field(default_factory=dict)
    busy: bool = False
    lost_state: bool = False


@dataclass(slots=True)
class _Spare:
    slot: int
    task: asyncio.Task[Kernel]


class SandboxManager:
    def __init__(
        self,
        config: SandboxConfig,
        sink: OutputSink,
        files: FilesSource | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.files = files
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._lost: set[tuple[str, str]] = set()  # evicted or reaped: the next run says so
        self._guard = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self._spares: list[_Spare] = []
        self._spare_retry_at = 0.0
        self._killing: set[asyncio.Future[None]] = set()
        self._reserved: Counter[str] = Counter()  # output bytes reserved by running calls
        self._spare_failures = 0  # spares that failed in a row: the retry backs off
        self.start_error = ""  # why the last kernel failed to start ('' once one starts)
        self.on_status: Callable[[str], None] | None = None  # told when start_error changes
        # one block of host uids per worker process (used only when running as root)
        self._uids = UidBlock(config.host_uid_base, 2 * config.total + 1, config.uid_lock_dir)
        if config.cgroups:
            self.cgroups = detect()
            if self.cgroups.available:
                self.cgroups.sweep_stale()
        else:
            self.cgroups = CgroupSupport(reason="turned off (PARLEY_SANDBOX_CGROUPS=false)")

    # ------------------------------------------------------------ availability

    def unavailable_reason(self) -> str:
        """Why code cannot run here ('' when the sandbox's parts are in place)."""
        return missing_parts(self.config)

    def _start_failed(self, exc: BaseException) -> None:
        """A kernel did not start: said once per distinct reason, not at every retry."""
        reason = str(exc) or type(exc).__name__
        if reason != self.start_error:
            log.warning(
                "code interpreter: the sandbox cannot start a kernel, so code cannot run "
                "until one starts (retried in the background; said again only if the reason "
                "changes; `parley doctor` checks the sandbox): %s",
                reason,
            )
        else:
            log.debug("the sandbox still cannot start a kernel: %s", reason)
        changed = reason != self.start_error
        self.start_error = reason
        if changed and self.on_status is not None:
            self.on_status(reason)

    def _started(self) -> None:
        self._spare_failures = 0
        if self.start_error:
            log.warning("code interpreter: the sandbox starts kernels again")
            self.start_error = ""
            if self.on_status is not None:
                self.on_status("")

    async def probe(self, code: str = "1+1") -> tuple[str, str]:
        """Start a sandboxed kernel, run ``code``, stop it: ``(result, '')`` or
        ``('', why it failed)``. What ``parley doctor`` runs."""
        from parley.sandbox.kernel import SandboxStartError

        reason = self.unavailable_reason()
        if reason:
            return "", reason
        try:
            kernel = await self._start_kernel(2 * self.config.total)  # a slot no session uses
        except SandboxStartError as exc:
            return "", str(exc) or "the sandbox did not start"
        try:
            run = await kernel.execute(code, self.config.limits.wall_seconds)
        finally:
            await asyncio.shield(kernel.kill())
        if run.error or run.died or run.timed_out:
            return "", (run.error or run.died or "the code timed out").strip()
        return (run.result or run.stdout).strip(), ""

    def cgroup_status(self) -> str:
        """'' when each kernel gets a cgroup, else why not (per-process limits only)."""
        return "" if self.cgroups.available else self.cgroups.reason

    def host_uid(self, slot: int) -> int | None:
        """The unprivileged host uid of a kernel slot (None: not root, uid unchanged)."""
        return self._uids.uid(slot) if os.geteuid() == 0 else None

    # ------------------------------------------------------------ run

    async def run(self, user_id: str, conversation_id: str | None, code: str) -> RunResult:
        reason = self.unavailable_reason()
        if reason:
            return RunResult(unavailable=f"Code execution is unavailable: {reason}")
        key = (user_id, conversation_id or "")
        session, refusal = await self._claim(key)
        if session is None:
            return RunResult(unavailable=refusal)
        try:
            async with session.lock:
                return await self._run_in(session, user_id, conversation_id, code)
        finally:
            session.busy = False
            session.last_used = time.monotonic()

    async def _claim(self, key: tuple[str, str]) -> tuple[_Session | None, str]:
        async with self._guard:
            session = self._sessions.get(key)
            if session is None:
                victims: list[_Session] = []
                mine = [s for s in self._sessions.values() if s.key[0] == key[0]]
                if len(mine) >= self.config.per_user:
                    victim = _lru_idle(mine)
                    if victim is None:
                        return None, (
                            f"You already have {len(mine)} Python sessions running code; "
                            "wait for one to finish and try again."
                        )
                    victims.append(victim)
                ready = self._pop_ready()
                dropped: list[_Spare] = []
                # without a ready spare the new kernel needs room: spares go first
                while ready is None and (
                    len(self._sessions) - len(victims) + len(self._spares) >= self.config.total
                ):
                    if self._spares:
                        dropped.append(self._spares.pop())
                        continue
                    others = [s for s in self._sessions.values() if s not in victims]
                    victim = _lru_idle(others)
                    if victim is None:
                        return None, "The server is busy running code for others; try again soon."
                    victims.append(victim)
                for victim in victims:
                    self._sessions.pop(victim.key, None)
                slot, kernel = ready if ready is not None else (self._free_slot(), None)
                session = _Session(key, slot, kernel=kernel, lost_state=key in self._lost)
                self._lost.discard(key)
                self._sessions[key] = session
                for victim in victims:
                    self._lost.add(victim.key)
                    await self._shutdown(victim)
                for spare in dropped:
                    await self._discard(spare.task)
                self._refill()
            session.busy = True
            return session, ""

    # ------------------------------------------------------------ spares

    def _free_slot(self) -> int:
        used = {s.slot for s in self._sessions.values()} | {s.slot for s in self._spares}
        return next(i for i in range(len(used) + 1) if i not in used)

    def _pop_ready(self) -> tuple[int, Kernel] | None:
        """A started, live spare (its slot and kernel), taken out of the pool.

        One still starting is left to finish (its warm-up imports take longer
        than starting a kernel), so the caller starts its own."""
        for spare in self._spares:
            if spare.task.done() and _started_alive(spare.task):
                self._spares.remove(spare)
                return spare.slot, spare.task.result()
        return None

    def _refill(self) -> None:
        """Start spares up to the configured count while there is room (guard held)."""
        cfg = self.config
        if self._closed or cfg.spares <= 0 or time.monotonic() < self._spare_retry_at:
            return
        if self.unavailable_reason():
            return
        while len(self._spares) < min(cfg.spares, cfg.total - len(self._sessions)):
            slot = self._free_slot()
            task = asyncio.get_running_loop().create_task(self._start_spare(slot))
            task.add_done_callback(_retrieve)  # a failure is logged; takers see it too
            self._spares.append(_Spare(slot, task))

    async def _start_spare(self, slot: int) -> Kernel:
        from parley.sandbox.kernel import SandboxStartError

        try:
            kernel = await self._start_kernel(slot)
        except SandboxStartError as exc:
            # retried after spare_retry_s, doubling while it keeps failing (up to an hour)
            wait = self.config.spare_retry_s * 2 ** min(self._spare_failures, 7)
            self._spare_failures += 1
            self._spare_retry_at = time.monotonic() + min(
                wait, max(3600.0, self.config.spare_retry_s)
            )
            self._spares[:] = [s for s in self._spares if s.slot != slot]
            self._start_failed(exc)
            raise
        self._started()
        try:
            if self.config.spare_imports:
                code = "; ".join(f"__import__({m!r})" for m in self.config.spare_imports)
                await kernel.execute(code, self.config.start_timeout_s, silent=True)
        except BaseException:
            await self._kill(kernel)
            raise
        return kernel

    async def _take_spare_for(self, session: _Session) -> None:
        """Restart a session whose kernel ended on a ready spare (taking its uid slot)."""
        async with self._guard:
            ready = self._pop_ready()
            if ready is not None:
                session.slot, session.kernel = ready
                self._refill()

    def spare_count(self) -> int:
        """Spares started or starting."""
        return len(self._spares)

    async def spares_ready(self) -> int:
        """Wait for the spares being started; how many are ready (tests, benchmarks)."""
        tasks = [s.task for s in self._spares]
        await asyncio.gather(*tasks, return_exceptions=True)
        return sum(
            1
            for s in self._spares
            if s.task.done() and not s.task.cancelled() and s.task.exception() is None
        )

    async def _discard(self, task: asyncio.Task[Kernel]) -> None:
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if not isinstance(outcome, BaseException):
            await self._kill(outcome)

    async def _run_in(
        self, session: _Session, user_id: str, conversation_id: str | None, code: str
    ) -> RunResult:
        from parley.sandbox.kernel import SandboxStartError

        result = RunResult()
        if session.kernel is None or not session.kernel.alive:
            if session.kernel is not None or session.lost_state:
                result.restarted = True
                result.notes.append(
                    "The previous Python session ended, so this one starts fresh: "
                    "earlier variables and files are gone."
                )
            session.lost_state = False
            session.synced.clear()
            if session.kernel is not None:
                await session.kernel.kill()
                session.kernel = None
                await self._take_spare_for(session)
            try:
                if session.kernel is None:
                    session.kernel = await self._start_kernel(session.slot)
            except SandboxStartError as exc:
                session.kernel = None
                self._start_failed(exc)
                return RunResult(unavailable=f"Code execution is unavailable: {exc}")
            self._started()
        kernel = session.kernel
        if self.files is not None:
            slot = session.slot
            await sync_files(
                self.files,
                session.synced,
                kernel,
                lambda: self.host_uid(slot),
                user_id,
                conversation_id,
                result.notes,
            )
        before = snapshot_of(kernel)
        quota = await self._quota(user_id)
        try:
            return await self._execute(
                session, kernel, before, user_id, conversation_id, code, result, quota
            )
        finally:
            self._reserved[user_id] -= quota.reserved
            if self._reserved[user_id] <= 0:
                del self._reserved[user_id]

    async def _execute(
        self,
        session: _Session,
        kernel: Kernel,
        before: sfiles.Snapshot | None,
        user_id: str,
        conversation_id: str | None,
        code: str,
        result: RunResult,
        quota: CallQuota,
    ) -> RunResult:
        """Run the code and keep what it made, within ``quota``."""
        from parley.sandbox.kernel import MAX_IMAGES

        try:
            execution = await kernel.execute(
                code, self.config.limits.wall_seconds, images=quota.budget
            )
        except asyncio.CancelledError:  # the turn was stopped or the tool timeout hit first
            session.lost_state = True
            # The kill goes on in the background (``close`` waits for it): a stopped
            # turn ends now, not after the sandbox's last exit and cgroup removal.
            self._kill_soon(kernel)
            raise
        result.execution = execution
        if execution.died:
            session.lost_state = True
        for i, png in enumerate(execution.images, 1):
            name = f"figure-{i}.png"
            result.attachments.append(await self.sink.save(user_id, conversation_id, name, png))
            quota.kept_images += len(png)
        quota.dropped_images = execution.images_dropped
        if execution.images_over_count:
            result.notes.append(
                f"{execution.images_over_count} more images were not kept "
                f"(at most {MAX_IMAGES} per call)."
            )
        if kernel.alive and before is not None:
            await collect_files(
                kernel,
                before,
                self.config,
                self.sink,
                user_id,
                conversation_id,
                quota,
                result.notes,
                result.attachments,
            )
        result.quota_note = quota.note()
        return result

    async def _quota(self, user_id: str) -> CallQuota:
        """This call's output budget, reserved against the user's until the call ends."""
        return await reserve_quota(self.config, self.sink, self._reserved, user_id)

    async def _start_kernel(self, slot: int) -> Kernel:
        from parley.sandbox.kernel import Kernel, SandboxStartError

        try:
            host_uid = self.host_uid(slot)
        except UidBlockError as exc:
            raise SandboxStartError(str(exc)) from exc
        return await Kernel.start(
            bwrap=resolve_bwrap(self.config.bwrap) or self.config.bwrap,
            python=self.config.python,
            limits=self.config.limits,
            host_uid=host_uid,
            timeout_s=self.config.start_timeout_s,
            cgroups=self.cgroups,
        )

    # ------------------------------------------------------------ lifecycle

    def start_reaper(self, interval_s: float | None = None) -> None:
        """Reap idle kernels periodically, and start the spares (then keep them up)."""
        every = interval_s or max(1.0, min(60.0, self.config.idle_s / 4))
        self._reaper = asyncio.create_task(self._reap_forever(every))
        self._refill()

    async def _reap_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.reap_idle()
            except Exception:
                log.exception("reaping idle kernels failed")

    async def reap_idle(self, now: float | None = None) -> int:
        """Shut down kernels idle longer than ``idle_s``; how many were stopped."""
        moment = time.monotonic() if now is None else now
        async with self._guard:
            stale = [
                s
                for s in self._sessions.values()
                if not s.busy and moment - s.last_used >= self.config.idle_s
            ]
            for session in stale:
                self._sessions.pop(session.key, None)
                self._lost.add(session.key)
            dead = [s for s in self._spares if s.task.done() and not _started_alive(s.task)]
            for spare in dead:
                self._spares.remove(spare)
            self._refill()
        for session in stale:
            await self._shutdown(session)
        for spare in dead:
            await self._discard(spare.task)
        return len(stale)

    def kernel_count(self, user_id: str | None = None) -> int:
        return sum(
            1
            for s in self._sessions.values()
            if s.kernel is not None and s.kernel.alive and user_id in (None, s.key[0])
        )

    def kernel_for(self, user_id: str, conversation_id: str | None) -> Kernel | None:
        session = self._sessions.get((user_id, conversation_id or ""))
        return session.kernel if session else None

    async def close_for(self, user_id: str, conversation_id: str | None = None) -> int:
        """Kill a user's kernels (one conversation's, or all of them) now.

        For a disabled or deleted account and a deleted conversation: the kernel
        is killed without waiting for a running call to finish (that call then
        reports the kernel gone), and nothing is remembered as "lost", since no
        later run of that key should be told its state was reset.
        """
        async with self._guard:
            doomed = [
                s
                for key, s in self._sessions.items()
                if key[0] == user_id and conversation_id in (None, key[1] or None)
            ]
            for session in doomed:
                self._sessions.pop(session.key, None)
                self._lost.discard(session.key)
            if conversation_id is None:
                self._lost = {k for k in self._lost if k[0] != user_id}
        for session in doomed:
            kernel, session.kernel = session.kernel, None
            if kernel is not None:
                await kernel.kill()
        return len(doomed)

    async def _shutdown(self, session: _Session) -> None:
        async with session.lock:
            if session.kernel is not None:
                await self._kill(session.kernel)
                session.kernel = None

    def _kill_soon(self, kernel: Kernel) -> asyncio.Future[None]:
        """Start killing a kernel, to the end whatever happens to the caller:
        ``close`` waits for kills still under way, so no process or cgroup
        outlives the manager."""
        task = asyncio.ensure_future(kernel.kill())
        self._killing.add(task)
        task.add_done_callback(self._killing.discard)
        return task

    async def _kill(self, kernel: Kernel) -> None:
        """Kill a kernel and wait for it, even if the caller is cancelled (the reaper at close)."""
        await asyncio.shield(self._kill_soon(kernel))

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        sessions = list(self._sessions.values())
        spares = [s.task for s in self._spares]
        self._sessions.clear()
        self._spares.clear()
        for task in spares:
            await self._discard(task)
        for session in sessions:
            if session.kernel is not None:
                await self._kill(session.kernel)
        if self._killing:
            await asyncio.gather(*self._killing, return_exceptions=True)
        self._uids.release()


def _retrieve(task: asyncio.Task[Kernel]) -> None:
    if not task.cancelled():
        task.exception()


def _started_alive(task: asyncio.Task[Kernel]) -> bool:
    if task.cancelled() or task.exception() is not None:
        return False
    return task.result().alive


def _lru_idle(sessions: list[_Session]) -> _Session | None:
    idle = [s for s in sessions if not s.busy]
    return min(idle, key=lambda s: s.last_used) if idle else None
