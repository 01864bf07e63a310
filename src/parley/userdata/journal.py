"""Bytes to remove once a deletion has committed, written down before the commit.

A deletion removes rows in one transaction and bytes on disk (uploaded blobs,
code outputs) after it commits: before the commit they may still be needed
(the transaction can fail), and a file cannot be part of a database
transaction. If the process dies between the commit and the removal, nothing
in the database says the bytes are to go any more. So a hook that removes
bytes first ``record``s what it will remove here (a small JSON file, written
and flushed to disk before the commit), removes the entry when its after-commit
work is done, and the feature ``replay``s what is left when it starts (and
periodically).

Why a journal rather than only an orphan sweep (remove whatever no row points
at): a sweep must leave young files alone (an upload or an output is written
before or just after its row commits), so after a crash it would keep a
recently uploaded file of a deleted account for that grace period or, with a
sweep only at start, until the next restart. An entry names exactly what a
committed deletion released, so replay removes it at once. Why a file and not
a table: it needs no migration and lives beside the bytes it describes (the
same disk, the same backups). Replay is safe for a deletion that did *not*
commit: an entry is only a candidate list, and each feature removes bytes only
when no row points at them any more. The features keep their orphan sweep for
what no entry names (bytes written by a request that failed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["DeletionJournal"]

log = logging.getLogger(__name__)


class DeletionJournal:
    """Pending removals under ``root`` (one JSON file per deletion)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def record(self, entry: dict[str, Any]) -> Path:
        """Write ``entry`` durably (flushed, directory too); returns its handle."""
        return await asyncio.to_thread(self._write, entry)

    def _write(self, entry: dict[str, Any]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"
        target = self.root / name
        tmp = self.root / f".{name}.part"
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(entry, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return target

    async def done(self, handle: Path) -> None:
        await asyncio.to_thread(handle.unlink, missing_ok=True)

    def _pending(self, older_than_s: float) -> list[tuple[Path, dict[str, Any]]]:
        if not self.root.is_dir():
            return []
        now = time.time()
        out: list[tuple[Path, dict[str, Any]]] = []
        for path in sorted(self.root.glob("*.json")):
            try:
                if older_than_s and now - path.stat().st_mtime < older_than_s:
                    continue
                entry = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue  # done meanwhile
            except (OSError, ValueError):
                log.warning("unreadable deletion journal entry %s; removed", path.name)
                path.unlink(missing_ok=True)
                continue
            if isinstance(entry, dict):
                out.append((path, entry))
        return out

    async def replay(
        self,
        apply: Callable[[dict[str, Any]], Awaitable[None]],
        *,
        older_than_s: float = 0.0,
    ) -> int:
        """Apply every entry at least ``older_than_s`` old, removing each once it is
        applied (one that fails stays for the next replay). Returns how many were."""
        applied = 0
        for path, entry in await asyncio.to_thread(self._pending, older_than_s):
            try:
                await apply(entry)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a pending deletion (%s) could not be completed", path.name)
                continue
            await self.done(path)
            applied += 1
        return applied
