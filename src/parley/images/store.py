"""Image bytes on disk, content-addressed under ``<data dir>/images``.

A path comes from the SHA-256 of the bytes only (``images/ab/abcdef...``), never
from a name a client or provider sent. Rows of ``images`` say who may see a
blob; the same picture twice (an import, two identical drawings) is stored once
and removed when the last row naming it is deleted. Bytes are written before
the row commits; ``orphans`` finds blobs no row names (a crash between the
write and the commit, or between a deletion's commit and the unlink), swept at
start-up.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ImageBlobs"]

_SHA = re.compile(r"^[0-9a-f]{64}$")


class ImageBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not _SHA.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (atomically: a temporary file renamed); its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".new-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return sha

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def all(self, older_than_s: float = 0.0) -> Iterator[str]:
        """Every stored digest whose file is older than ``older_than_s``."""
        if not self.root.is_dir():
            return
        now = time.time()
        for sub in self.root.iterdir():
            if not sub.is_dir():
                continue
            for blob in sub.iterdir():
                if _SHA.fullmatch(blob.name) and now - blob.stat().st_mtime >= older_than_s:
                    yield blob.name
