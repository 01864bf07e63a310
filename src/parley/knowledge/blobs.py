"""Content-addressed storage of uploaded bytes, in the instance's object store.

A blob's key is derived from its SHA-256 only (``ab/abcdef...`` under
``files/``), never from anything the client sent, so a name like
``../../etc/passwd`` is just a label. The same bytes uploaded twice (by anyone)
are stored once; records in the database say who may see them. A blob is
removed right after the commit that deletes its last record
(``KnowledgeService.release_blob``, recorded first in the deletion journal so a
crash in between does not keep it).

The store is ``parley.storage.objects``': the data directory (``<data
dir>/files/ab/<sha256>``, as always) or an S3 bucket. Uploads are spooled and
hashed in ``root`` on this machine first. Parsers and the code sandbox need a
file on disk: with a remote store, ``local()`` keeps a copy in ``root/.cache``
(an upload leaves its spooled copy there, so ingestion right after it
downloads nothing), removed with the blob and when unused for a day.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from parley.storage.objects import LocalObjectStore, ObjectStore, Scoped

__all__ = ["BlobStore", "TooLarge"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
CACHE_DIR = ".cache"


class TooLarge(Exception):
    pass


class BlobStore:
    def __init__(self, root: Path, objects: ObjectStore | Scoped | None = None) -> None:
        """``root``: this machine's folder for spooled uploads (and, with a remote
        ``objects``, the cache); ``objects`` None: the blobs live in ``root`` itself."""
        self.root = root
        self.objects: ObjectStore | Scoped = objects or LocalObjectStore(root)
        self.remote = self.objects.local_path("00/" + "0" * 64) is None

    @staticmethod
    def key(sha256: str) -> str:
        if not _SHA.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return f"{sha256[:2]}/{sha256}"

    def _cached(self, sha256: str) -> Path:
        return self.root / CACHE_DIR / self.key(sha256)

    def local(self, sha256: str) -> Path:
        """A file on this machine with the blob's bytes (blocking: a remote blob is
        downloaded into the cache). Raises ``FileNotFoundError`` when it is gone."""
        key = self.key(sha256)
        path = self.objects.local_path(key)
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(key)
            return path
        cached = self._cached(sha256)
        if cached.is_file():
            os.utime(cached)  # recently used: kept by the cache's pruning
            return cached
        self.objects.download(key, cached)
        return cached

    def exists(self, sha256: str) -> bool:
        return self.objects.stat(self.key(sha256)) is not None

    def spool(self, source: BinaryIO, max_bytes: int) -> tuple[Path, str, int]:
        """Copy ``source`` into a temporary file in ``root``, hashing as it goes.

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

    def commit(self, tmp: Path, sha256: str) -> None:
        """Put a spooled file in place under its content address (replacing an
        identical copy). The blob's modification time is now: it says when the blob
        was last put in place, which ``delete`` compares with when records were
        checked. Blocking."""
        key = self.key(sha256)
        if isinstance(self.objects, LocalObjectStore):
            self.objects.move_in(key, tmp)
            return
        try:
            self.objects.put_file(key, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        cached = self._cached(sha256)
        cached.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, cached)

    def delete(
        self, sha256: str, min_age_s: float = 0.0, *, unless_written_after: float | None = None
    ) -> bool:
        """Remove a blob, unless it was (re)written less than ``min_age_s`` ago or after
        ``unless_written_after`` (a time stamp): an upload of the same bytes that
        committed its record after the caller checked for records puts its copy in
        place *after* that commit, so a newer blob is that upload's. True when the
        blob is gone. Blocking."""
        key = self.key(sha256)
        info = self.objects.stat(key)
        if info is not None:
            if min_age_s and time.time() - info.modified < min_age_s:
                return False
            if unless_written_after is not None and info.modified > unless_written_after:
                return False
            self.objects.delete(key)
        self._cached(sha256).unlink(missing_ok=True)
        return True

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

    def copy_to(self, sha256: str, destination: BinaryIO) -> None:
        for block in self.objects.iter_chunks(self.key(sha256)):
            destination.write(block)

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob's bytes a chunk at a time (downloads stream from the store)."""
        return self.objects.iter_chunks(self.key(sha256))

    def digests(self) -> Iterator[tuple[str, float]]:
        """(sha256, when written) of every stored blob (the orphan sweep)."""
        for info in self.objects.list():
            name = info.key.rpartition("/")[2]
            if _SHA.fullmatch(name) and info.key == self.key(name):
                yield name, info.modified

    def prune_cache(self, max_age_s: float) -> int:
        """Remove cached copies of remote blobs unused for ``max_age_s``."""
        if not self.remote:
            return 0
        removed = 0
        cutoff = time.time() - max_age_s
        for path in (self.root / CACHE_DIR).glob("??/*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
