"""A cgroup per sandboxed kernel: memory, CPU and process limits for the whole sandbox.

Resource limits (``setrlimit``) count per process: three children of 600 MB
each fit in a 1 GB ``RLIMIT_AS``, and CPU time restarts with every child. A
cgroup counts the sandbox as one: ``memory`` (all its processes together, tmpfs
pages included; swap too where the host accounts it), ``pids`` (every process
and thread), ``cpu`` (a cap on how many CPUs it may use at once, and the CPU
time of the whole tree for each call's budget), and the freezer to stop it
forking while what a call left running is killed.

Both layouts are supported:

* cgroup v2 (one unified hierarchy): the kernel's group is made beside the
  server's own, in a parent whose ``cgroup.subtree_control`` enables ``memory
  pids cpu``. A root server on the host's root cgroup can always do this; a
  server in a delegated cgroup (systemd ``Delegate=yes``) moves itself into a
  leaf ``parley-server`` first (the "no internal processes" rule).
* cgroup v1: one group per hierarchy (``memory``, ``pids``, ``cpu``,
  ``cpuacct``, and ``freezer`` when mounted), each under the server's own group
  in that hierarchy.

``detect()`` says which one applies, or why none does (not root and nothing
delegated, controllers missing, read-only ``/sys/fs/cgroup``): the sandbox
then falls back to per-process limits only (see the README).
Groups are named ``parley-<server pid>-<n>``; a group whose server is gone is
emptied and removed by the next server that starts (``sweep_stale``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["CgroupLimits", "CgroupSupport", "KernelCgroup", "detect"]

PREFIX = "parley-"
_NAME = re.compile(r"^parley-(\d+)-\d+$")
_SERIAL = itertools.count(1)
V1_REQUIRED = ("memory", "pids", "cpu", "cpuacct")
V2_REQUIRED = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    memory_bytes: int
    processes: int
    cpus: float = 0.0  # CPUs the sandbox may use at once (0: no cap)


@dataclass(frozen=True, slots=True)
class _Mount:
    path: Path  # where the hierarchy is mounted
    root: str  # the hierarchy path that is mounted there (usually "/")
    controllers: frozenset[str]
    version: int


def _mounts(mountinfo: str) -> list[_Mount]:
    found = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup2":
            controllers = frozenset(_read(point / "cgroup.controllers").split())
            found.append(_Mount(point, fields[3], controllers, 2))
        else:
            options = set(tail[2].split(","))
            found.append(_Mount(point, fields[3], frozenset(options), 1))
    return found


def _own_paths(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller (or "" for v2): path}."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
        for name in controllers.split(","):
            if name:
                paths[name] = path
    return paths


def _under(mount: _Mount, path: str) -> Path | None:
    """The directory of hierarchy path ``path`` under ``mount`` (None: not visible here)."""
    root = mount.root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None
    rel = path[len(root) :].lstrip("/")
    return mount.path / rel if rel else mount.path


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:  # one write(2): cgroup files take a value per write
        f.write(value)


@dataclass(slots=True)
class CgroupSupport:
    """What this host offers: a version and where groups go, or why there are none."""

    version: int = 0
    reason: str = ""
    parents: dict[str, Path] = field(default_factory=dict)  # controller (v2: "") -> parent dir
    freezer: bool = False

    @property
    def available(self) -> bool:
        return not self.reason and self.version in (1, 2)

    def describe(self) -> str:
        if not self.available:
            return f"cgroups unavailable: {self.reason}"
        where = sorted({str(p) for p in self.parents.values()})
        return f"cgroup v{self.version} under {', '.join(where)}"

    def create(self, limits: CgroupLimits) -> KernelCgroup:
        """A new group for one kernel with ``limits`` set (OSError when that fails)."""
        if not self.available:
            raise OSError(errno.ENOTSUP, self.reason)
        name = f"{PREFIX}{os.getpid()}-{next(_SERIAL)}"
        group = KernelCgroup(self.version, {}, self.freezer)
        try:
            for controller, parent in self.parents.items():
                directory = parent / name
                if directory in group.dirs.values():
                    group.dirs[controller] = directory  # co-mounted (cpu,cpuacct)
                    continue
                directory.mkdir()
                group.dirs[controller] = directory
            group.configure(limits)
        except OSError:
            group.remove()
            raise
        return group

    def sweep_stale(self) -> int:
        """Empty and remove groups of servers that no longer run; how many were removed."""
        removed = 0
        for parent in set(self.parents.values()):
            with contextlib.suppress(OSError):
                for entry in parent.iterdir():
                    match = _NAME.match(entry.name)
                    if not match or not entry.is_dir() or _pid_alive(int(match.group(1))):
                        continue
                    if _empty_and_remove(entry):
                        removed += 1
        return removed


def _empty_and_remove(directory: Path) -> bool:
    for _ in range(50):
        pids = [int(x) for x in _read(directory / "cgroup.procs").split() if x.isdigit()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return KernelCgroup(0, {"": directory}).remove()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.lru_cache(maxsize=1)
def detect() -> CgroupSupport:
    """This host's cgroup support (cached: call ``detect.cache_clear()`` to look again)."""
    try:
        mounts = _mounts(Path("/proc/self/mountinfo").read_text())
        own = _own_paths(Path("/proc/self/cgroup").read_text())
    except OSError as exc:
        return CgroupSupport(reason=f"cannot read this process's cgroups: {exc}")
    if not mounts:
        return CgroupSupport(reason="no cgroup filesystem is mounted")
    reasons: list[str] = []
    v2 = next((m for m in mounts if m.version == 2), None)
    if v2 is not None and set(V2_REQUIRED) <= v2.controllers:
        support = _detect_v2(v2, own.get("", "/"), reasons)
        if support is not None:
            return support
    elif v2 is not None and not any(m.version == 1 for m in mounts):
        missing = sorted(set(V2_REQUIRED) - v2.controllers)
        reasons.append(f"cgroup v2 at {v2.path} lacks the {' '.join(missing)} controller(s)")
    if any(m.version == 1 for m in mounts):
        support = _detect_v1(mounts, own, reasons)
        if support is not None:
            return support
    return CgroupSupport(reason="; ".join(reasons) or "no usable cgroup hierarchy")


