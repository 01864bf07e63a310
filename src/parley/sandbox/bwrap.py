"""The bubblewrap command line and process limits for one sandboxed kernel.

Why these choices:

* Every namespace is unshared (network included) and no new user namespaces
  may be made inside; all capabilities are dropped; the process runs in its
  own session (no TIOCSTI) and dies with its parent.
* Only ``/usr`` (and the kernel's Python install and venv) are visible, read
  only. ``/etc`` is not bound at all: the sandbox gets a synthetic passwd/group.
* Everything writable is a size-limited tmpfs (working directory, ``/tmp``,
  ``/dev/shm``): that is the disk quota, and nothing the code writes lands on
  the host's disk. The server reads and writes those files through
  ``/proc/<pid>/root`` with symlink-safe calls (see ``files.py``).
* When the server runs as root, bwrap itself is started as an unprivileged
  host uid (one per kernel slot), so RLIMIT_NPROC counts only that kernel's
  processes and DAC protects the host even if a bind were misconfigured.
  RLIMIT_NPROC is not enforced for uid 0, which is why root never runs it.
* A seccomp filter (``seccomp.py``) denies the syscalls a data-analysis
  kernel never needs; bwrap loads it just before it runs the kernel.
* Where the host has cgroups (``cgroups.py``) the new process joins its
  kernel's group before it runs bwrap, so memory, processes and CPU count for
  the whole sandbox; the rlimits below stay as a per-process second line.
"""

# ruff: noqa: S108 - every /tmp and /dev/shm path here is inside the sandbox's own tmpfs

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KERNEL_DIR",
    "WORK_DIR",
    "LaunchPlan",
    "Limits",
    "bwrap_argv",
    "python_prefix",
    "resolve_bwrap",
    "rlimit_setter",
]

WORK_DIR = "/mnt/data"  # the code's working directory (the name ChatGPT's sandbox uses)
KERNEL_DIR = "/tmp/.kernel"  # inside the sandbox's private /tmp
CONNECTION_FILE = "/run/parley/kernel.json"
SANDBOX_UID = 65534

