"""Content-addressed storage of uploaded bytes under ``<data dir>/files``.

A blob's path is derived from its SHA-256 only (``files/ab/abcdef...``), never
from anything the client sent, so a name like ``../../etc/passwd`` is just a
label. The same bytes uploaded twice (by anyone) are stored once; records in
the database say who may see them. A blob is removed when its last record goes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

__all__ = ["BlobStore", "TooLarge"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class TooLarge(Exception):
    pass


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not _SHA.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def spool(self, source: BinaryIO, max_bytes: int) -> tuple[Path, str, int]:
        """Copy ``source`` into a temporary file in the store, hashing as it goes.

        Returns (temporary path, sha256, size). Blocking: call from a thread.
        Raises ``TooLarge`` past ``max_bytes`` (the partial copy is removed).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    block = source.read(_CHUNK)
                    if not block:
                        break
                    size += len(block)
                    if size > max_bytes:
                        raise TooLarge
                    digest.update(block)
                    out.write(block)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest(), size

    def commit(self, tmp: Path, sha256: str) -> Path:
        """Move a spooled file to its content address (replacing an identical copy, so
        the blob's modification time says when it was last uploaded)."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        return target

    def delete(self, sha256: str, min_age_s: float = 0.0) -> None:
        """Remove a blob, unless it was (re)written less than ``min_age_s`` ago."""
        path = self.path(sha256)
        try:
            if min_age_s and time.time() - path.stat().st_mtime < min_age_s:
                return
        except FileNotFoundError:
            return
        path.unlink(missing_ok=True)

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

    def copy_to(self, sha256: str, destination: BinaryIO) -> None:
        with self.path(sha256).open("rb") as fh:
            shutil.copyfileobj(fh, destination, _CHUNK)