def _probe(parent: Path) -> str:
    """'' when a group can be made (and removed) in ``parent``, else why not."""
    probe = parent / f"{PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir()
    except FileExistsError:
        pass
    except OSError as exc:
        hint = " (run Parley as root or delegate a cgroup to it)" if os.geteuid() else ""
        return f"cannot create a cgroup in {parent}: {exc.strerror}{hint}"
    with contextlib.suppress(OSError):
        probe.rmdir()
    return ""


def _detect_v1(
    mounts: list[_Mount], own: dict[str, str], reasons: list[str]
) -> CgroupSupport | None:
    parents: dict[str, Path] = {}
    for controller in (*V1_REQUIRED, "freezer"):
        mount = next((m for m in mounts if m.version == 1 and controller in m.controllers), None)
        where = _under(mount, own.get(controller, "/")) if mount is not None else None
        if where is None or not where.is_dir():
            if controller == "freezer":
                continue
            reasons.append(f"the cgroup v1 {controller} hierarchy is not mounted")
            return None
        parents[controller] = where
    for parent in sorted(set(parents.values())):
        why = _probe(parent)
        if why:
            reasons.append(why)
            return None
    return CgroupSupport(version=1, parents=parents, freezer="freezer" in parents)


def _detect_v2(mount: _Mount, own: str, reasons: list[str]) -> CgroupSupport | None:
    here = _under(mount, own)
    if here is None or not here.is_dir():
        reasons.append(f"this process's cgroup ({own}) is not visible under {mount.path}")
        return None
    wanted = " ".join(f"+{c}" for c in V2_REQUIRED)
    if here == mount.path:  # the root: processes may live here beside controlled children
        parent = here
    else:
        parent = here
        enabled = set(_read(here / "cgroup.subtree_control").split())
        if not set(V2_REQUIRED) <= enabled:
            # a delegated group: move this process into a leaf, then enable controllers
            leaf = here / f"{PREFIX}server"
            try:
                leaf.mkdir(exist_ok=True)
                _write(leaf / "cgroup.procs", str(os.getpid()))
            except OSError as exc:
                reasons.append(
                    f"cannot use cgroup v2 group {here}: {exc.strerror} (run Parley as root "
                    "or in a delegated cgroup, e.g. systemd Delegate=yes)"
                )
                return None
    try:
        enabled = set(_read(parent / "cgroup.subtree_control").split())
        if not set(V2_REQUIRED) <= enabled:
            _write(parent / "cgroup.subtree_control", wanted)
    except OSError as exc:
        reasons.append(
            f"cannot enable {wanted} in {parent}/cgroup.subtree_control: {exc.strerror}"
            + (" (other processes live in that group)" if exc.errno == errno.EBUSY else "")
        )
        return None
    why = _probe(parent)
    if why:
        reasons.append(why)
        return None
    # every non-root v2 group has cgroup.freeze (Linux 5.2+); _freeze checks it is there
    return CgroupSupport(version=2, parents={"": parent}, freezer=True)


