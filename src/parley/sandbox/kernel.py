"""One Jupyter kernel inside bubblewrap, spoken to over ZeroMQ's ipc transport.

The kernel binds its sockets in the sandbox's private ``/tmp``; the server
reaches them through ``/proc/<sandbox pid>/root``. Everything the kernel sends
is untrusted (user code knows the HMAC key, it lives in the same process), so:

* the server connects only after every socket exists as a socket (``lstat``),
  before any user code runs, and never reconnects: a socket later swapped for
  a symlink to a host socket is never followed;
* ZeroMQ drops messages larger than ``MAX_MESSAGE_BYTES``;
* collected output is capped while it arrives, not after.

A call owns the sandbox only while it runs: when it ends, every process but
the kernel (and bwrap's own) is killed, and its CPU budget counts the whole
tree (the kernel's cgroup where the host has one, else the processes under
the sandbox's pid 1: see ``cgroups.py``; the process tree is read in ``procs.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import resource
import secrets
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.session import Session

from parley.sandbox import procs, seccomp
from parley.sandbox.bwrap import KERNEL_DIR, LaunchPlan, Limits, bwrap_argv, passwd_bytes
from parley.sandbox.bwrap import rlimit_setter as _rlimit_setter
from parley.sandbox.cgroups import CgroupLimits, CgroupSupport, KernelCgroup
from parley.sandbox.outputs import OutputBudget

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 2**20
MAX_TEXT_CHARS = 20_000  # per stream, while collecting
MAX_IMAGES = 10
_CHANNELS = {"shell": 1, "iopub": 2, "stdin": 3, "control": 4, "hb": 5}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CPU_CHECK_S = 0.2  # how often a call's CPU time is looked at


class SandboxStartError(Exception):
    """The sandbox or the kernel inside it could not start."""


@dataclass(slots=True)
class Execution:
    """What one run of code produced (text already capped)."""

    stdout: str = ""
    stderr: str = ""
    result: str = ""
    error: str = ""  # "Name: value" plus the traceback, ANSI stripped
    error_name: str = ""
    images: list[bytes] = field(default_factory=list)  # PNG bytes
    images_dropped: list[int] = field(default_factory=list)  # sizes of images over the quota
    images_over_count: int = 0  # images past MAX_IMAGES, not kept
    timed_out: bool = False
    died: str = ""  # why the kernel is gone, when it died during the run
    duration_ms: float = 0.0
    cpu_exceeded: bool = False  # the tree's CPU time passed the limit (the sandbox is killed)
    leftovers_killed: int = 0  # processes still running at the end, killed
    oom_kills: int = 0  # processes the sandbox's memory limit ended during the call


class _Text:
    """A string builder that stops growing at a limit and remembers how much it dropped."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self.limit = limit

    def add(self, text: str) -> None:
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))

    def value(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters not shown]"
        return text


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)  # not CLOEXEC: bwrap reads it, then it is closed
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def cpu_limit_reason(limits: Limits) -> str:
    return (
        f"The code (with any processes it started) used its CPU time limit "
        f"({limits.cpu_seconds} s) and was stopped."
    )


def exit_reason(code: int | None, limits: Limits, oom_killed: bool = False) -> str:
    """A sentence for how the sandbox ended (bwrap passes the kernel's status on)."""
    if code is None:
        return "The Python process stopped responding."
    sig = -code if code < 0 else code - 128 if code > 128 else 0
    if sig == signal.SIGKILL and oom_killed:
        return (
            f"The sandbox ran out of memory (its processes together may use "
            f"{limits.memory_bytes // 2**20} MB), so the Python process was killed."
        )
    if sig == signal.SIGXCPU:
        return (
            f"The Python process used its CPU time limit ({limits.cpu_seconds} s) and was stopped."
        )
    if sig == signal.SIGKILL:
        return "The Python process was killed."
    if sig == signal.SIGSEGV:
        return "The Python process crashed (segmentation fault)."
    if sig:
        return f"The Python process was stopped by signal {signal.Signals(sig).name}."
    return f"The Python process exited (status {code})."


