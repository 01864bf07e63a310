"""Content-addressed storage of uploaded bytes under ``<data dir>/files``.

A blob's path is derived from its SHA-256 only (``files/ab/abcdef...``), never
from anything the client sent, so a name like ``../../etc/passwd`` is just a
label. The same bytes uploaded twice (by anyone) are stored once; records in
the database say who may see them. A blob is removed right after the commit
that deletes its last record (``KnowledgeService.release_blob``, recorded first
in the deletion journal so a crash in between does not keep it).
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
        """Move a spooled file to its content address (replacing an identical copy).
        The blob's modification time is set to now first: it says when the blob was
        last put in place, which ``delete`` compares with when records were checked."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.utime(tmp)
        os.replace(tmp, target)
        return target

    def delete(
        self, sha256: str, min_age_s: float = 0.0, *, unless_written_after: float | None = None
    ) -> bool:
        """Remove a blob, unless it was (re)written less than ``min_age_s`` ago or after
        ``unless_written_after`` (a time stamp): an upload of the same bytes that
        committed its record after the caller checked for records moves its copy
        in place *after* that commit, so a newer blob is that upload's. True when
        the blob is gone."""
        path = self.path(sha256)
        try:
            written = path.stat().st_mtime
        except FileNotFoundError:
            return True
        if min_age_s and time.time() - written < min_age_s:
            return False
        if unless_written_after is not None and written > unless_written_after:
            return False
        path.unlink(missing_ok=True)
        return True

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

    def copy_to(self, sha256: str, destination: BinaryIO) -> None:
        with self.path(sha256).open("rb") as fh:
            shutil.copyfileobj(fh, destination, _CHUNK)