@dataclass(slots=True)
class KernelCgroup:
    """One kernel's group (v1: a directory per hierarchy; v2: one directory)."""

    version: int
    dirs: dict[str, Path]
    freezer: bool = False

    def _dir(self, controller: str) -> Path:
        return self.dirs["" if self.version == 2 else controller]

    def configure(self, limits: CgroupLimits) -> None:
        if self.version == 2:
            d = self.dirs[""]
            _write(d / "memory.max", str(limits.memory_bytes))
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
            _write(d / "pids.max", str(limits.processes))
            if limits.cpus > 0:
                _write(d / "cpu.max", f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            return
        mem = self._dir("memory")
        _write(mem / "memory.limit_in_bytes", str(limits.memory_bytes))
        if (mem / "memory.memsw.limit_in_bytes").exists():
            _write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        _write(self._dir("pids") / "pids.max", str(limits.processes))
        if limits.cpus > 0:
            cpu = self._dir("cpu")
            _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(int(limits.cpus * CPU_PERIOD_US)))

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a new process writes its pid to, to join."""
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def pids(self) -> set[int]:
        """Processes (thread-group ids) in the group now."""
        text = _read(self._dir("pids") / "cgroup.procs")
        return {int(x) for x in text.split() if x.isdigit()}

    def cpu_ns(self) -> int:
        """CPU time used by every process the group ever held, in nanoseconds."""
        if self.version == 2:
            for line in _read(self.dirs[""] / "cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
            return 0
        text = _read(self._dir("cpuacct") / "cpuacct.usage").strip()
        return int(text) if text.isdigit() else 0

    def memory_peak(self) -> int:
        if self.version == 2:
            text = _read(self.dirs[""] / "memory.peak").strip()
        else:
            text = _read(self._dir("memory") / "memory.max_usage_in_bytes").strip()
        return int(text) if text.isdigit() else 0

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer ended in this group."""
        if self.version == 2:
            text = _read(self.dirs[""] / "memory.events")
        else:
            text = _read(self._dir("memory") / "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def pids_refused(self) -> int:
        """How many forks the pids limit refused."""
        for line in _read(self._dir("pids") / "pids.events").splitlines():
            key, _, value = line.partition(" ")
            if key == "max" and value.strip().isdigit():
                return int(value)
        return 0

    def _freeze(self, frozen: bool) -> bool:
        if not self.freezer:
            return False
        try:
            if self.version == 2:
                if not (self.dirs[""] / "cgroup.freeze").exists():
                    return False
                _write(self.dirs[""] / "cgroup.freeze", "1" if frozen else "0")
                if frozen:
                    for _ in range(200):
                        if "frozen 1" in _read(self.dirs[""] / "cgroup.events"):
                            return True
                        time.sleep(0.005)
                return True
            state = self._dir("freezer") / "freezer.state"
            _write(state, "FROZEN" if frozen else "THAWED")
            if frozen:
                for _ in range(200):
                    if _read(state).strip() == "FROZEN":
                        return True
                    time.sleep(0.005)
            return True
        except OSError:
            return False

    def kill_except(self, keep: set[int], rounds: int = 50) -> int:
        """SIGKILL every process in the group but ``keep``; how many were signalled.

        The group is frozen while it is listed and signalled (nothing forks in
        between); the signals land when it thaws, before any of them runs again.
        """
        signalled: set[int] = set()
        if not self.pids() - keep:
            return 0  # the usual case: nothing was left running (no need to freeze)
        for _ in range(rounds):
            frozen = self._freeze(True)
            try:
                extra = self.pids() - keep
                for pid in extra:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                        signalled.add(pid)
            finally:
                if frozen:
                    self._freeze(False)
            if not extra:
                break
            time.sleep(0.01)
        return len(signalled)

    def kill_all(self) -> None:
        if self.version == 2 and (self.dirs[""] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.dirs[""] / "cgroup.kill", "1")
        self.kill_except(set())

    def remove(self) -> bool:
        """Remove the group's directories (waiting briefly for the last exits)."""
        ok = True
        for directory in sorted(set(self.dirs.values()), reverse=True):
            for attempt in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or attempt == 99:
                        log.warning("could not remove cgroup %s: %s", directory, exc)
                        ok = False
                        break
                    time.sleep(0.02)
        return ok