_PASSWD = f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{WORK_DIR}:/usr/sbin/nologin\n"
_GROUP = f"sandbox:x:{SANDBOX_UID}:\n"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-kernel resource limits (the README's settings table explains each)."""

    memory_bytes: int = 1024 * 2**20
    cpu_seconds: int = 60
    processes: int = 64
    file_bytes: int = 64 * 2**20
    disk_bytes: int = 256 * 2**20
    tmp_bytes: int = 64 * 2**20
    open_files: int = 256
    wall_seconds: float = 20.0
    cpus: float = 1.0  # CPUs the whole sandbox may use at once (cgroups only; 0: no cap)


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything needed to start one kernel; built by the manager."""

    bwrap: str
    python: Path  # the kernel venv's interpreter (host path; bound at the same path)
    limits: Limits
    connection_fd: int  # a memfd holding the kernel's connection file
    passwd_fd: int
    group_fd: int
    info_fd: int  # bwrap writes {"child-pid": N} here
    seccomp_fd: int | None = None  # the compiled seccomp filter (``seccomp.filter_memfd``)


def resolve_bwrap(configured: str) -> str | None:
    """An executable path for ``configured`` (a path or a name on PATH), else None."""
    if os.sep in configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which(configured)


def python_prefix(python: Path) -> Path:
    """The install prefix the (venv) interpreter links into, which must be bound too."""
    real = python.resolve()
    return real.parent.parent


def _venv_root(python: Path) -> Path:
    return python.parent.parent


def passwd_bytes() -> tuple[bytes, bytes]:
    return _PASSWD.encode(), _GROUP.encode()


def bwrap_argv(plan: LaunchPlan) -> list[str]:
    """The full command: bwrap options, then the kernel (ipykernel) command."""
    lim = plan.limits
    venv = _venv_root(plan.python)
    prefix = python_prefix(plan.python)
    argv = [
        plan.bwrap,
        "--unshare-all",  # user, ipc, pid, net, uts, cgroup namespaces
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    if Path("/etc/fonts").is_dir():  # fontconfig's config, for matplotlib's font lookup
        argv += ["--ro-bind", "/etc/fonts", "/etc/fonts"]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(lim.tmp_bytes // 4),
        "--tmpfs",
        "/dev/shm",
        "--perms",
        "1777",
        "--size",
        str(lim.tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--perms",
        "0700",
        "--dir",
        KERNEL_DIR,
        "--perms",
        "0755",
        "--size",
        str(lim.disk_bytes),
        "--tmpfs",
        WORK_DIR,
    ]
    # The kernel's Python install and venv are bound after the private /tmp (and the
    # working directory) are mounted: a checkout under /tmp would be hidden otherwise.
    for extra in dict.fromkeys((prefix, venv)):
        if not str(extra).startswith("/usr/"):
            argv += ["--ro-bind", str(extra), str(extra)]
    argv += [
        "--ro-bind-data",
        str(plan.connection_fd),
        CONNECTION_FILE,
        "--ro-bind-data",
        str(plan.passwd_fd),
        "/etc/passwd",
        "--ro-bind-data",
        str(plan.group_fd),
        "/etc/group",
        "--remount-ro",
        "/",
        "--chdir",
        WORK_DIR,
        "--clearenv",
        "--setenv",
        "PATH",
        f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "HOME",
        WORK_DIR,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--setenv",
        "XDG_CACHE_HOME",
        "/tmp/cache",
        "--setenv",
        "MPLCONFIGDIR",
        "/tmp/matplotlib",
        "--setenv",
        "MPLBACKEND",
        "module://matplotlib_inline.backend_inline",
        "--setenv",
        "IPYTHONDIR",
        "/tmp/ipython",
        "--setenv",
        "JUPYTER_PLATFORM_DIRS",
        "1",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        "--setenv",
        "MALLOC_ARENA_MAX",
        "2",
        "--setenv",
        "OPENBLAS_NUM_THREADS",
        "1",
        "--setenv",
        "OMP_NUM_THREADS",
        "1",
        "--info-fd",
        str(plan.info_fd),
    ]
    if plan.seccomp_fd is not None:
        argv += ["--seccomp", str(plan.seccomp_fd)]
    argv += [
        str(plan.python),
        "-m",
        "ipykernel_launcher",
        "-f",
        CONNECTION_FILE,
        "--HistoryManager.enabled=False",
        "--IPKernelApp.trio_loop=False",
        "--Application.log_level=ERROR",
    ]
    return argv


def rlimit_setter(
    limits: Limits, uid: int | None = None, join: Sequence[str] = ()
) -> Callable[[], None]:
    """A ``preexec_fn`` applying the limits; they are inherited by everything inside.

    RLIMIT_CPU here bounds the kernel's whole life; the manager narrows it
    before each execution with ``prlimit``. ``join`` lists the ``cgroup.procs``
    files of the kernel's cgroup: the process writes its pid there first (as
    the server's user), so bwrap and all it starts are in the group. With
    ``uid`` (a root server) it then drops to that uid and gid with no
    supplementary groups: done here rather than with ``user=``/``group=``
    because uvloop (``parley serve``'s loop) refuses those arguments.
    """
    # with a cgroup its pids.max is the binding limit; RLIMIT_NPROC stays as a backstop
    nproc = limits.processes + (16 if join else 0)
    values = [
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]

    cpu = (limits.cpu_seconds, limits.cpu_seconds + 1)  # SIGXCPU first: a clear exit reason

    targets = list(join)

    def apply() -> None:  # runs in the forked child before exec: no allocation-heavy work
        pid = str(os.getpid())
        for target in targets:
            with open(target, "w") as f:
                f.write(pid)
        for kind, value in values:
            resource.setrlimit(kind, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, cpu)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)

    return apply