class Kernel:
    """A started kernel. Use ``await Kernel.start(...)``; ``execute`` is not reentrant."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.sandbox_pid = 0
        self._sandbox_started = -1
        self.limits = Limits()
        self._ctx: zmq.asyncio.Context | None = None
        self._shell: zmq.asyncio.Socket | None = None
        self._iopub: zmq.asyncio.Socket | None = None
        self._control: zmq.asyncio.Socket | None = None
        self._session = Session(key=secrets.token_hex(32).encode(), username="parley")
        self._stderr = b""
        self._stderr_task: asyncio.Task[None] | None = None
        self.kernel_pid = 0
        self._kernel_pidfd = -1
        self.cgroup: KernelCgroup | None = None

    # ------------------------------------------------------------ start

    @classmethod
    async def start(
        cls,
        *,
        bwrap: str,
        python: Path,
        limits: Limits,
        host_uid: int | None,
        timeout_s: float = 15.0,
        cgroups: CgroupSupport | None = None,
    ) -> Kernel:
        """Start bwrap + ipykernel and connect; SandboxStartError says why it failed.

        With ``cgroups`` (available) the sandbox gets a group of its own with
        the limits; without, the per-process limits alone apply."""
        self = cls()
        self.limits = limits
        try:
            seccomp_fd = seccomp.filter_memfd()
        except seccomp.SeccompUnavailable as exc:
            raise SandboxStartError(str(exc)) from exc
        key = secrets.token_hex(32)
        connection = {
            "transport": "ipc",
            "ip": f"{KERNEL_DIR}/s",
            **{f"{name}_port": port for name, port in _CHANNELS.items()},
            "key": key,
            "signature_scheme": "hmac-sha256",
            "kernel_name": "python3",
        }
        self._session = Session(key=key.encode(), username="parley")
        passwd, group = passwd_bytes()
        fds = [
            _memfd("kernel.json", json.dumps(connection).encode()),
            _memfd("passwd", passwd),
            _memfd("group", group),
        ]
        fds.append(seccomp_fd)
        join: list[str] = []
        if cgroups is not None and cgroups.available:
            try:  # a few mkdir and writes (under a ms): not in a thread, so never orphaned
                self.cgroup = cgroups.create(
                    CgroupLimits(limits.memory_bytes, limits.processes, limits.cpus)
                )
            except OSError as exc:
                for fd in fds:
                    os.close(fd)
                raise SandboxStartError(f"the sandbox's cgroup could not be made: {exc}") from exc
            join = self.cgroup.procs_files()
        info_r, info_w = os.pipe()
        plan = LaunchPlan(bwrap, python, limits, fds[0], fds[1], fds[2], info_w, seccomp_fd)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *bwrap_argv(plan),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                # bwrap's own process is pid 1 inside and its /proc/1/environ is
                # readable there: it must not carry the server's environment.
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                pass_fds=(*fds, info_w),
                preexec_fn=_rlimit_setter(limits, host_uid, join),
                start_new_session=True,
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (*fds, info_r, info_w):
                os.close(fd)
            await self._remove_cgroup()
            raise SandboxStartError(f"bubblewrap could not be run: {exc}") from exc
        except BaseException:  # cancelled while spawning: nothing of it may stay behind
            for fd in (*fds, info_r, info_w):
                os.close(fd)
            if self.cgroup is not None:
                self.cgroup.kill_all()
                self.cgroup.remove()
                self.cgroup = None
            raise
        for fd in (*fds, info_w):
            os.close(fd)
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        try:
            async with asyncio.timeout(timeout_s):
                info = await asyncio.to_thread(_read_all, info_r)
                self.sandbox_pid = _child_pid(info)
                if not self.sandbox_pid:
                    raise SandboxStartError(self._why("the sandbox did not start"))
                self._sandbox_started = procs.start_time(self.sandbox_pid)
                await self._wait_for_sockets()
                self._connect()
                await self._handshake()
        except TimeoutError:
            await self.kill()
            raise SandboxStartError(self._why("the kernel did not start in time")) from None
        except BaseException:
            await self.kill()
            raise
        finally:
            os.close(info_r)
        self.kernel_pid = procs.find_child(self.sandbox_pid)
        if self.kernel_pid:
            with contextlib.suppress(OSError):  # signals reach exactly this process, never a reuse
                self._kernel_pidfd = os.pidfd_open(self.kernel_pid)
        return self

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._stderr = (self._stderr + chunk)[-4000:]

    def _why(self, what: str) -> str:
        detail = self._stderr.decode(errors="replace").strip()
        return f"{what}: {detail[-600:]}" if detail else what

    def _socket_path(self, channel: str) -> str:
        return f"/proc/{self.sandbox_pid}/root{KERNEL_DIR}/s-{_CHANNELS[channel]}"

    async def _wait_for_sockets(self) -> None:
        wanted = ("shell", "iopub", "control")
        while True:
            if self.proc is None or self.proc.returncode is not None:
                raise SandboxStartError(self._why("the sandbox exited while starting"))
            ready = 0
            for channel in wanted:
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(os.lstat(self._socket_path(channel)).st_mode):
                        ready += 1
            if ready == len(wanted):
                return
            await asyncio.sleep(0.01)

    def _connect(self) -> None:
        ctx = zmq.asyncio.Context()
        ctx.setsockopt(zmq.RECONNECT_IVL, -1)  # never reconnect (see module docstring)
        ctx.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        ctx.setsockopt(zmq.LINGER, 0)
        self._ctx = ctx
        self._shell = ctx.socket(zmq.DEALER)
        self._control = ctx.socket(zmq.DEALER)
        self._iopub = ctx.socket(zmq.SUB)
        self._iopub.setsockopt(zmq.SUBSCRIBE, b"")
        for sock, channel in (
            (self._shell, "shell"),
            (self._control, "control"),
            (self._iopub, "iopub"),
        ):
            sock.connect(f"ipc://{self._socket_path(channel)}")

    async def _recv(self, sock: zmq.asyncio.Socket) -> dict[str, Any]:
        frames = await sock.recv_multipart()
        _idents, parts = self._session.feed_identities(frames)
        return self._session.deserialize(parts)

    def _send(self, sock: zmq.asyncio.Socket, kind: str, content: dict[str, Any]) -> str:
        msg = self._session.send(sock, kind, content)
        assert msg is not None
        return str(msg["header"]["msg_id"])

    async def _handshake(self) -> None:
        """kernel_info until both the reply and its iopub status arrive (SUB is joined)."""
        assert self._shell is not None and self._iopub is not None
        while True:
            msg_id = self._send(self._shell, "kernel_info_request", {})
            reply = await self._recv(self._shell)
            if reply["parent_header"].get("msg_id") != msg_id:
                continue
            try:
                async with asyncio.timeout(0.05):
                    while True:
                        pub = await self._recv(self._iopub)
                        if pub["parent_header"].get("msg_id") == msg_id:
                            return
            except TimeoutError:
                continue

    # ------------------------------------------------------------ run

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def narrow_cpu(self) -> None:
        """Give the next execution ``cpu_seconds`` of CPU from now (root servers only)."""
        if not self.kernel_pid:
            return
        with contextlib.suppress(OSError, ValueError):
            used = procs.cpu_seconds(self.kernel_pid)
            budget = int(used) + self.limits.cpu_seconds + 1
            resource.prlimit(self.kernel_pid, resource.RLIMIT_CPU, (budget, budget + 1))

    async def execute(
        self,
        code: str,
        timeout_s: float,
        *,
        silent: bool = False,
        images: OutputBudget | None = None,
    ) -> Execution:
        """Run ``code``; on timeout interrupt it (and kill the sandbox if that fails).

        The call's CPU budget (``limits.cpu_seconds``) counts every process of
        the sandbox; past it the sandbox is killed. When the call ends, what it
        left running is killed. ``images`` bounds the bytes of images kept (the
        rest are dropped unread and counted). ``silent`` leaves no trace in the
        history or the execution count (the manager's warm-up of a spare kernel)."""
        assert self._shell is not None and self.proc is not None
        started = time.perf_counter()
        out = Execution()
        stdout, stderr, result = (_Text(MAX_TEXT_CHARS) for _ in range(3))
        self._signal_kernel(signal.SIGCONT)  # stopped since the last call ended
        self.narrow_cpu()
        cpu_start = await asyncio.to_thread(self.cpu_ns)
        oom_start = self.cgroup.oom_kills() if self.cgroup is not None else 0
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg_id = self._send(self._shell, "execute_request", content)
        collect = asyncio.create_task(self._collect(msg_id, out, stdout, stderr, result, images))
        exited = asyncio.create_task(self.proc.wait())
        watch = asyncio.create_task(self._watch_cpu(cpu_start))
        try:
            done, _ = await asyncio.wait(
                {collect, exited, watch}, timeout=timeout_s, return_when="FIRST_COMPLETED"
            )
            if self.cgroup is not None:
                out.oom_kills = self.cgroup.oom_kills() - oom_start
            if watch in done and collect not in done:
                out.cpu_exceeded = True
                await self.kill()
                out.died = cpu_limit_reason(self.limits)
            elif not done:
                out.timed_out = True
                if not await self._interrupt(collect, exited):
                    await self.kill()
                    out.died = (
                        "The code did not stop after an interrupt, so the session was restarted."
                    )
            elif collect not in done:
                await asyncio.sleep(0.05)  # let the last iopub messages land
                out.died = exit_reason(self.proc.returncode, self.limits, out.oom_kills > 0)
                await self.kill()  # what is left of it, and its cgroup, go now
            if collect.done() and not collect.cancelled() and collect.exception() is not None:
                out.died = out.died or f"The kernel connection failed: {collect.exception()}"
                await self.kill()
        finally:
            for task in (collect, exited, watch):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(collect, exited, watch, return_exceptions=True)
        if self.alive:
            out.leftovers_killed = await self.end_call()
            if self.cgroup is not None:
                out.oom_kills = self.cgroup.oom_kills() - oom_start
        out.stdout, out.stderr, out.result = stdout.value(), stderr.value(), result.value()
        out.duration_ms = (time.perf_counter() - started) * 1000
        return out

    def cpu_ns(self) -> int:
        """CPU time of every process the sandbox ran (or runs), in nanoseconds."""
        if self.cgroup is not None:
            return self.cgroup.cpu_ns()
        if not self.sandbox_pid:
            return 0
        return procs.tree_cpu_ns(self.sandbox_pid)

    async def _watch_cpu(self, start_ns: int) -> None:
        """Return once the sandbox used ``cpu_seconds`` of CPU since ``start_ns``."""
        budget = self.limits.cpu_seconds * 1_000_000_000
        while True:
            await asyncio.sleep(CPU_CHECK_S)
            if await asyncio.to_thread(self.cpu_ns) - start_ns >= budget:
                return

    async def end_call(self) -> int:
        """Stop the kernel until the next call and kill every other process of the
        sandbox (bwrap's aside); how many were killed.

        The kernel is stopped (SIGSTOP: all its threads) first, so a thread the
        code left running can neither work between calls nor start a process
        after the others are gone; the next ``execute`` continues it."""
        if not self.kernel_pid or not self.sandbox_pid or self.proc is None:
            return 0
        keep = {self.proc.pid, self.sandbox_pid, self.kernel_pid}
        if self._signal_kernel(signal.SIGSTOP):
            await asyncio.to_thread(procs.wait_stopped, self.kernel_pid)
        if self.cgroup is not None:
            return await asyncio.to_thread(self.cgroup.kill_except, keep)
        return await asyncio.to_thread(procs.kill_descendants, self.sandbox_pid, keep)

    def _signal_kernel(self, sig: int) -> bool:
        if self._kernel_pidfd < 0:
            return False
        try:
            signal.pidfd_send_signal(self._kernel_pidfd, sig)
        except OSError:
            return False
        return True

    async def _interrupt(self, collect: asyncio.Task[None], exited: asyncio.Task[int]) -> bool:
        """Ask the kernel to interrupt (SIGINT inside); True when it went idle again."""
        if self._control is not None and self.alive:
            self._send(self._control, "interrupt_request", {})
        done, _ = await asyncio.wait({collect, exited}, timeout=2.0, return_when="FIRST_COMPLETED")
        return collect in done and collect.exception() is None

    async def _collect(
        self,
        msg_id: str,
        out: Execution,
        stdout: _Text,
        stderr: _Text,
        result: _Text,
        images: OutputBudget | None = None,
    ) -> None:
        """Read iopub until the kernel is idle for ``msg_id``, then take the shell reply."""
        assert self._iopub is not None and self._shell is not None
        while True:
            msg = await self._recv(self._iopub)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = msg["header"]["msg_type"], msg["content"]
            if kind == "stream":
                (stdout if body.get("name") == "stdout" else stderr).add(str(body.get("text", "")))
            elif kind in ("execute_result", "display_data"):
                data = body.get("data") or {}
                png = data.get("image/png")
                if isinstance(png, str):
                    size = len(png) * 3 // 4  # decoded size, known before decoding
                    if len(out.images) >= MAX_IMAGES:
                        out.images_over_count += 1
                        continue
                    if images is not None and not images.take(size):
                        out.images_dropped.append(size)
                        continue
                    with contextlib.suppress(ValueError):
                        out.images.append(base64.b64decode(png, validate=False))
                elif isinstance(data.get("text/plain"), str):
                    result.add(str(data["text/plain"]) + "\n")
            elif kind == "error":
                out.error_name = str(body.get("ename", "Error"))
                trace = "\n".join(str(line) for line in body.get("traceback") or [])
                out.error = _ANSI.sub("", trace)[-MAX_TEXT_CHARS:] or (
                    f"{out.error_name}: {body.get('evalue', '')}"
                )
            elif kind == "status" and body.get("execution_state") == "idle":
                break
        while True:  # the matching execute_reply (older replies are skipped)
            reply = await self._recv(self._shell)
            if reply["parent_header"].get("msg_id") == msg_id:
                return

    # ------------------------------------------------------------ stop

    async def kill(self) -> None:
        """Kill the whole sandbox and wait until its last process is gone; close the sockets.

        Killing the sandbox's pid 1 makes the kernel kill everything in its pid
        namespace; its exit completes only after they are all gone.
        """
        if self.sandbox_pid and procs.start_time(self.sandbox_pid) == self._sandbox_started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.sandbox_pid, signal.SIGKILL)
        if self.proc is not None and self.proc.returncode is None:
            try:  # bwrap leads its own process group (start_new_session)
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.proc.wait()
        if self.sandbox_pid:
            for _ in range(500):  # the same process (pids are reused), until it is gone
                if procs.start_time(self.sandbox_pid) != self._sandbox_started:
                    break
                await asyncio.sleep(0.01)
            self.sandbox_pid = 0
        if self._ctx is not None:
            for sock in (self._shell, self._iopub, self._control):
                if sock is not None:
                    sock.close(linger=0)
            self._ctx.term()
            self._ctx = None
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stderr_task
        if self._kernel_pidfd >= 0:
            os.close(self._kernel_pidfd)
            self._kernel_pidfd = -1
        await self._remove_cgroup()

    async def _remove_cgroup(self) -> None:
        """Empty and remove the kernel's cgroup (after its processes are gone)."""
        group, self.cgroup = self.cgroup, None
        if group is not None:

            def remove() -> None:
                group.kill_all()
                group.remove()

            await asyncio.to_thread(remove)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
        if b"}" in chunk:
            break
    return b"".join(chunks)


def _child_pid(info: bytes) -> int:
    try:
        value = json.loads(info.decode(errors="replace").strip() or "{}").get("child-pid", 0)
    except ValueError:
        return 0
    return int(value) if isinstance(value, int) else 0
