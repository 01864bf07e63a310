"""Moving files in and out of a running sandbox without trusting it.

The working directory is a tmpfs inside the sandbox; the server reaches it at
``/proc/<pid>/root/mnt/data``. Sandboxed code controls every name in there and
may plant symlinks (an absolute one would resolve against the *server's*
root), FIFOs or huge files. So every call here walks with directory file
descriptors and ``O_NOFOLLOW``, opens with ``O_NONBLOCK``, accepts only
regular files, creates with ``O_EXCL`` and reads at most a limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from parley.sandbox.bwrap import WORK_DIR

__all__ = [
    "FileTooLarge",
    "Snapshot",
    "changed_files",
    "fs_identity",
    "read_file",
    "safe_name",
    "snapshot",
    "workdir_fd",
    "write_file",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 3
MAX_ENTRIES = 2000

Snapshot = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


class FileTooLarge(Exception):
    """A file is over the size limit; it is skipped with a note to the user."""


def safe_name(name: str) -> str:
    """A single, printable path component made from ``name`` ('' if nothing is left)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    cleaned = cleaned.strip().lstrip(".")[:200]
    return cleaned


@contextlib.contextmanager
def workdir_fd(sandbox_pid: int) -> Iterator[int]:
    """A directory fd for the sandbox's working directory, walked without symlinks."""
    # /proc/<pid>/root is a kernel magic link (trusted): open it without O_NOFOLLOW;
    # every component below it is the sandbox's and is walked with O_NOFOLLOW.
    fd = os.open(f"/proc/{sandbox_pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in WORK_DIR.strip("/").split("/"):
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def fs_identity(uid: int | None) -> Iterator[None]:
    """Create files as ``uid`` (this thread only) while inside the block.

    The sandbox's tmpfs belongs to its user namespace, where the server's root
    is not mapped (creating a file as root fails with EOVERFLOW). ``setfsuid``
    changes only the calling thread's filesystem identity, so run this in a
    worker thread.
    """
    if uid is None:
        yield
        return
    old_gid = _libc.setfsgid(uid)
    old_uid = _libc.setfsuid(uid)
    try:
        if _libc.setfsuid(-1) != uid:  # -1 is invalid: returns the current value
            raise PermissionError(f"cannot act as uid {uid} to place files in the sandbox")
        yield
    finally:
        _libc.setfsuid(old_uid)
        _libc.setfsgid(old_gid)


def write_file(dir_fd: int, name: str, source: BinaryIO) -> None:
    """Copy the open host file ``source`` to ``name`` in the working directory (replacing it)."""
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(name)
        os.unlink(name, dir_fd=dir_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(name, flags, 0o644, dir_fd=dir_fd)
    try:
        while chunk := source.read(1 << 20):
            os.write(out, chunk)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(out)


def snapshot(dir_fd: int) -> Snapshot:
    """Regular files under the working directory (a few levels deep), by relative path."""
    found: Snapshot = {}
    _walk(dir_fd, "", 0, found)
    return found


def _walk(dir_fd: int, prefix: str, depth: int, found: Snapshot) -> None:
    with contextlib.suppress(OSError), os.scandir(dir_fd) as entries:
        for entry in entries:
            if len(found) >= MAX_ENTRIES:
                return
            if entry.name.startswith("."):  # caches and checkpoints, not results
                continue
            rel = f"{prefix}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                found[rel] = (info.st_size, info.st_mtime_ns)
            elif stat.S_ISDIR(info.st_mode) and depth + 1 < MAX_DEPTH:
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue
                try:
                    _walk(sub, f"{rel}/", depth + 1, found)
                finally:
                    os.close(sub)


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths created or modified between two snapshots, in name order."""
    return sorted(path for path, sig in after.items() if before.get(path) != sig)


def read_file(dir_fd: int, rel: str, limit: int) -> bytes:
    """The bytes of regular file ``rel``; FileTooLarge above ``limit``; OSError otherwise."""
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise FileNotFoundError(rel)
    opened: list[int] = []
    try:
        current = dir_fd
        for part in parts[:-1]:
            current = os.open(part, _DIR_FLAGS, dir_fd=current)
            opened.append(current)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(parts[-1], flags, dir_fd=current)
        opened.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileNotFoundError(rel)
        if info.st_size > limit:
            raise FileTooLarge(rel)
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(rel)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        for fd in reversed(opened):
            os.close(fd)
