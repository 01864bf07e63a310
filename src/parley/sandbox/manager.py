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
user, counted across files and images; what does not fit is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from parley.config import Settings
from parley.sandbox import files as sfiles
from parley.sandbox import seccomp
from parley.sandbox.bwrap import Limits, python_prefix, resolve_bwrap
from parley.sandbox.cgroups import CgroupSupport, detect
from parley.sandbox.outputs import Attachment, OutputBudget
from parley.sandbox.uids import LOCK_DIR, UidBlock, UidBlockError

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

FilesSource = Callable[[str, str | None], Awaitable[Sequence[tuple[str, str | Path]]]]
"""``(user_id, conversation_id) -> [(filename, path on disk), ...]`` for the conversation."""


class OutputSink(Protocol):
    """Where outputs go. A sink that also has ``async used_bytes(user_id) -> int``
    (bytes stored for the user, as ``OutputStore`` does) gets the per-user quota;
    without it only the per-call quota applies."""

    async def save(
        self, user_id: str, conversation_id: str | None, filename: str, data: bytes
    ) -> Attachment: ...


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    bwrap: str = "bwrap"
    python: Path = Path("/nonexistent")
    limits: Limits = field(default_factory=Limits)
    per_user: int = 2
    total: int = 16
    idle_s: float = 900.0
    host_uid_base: int = 900_000
    max_output_files: int = 10
    max_output_bytes: int = 25 * 2**20  # one file
    output_call_bytes: int = 50 * 2**20  # files and images of one call together
    output_user_bytes: int = 1024 * 2**20  # everything stored for one user
    cgroups: bool = True  # a cgroup per kernel where the host has them
    start_timeout_s: float = 15.0
    spares: int = 0  # kernels kept started for new conversations
    spare_imports: tuple[str, ...] = ("numpy", "pandas", "matplotlib.pyplot")
    spare_retry_s: float = 30.0  # after a spare failed to start
    uid_lock_dir: Path = LOCK_DIR  # where workers claim their block of host uids

    def __post_init__(self) -> None:
        # The venv folder may be a link (into /var/tmp for a private checkout):
        # bwrap binds real paths, and the link would not exist inside the sandbox.
        venv = self.python.parent.parent
        if venv.is_symlink():
            object.__setattr__(self, "python", venv.resolve() / "bin" / self.python.name)


def default_python() -> Path:
    """The kernel venv ``make install`` builds next to Parley's own: ``<venv>/sandbox``."""
    return Path(sys.prefix) / "sandbox" / "bin" / "python"


