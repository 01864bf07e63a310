"""The sandbox's seccomp filter: a denylist of syscalls a data-analysis kernel never needs.

bubblewrap loads it (``--seccomp FD``: a compiled classic-BPF program) right
before it runs the kernel, so it binds every process in the sandbox and can
only be narrowed, never lifted. It is built with libseccomp (through
``pyseccomp``, a ctypes binding: MIT; libseccomp itself is LGPL-2.1, loaded as
a shared library). Everything not listed is allowed: the namespaces, dropped
capabilities and read-only mounts do the rest; this removes kernel attack
surface (io_uring, BPF, keyrings, perf, userfaultfd...) and the calls that
only make sense for a privileged or debugging process.

* Denied calls fail with EPERM, io_uring with ENOSYS (libraries probing for it
  fall back quietly), ``clone3`` with ENOSYS: its flags sit in memory a filter
  cannot read, and glibc falls back to ``clone``, whose flags it can: ``clone``
  with any namespace flag is denied.
* ``personality`` is allowed only for PER_LINUX (0) and the query 0xffffffff.
* A syscall of another ABI (i386 through ``int 0x80``, x32) kills the process:
  only the native architecture is in the filter.
"""

from __future__ import annotations

import errno
import os
from typing import Any

__all__ = ["DENIED", "SeccompUnavailable", "compiled_filter", "filter_memfd", "unavailable_reason"]

# syscall -> errno it fails with
DENIED: dict[str, int] = {
    **dict.fromkeys(("io_uring_setup", "io_uring_enter", "io_uring_register"), errno.ENOSYS),
    "clone3": errno.ENOSYS,
    **dict.fromkeys(
        (
            # kernel keyrings
            "keyctl",
            "add_key",
            "request_key",
            # BPF programs, perf counters, page-fault handling in user space
            "bpf",
            "perf_event_open",
            "userfaultfd",
            # kernels and modules
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "get_kernel_syms",
            "query_module",
            # mounts, roots, swap
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "swapon",
            "swapoff",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            # namespaces
            "unshare",
            "setns",
            # other processes' memory and descriptors
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "process_madvise",
            "pidfd_getfd",
            "kcmp",
            # the machine
            "reboot",
            "acct",
            "quotactl",
            "quotactl_fd",
            "syslog",
            "lookup_dcookie",
            "name_to_handle_at",
            "open_by_handle_at",
            "fanotify_init",
            "sethostname",
            "setdomainname",
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "adjtimex",
            "iopl",
            "ioperm",
            "vhangup",
            "uselib",
            "_sysctl",
            "nfsservctl",
            "ustat",
            "sysfs",
        ),
        errno.EPERM,
    ),
}

# clone(2) flags that make a namespace (CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS,
# NEWIPC, NEWUSER, NEWPID, NEWNET)
NAMESPACE_FLAGS = (
    0x00000080,
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)


class SeccompUnavailable(RuntimeError):
    """libseccomp (or its binding) is missing, or the filter could not be built."""


def _library() -> Any:
    try:
        import pyseccomp
    except ImportError as exc:  # the binding is missing
        raise SeccompUnavailable(
            "the pyseccomp package is missing: install Parley with the `sandbox` extra"
        ) from exc
    except RuntimeError as exc:  # pyseccomp raises this when libseccomp is not found
        raise SeccompUnavailable(
            "libseccomp is missing: install it (Debian/Ubuntu: apt-get install libseccomp2)"
        ) from exc
    return pyseccomp


_cache: bytes | None = None


def compiled_filter() -> bytes:
    """The BPF program (``struct sock_filter`` array) bubblewrap loads; built once."""
    global _cache
    if _cache is None:
        _cache = _build()
    return _cache


def _build() -> bytes:
    sc = _library()
    flt = sc.SyscallFilter(sc.ALLOW)
    arch = sc.system_arch()
    try:
        for name, err in DENIED.items():
            if sc.resolve_syscall(arch, name) < 0:
                continue  # not a syscall on this architecture (or unknown to this libseccomp)
            flt.add_rule(sc.ERRNO(err), name)
        for flag in NAMESPACE_FLAGS:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        # personality: only 0 and 0xffffffff (the kernel reads the low 32 bits). A value
        # other than those has two cyclically adjacent bits that differ, and each
        # such pair is one masked comparison (libseccomp allows one per argument).
        for bit in range(32):
            pair = (1 << bit) | (1 << ((bit + 1) % 32))
            for datum in (1 << bit, 1 << ((bit + 1) % 32)):
                flt.add_rule(
                    sc.ERRNO(errno.EPERM), "personality", sc.Arg(0, sc.MASKED_EQ, pair, datum)
                )
        fd = os.memfd_create("seccomp-build", os.MFD_CLOEXEC)
        try:
            flt.export_bpf(_Fd(fd))
            size = os.lseek(fd, 0, os.SEEK_END)
            program = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SeccompUnavailable(f"the seccomp filter could not be built: {exc}") from exc
    if not program or len(program) % 8:
        raise SeccompUnavailable("libseccomp produced no filter")
    return program


class _Fd:
    """What ``export_bpf`` wants: an object with ``fileno()``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def filter_memfd() -> int:
    """A file descriptor (not close-on-exec) holding the program, for ``--seccomp FD``."""
    program = compiled_filter()
    fd = os.memfd_create("seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def unavailable_reason() -> str:
    """Why the filter cannot be built here ('' when it can)."""
    try:
        compiled_filter()
    except SeccompUnavailable as exc:
        return str(exc)
    return ""
