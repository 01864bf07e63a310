"""Host uids for sandboxed kernels when Parley runs as root: a block per worker.

Two users' kernels must never share a host uid: the process limit counts per
uid, so one user's fork bomb would starve the other's kernel. Inside a worker,
slots keep kernels apart (uid = block start + slot). Across the workers of one
host (``parley serve --workers N``, or several installs with the same
``SANDBOX_HOST_UID_BASE``), each worker holds an exclusive ``flock`` on one of
``MAX_BLOCKS`` lock files for as long as it runs, and the uids of that block
are its own. The kernel drops the lock when a process dies, so a crashed
worker's block is free again without any clean-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

MAX_BLOCKS = 64
LOCK_DIR = Path("/run/parley-sandbox")


class UidBlockError(RuntimeError):
    """Every block of host uids is held by another worker."""


class UidBlock:
    """``size`` host uids from ``base``, claimed on first use, released by ``release``."""

    def __init__(self, base: int, size: int, lock_dir: Path = LOCK_DIR) -> None:
        self.base, self.size, self.lock_dir = base, size, lock_dir
        self._index: int | None = None
        self._fd: int | None = None

    def uid(self, slot: int) -> int:
        if not 0 <= slot < self.size:
            raise ValueError(f"slot {slot} is outside this worker's {self.size} uids")
        if self._index is None:
            self._claim()
        assert self._index is not None
        return self.base + self._index * self.size + slot

    def _claim(self) -> None:
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for index in range(MAX_BLOCKS):
            path = self.lock_dir / f"uids-{self.base}-{index}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._index, self._fd = index, fd
            return
        raise UidBlockError(
            f"all {MAX_BLOCKS} blocks of sandbox uids from {self.base} are in use by other "
            "Parley workers; run fewer workers or give this install another "
            "SANDBOX_HOST_UID_BASE"
        )

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the last descriptor drops the flock
        self._index = self._fd = None