def config_from_settings(settings: Settings) -> SandboxConfig:
    mb = 2**20
    return SandboxConfig(
        bwrap=settings.sandbox_bwrap,
        python=settings.sandbox_python or default_python(),
        limits=Limits(
            memory_bytes=settings.sandbox_memory_mb * mb,
            cpu_seconds=settings.sandbox_cpu_s,
            processes=settings.sandbox_processes,
            file_bytes=settings.sandbox_file_mb * mb,
            disk_bytes=settings.sandbox_disk_mb * mb,
            wall_seconds=settings.sandbox_wall_s,
            cpus=settings.sandbox_cpus,
        ),
        per_user=settings.sandbox_kernels_per_user,
        total=settings.sandbox_max_kernels,
        spares=settings.sandbox_spare_kernels,
        idle_s=settings.sandbox_idle_s,
        host_uid_base=settings.sandbox_host_uid_base,
        output_call_bytes=settings.sandbox_output_call_mb * mb,
        output_user_bytes=settings.sandbox_output_user_mb * mb,
        cgroups=settings.sandbox_cgroups,
    )


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
        cfg = self.config
        if importlib.util.find_spec("jupyter_client") is None:
            return "the server lacks jupyter_client: install Parley with the `sandbox` extra."
        if resolve_bwrap(cfg.bwrap) is None:
            return (
                f"bubblewrap ('{cfg.bwrap}') was not found. Install it "
                "(Debian/Ubuntu: apt-get install bubblewrap) or set PARLEY_SANDBOX_BWRAP."
            )
        if not os.access(cfg.python, os.X_OK):
            return (
                f"the sandbox's Python ({cfg.python}) is missing: run `make install` "
                "or set PARLEY_SANDBOX_PYTHON to a venv with ipykernel, pandas and matplotlib."
            )
        if os.geteuid() == 0:
            for path in (python_prefix(cfg.python), cfg.python.parent.parent):
                if not _world_readable(path):
                    return (
                        f"{path} is not readable by unprivileged users, so the sandbox "
                        "cannot use it: build the sandbox venv from a system Python (/usr)."
                    )
        why = seccomp.unavailable_reason()
        if why:
            return f"the sandbox's seccomp filter cannot be built: {why}"
        return ""

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
        await self._sync_files(session, kernel, user_id, conversation_id, result)
        before = self._snapshot(kernel)
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
        quota: _Quota,
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
            await self._collect_files(kernel, before, user_id, conversation_id, result, quota)
        result.quota_note = quota.note()
        return result

    async def _quota(self, user_id: str) -> _Quota:
        """This call's output budget: the per-call quota, or what is left of the user's."""
        cfg = self.config
        used = 0
        used_bytes = getattr(self.sink, "used_bytes", None)
        if used_bytes is not None:
            try:
                used = int(await used_bytes(user_id))
            except Exception:
                log.exception("reading a user's stored outputs failed; the per-call quota applies")
        # Calls of the same user running at once (other conversations) reserve their
        # budgets up front, so together they never pass the user's quota.
        used += self._reserved[user_id]
        user_left = max(0, cfg.output_user_bytes - used)
        budget = min(cfg.output_call_bytes, user_left)
        self._reserved[user_id] += budget
        return _Quota(
            OutputBudget(budget),
            call_bytes=cfg.output_call_bytes,
            user_bytes=cfg.output_user_bytes,
            user_used=used,
            reserved=budget,
        )

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

    def _snapshot(self, kernel: Kernel) -> sfiles.Snapshot | None:
        try:
            with sfiles.workdir_fd(kernel.sandbox_pid) as fd:
                return sfiles.snapshot(fd)
        except OSError:
            return None

    async def _sync_files(
        self,
        session: _Session,
        kernel: Kernel,
        user_id: str,
        conversation_id: str | None,
        result: RunResult,
    ) -> None:
        """Copy the conversation's files in when new or changed since the last copy."""
        if self.files is None:
            return
        try:
            wanted = await self.files(user_id, conversation_id)
        except Exception:
            log.exception("listing the conversation's files failed")
            result.notes.append("The conversation's files could not be listed.")
            return
        for raw_name, raw_path in wanted:
            name, path = sfiles.safe_name(raw_name), Path(raw_path)
            try:
                info = await asyncio.to_thread(path.stat)
            except OSError:
                continue
            signature = (info.st_size, info.st_mtime_ns)
            if not name or session.synced.get(name) == signature:
                continue
            try:
                await asyncio.to_thread(
                    _place, kernel.sandbox_pid, name, path, self.host_uid(session.slot)
                )
                session.synced[name] = signature
            except OSError as exc:
                result.notes.append(f"The file {name} could not be placed in the sandbox: {exc}")

    async def _collect_files(
        self,
        kernel: Kernel,
        before: sfiles.Snapshot,
        user_id: str,
        conversation_id: str | None,
        result: RunResult,
        quota: _Quota,
    ) -> None:
        """Keep the files the call made or changed, within the count, size and quota.

        A file over the quota left is never read: its size in the snapshot
        decides, and the read stops at the bytes left (a file still growing)."""
        after = self._snapshot(kernel)
        if after is None:
            return
        changed = sfiles.changed_files(before, after)
        cap = self.config.max_output_files
        if len(changed) > cap:
            result.notes.append(f"{len(changed)} files changed; only the first {cap} are kept.")
        limit_mb = self.config.max_output_bytes // 2**20
        for rel in changed[:cap]:
            size = after[rel][0]
            if size > self.config.max_output_bytes:
                result.notes.append(f"{rel} is larger than {limit_mb} MB and was not kept.")
                continue
            if size > quota.budget.remaining:
                quota.dropped_files.append((rel, size))
                continue
            limit = min(self.config.max_output_bytes, quota.budget.remaining)
            try:
                with sfiles.workdir_fd(kernel.sandbox_pid) as fd:
                    data = sfiles.read_file(fd, rel, limit)
            except sfiles.FileTooLarge:  # it grew after the snapshot
                if limit < self.config.max_output_bytes:
                    quota.dropped_files.append((rel, size))
                else:
                    result.notes.append(f"{rel} is larger than {limit_mb} MB and was not kept.")
                continue
            except OSError:
                continue
            quota.budget.take(len(data))
            quota.kept_files += len(data)
            name = sfiles.safe_name(rel) or "output"
            result.attachments.append(await self.sink.save(user_id, conversation_id, name, data))

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


@dataclass(slots=True)
class _Quota:
    """One call's output budget and what it kept and dropped (for the message)."""

    budget: OutputBudget
    call_bytes: int
    user_bytes: int
    user_used: int
    reserved: int = 0  # held against the user's quota until the call ends
    kept_images: int = 0
    kept_files: int = 0
    dropped_images: list[int] = field(default_factory=list)
    dropped_files: list[tuple[str, int]] = field(default_factory=list)

    def note(self) -> str:
        if not self.dropped_images and not self.dropped_files:
            return ""
        dropped = []
        if self.dropped_images:
            count = len(self.dropped_images)
            dropped.append(
                f"{count} image{'s' if count > 1 else ''} ({_mb(sum(self.dropped_images))} in all)"
            )
        dropped += [f"{rel} ({_mb(size)})" for rel, size in self.dropped_files]
        kept = self.kept_images + self.kept_files
        if self.call_bytes <= self.user_bytes - self.user_used:
            why = (
                f"the outputs of one call (files and images together) are limited to "
                f"{_mb(self.call_bytes)}"
            )
            fix = "Save fewer or smaller files and charts, or split the work over several calls."
        else:
            why = (
                f"your stored outputs are limited to {_mb(self.user_bytes)} in all and "
                f"{_mb(self.user_used)} were already in use"
            )
            fix = "Deleting old conversations with large outputs frees space."
        return (
            f"Output quota: {_mb(kept)} of outputs were kept; not kept: {', '.join(dropped)}, "
            f"because {why}. {fix}"
        )


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _place(sandbox_pid: int, name: str, source: Path, uid: int | None) -> None:
    # the source is opened as the server (the data dir is private), the copy made as uid
    with source.open("rb") as src, sfiles.fs_identity(uid), sfiles.workdir_fd(sandbox_pid) as fd:
        sfiles.write_file(fd, name, src)


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


def _world_readable(path: Path) -> bool:
    """Every directory on the way to ``path`` is searchable by others, and it is readable."""
    try:
        current = Path("/")
        for part in path.resolve().parts[1:]:
            current = current / part
            mode = current.stat().st_mode
            if not mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False
