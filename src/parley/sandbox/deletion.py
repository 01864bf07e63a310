"""The code interpreter's share of a user's data: outputs and kernels, deleted.

``SandboxData`` is the sandbox feature's ``UserData`` (account deletion, and the
outputs' metadata in an export) and ``ConversationData`` (a deleted
conversation). In the deleting transaction it removes the ``sandbox_outputs``
rows and writes a deletion-journal entry (``parley.userdata.journal``); after
the commit it kills the user's kernels (all of them, or the conversations'
ones, with whatever was copied into their ``/mnt/data``) and removes the output
files, then the entry. A crash between the commit and that step leaves the
entry, which the feature replays when it starts. The bytes live under
``<data dir>/sandbox/outputs/<user>/<conversation>/<id>`` (``outputs.py``
computes the same path): a file there is removed only when no row points at
it, so replaying the entry of a deletion that did not commit keeps everything.

``collect_orphan_outputs`` (at start and hourly) removes output files no row
points at that are an hour old: an output is written just before its row is
committed, and one a run saved while its conversation was being deleted has
no row to commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.sandbox.manager import SandboxManager
from parley.sandbox.tables import SandboxOutput
from parley.storage.db import Database
from parley.storage.objects import Scoped
from parley.userdata import DeleteJob, ExportJob, ImportJob
from parley.userdata.journal import DeletionJournal

__all__ = ["ORPHAN_MIN_AGE_S", "SandboxData", "output_dir"]

log = logging.getLogger(__name__)

ORPHAN_MIN_AGE_S = 3600.0
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")  # as outputs.py names the directories


def output_dir(root: Path, user_id: str, conversation_id: str | None = None) -> Path:
    """Where ``OutputStore.save`` puts a user's (or one conversation's) outputs."""
    user_dir = root / _SAFE_ID.sub("_", user_id)
    if conversation_id is None:
        return user_dir
    return user_dir / _SAFE_ID.sub("_", conversation_id)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class SandboxData:
    name = "sandbox"

    def __init__(
        self,
        db: Database,
        root: Path,
        journal: DeletionJournal,
        manager: Callable[[], SandboxManager | None],
        objects: Scoped | None = None,
    ) -> None:
        """``root``: ``<data dir>/sandbox/outputs``; ``manager``: the running kernels'
        manager, or None when code execution is off; ``objects``: the outputs' S3
        store, when they are not under ``root``."""
        self.db = db
        self.root = root
        self.objects = objects
        self.journal = journal
        self._manager = manager

    # ------------------------------------------------------------ export, import

    async def export(self, session: AsyncSession, user_id: str, job: ExportJob) -> dict[str, Any]:
        """The outputs' metadata (the bytes stay downloadable while the account exists)."""
        rows = await session.scalars(
            select(SandboxOutput)
            .where(SandboxOutput.user_id == user_id)
            .order_by(SandboxOutput.created_at, SandboxOutput.id)
        )
        return {
            "outputs": [
                {
                    "id": r.id,
                    "conversation_id": r.conversation_id,
                    "filename": r.filename,
                    "media_type": r.media_type,
                    "kind": r.kind,
                    "size": r.size,
                    "created_at": _iso(r.created_at),
                }
                for r in rows
            ]
        }

    async def import_data(
        self, session: AsyncSession, user_id: str, data: Any, job: ImportJob
    ) -> dict[str, int]:
        """Nothing is imported: an export carries no output bytes."""
        return {"outputs": 0}

    # ------------------------------------------------------------ deletion

    async def delete(self, session: AsyncSession, user_id: str, job: DeleteJob) -> None:
        """Every output of the user, and after the commit every kernel."""
        result = await session.execute(
            delete(SandboxOutput).where(SandboxOutput.user_id == user_id)
        )
        await self._plan(job, {"user_id": user_id, "conversation_ids": None}, _rows(result))

    async def delete_conversations(
        self,
        session: AsyncSession,
        user_id: str,
        conversation_ids: Sequence[str],
        job: DeleteJob,
    ) -> None:
        """The conversations' outputs, and after the commit their kernels."""
        ids = list(conversation_ids)
        result = await session.execute(
            delete(SandboxOutput).where(
                SandboxOutput.user_id == user_id, SandboxOutput.conversation_id.in_(ids)
            )
        )
        await self._plan(job, {"user_id": user_id, "conversation_ids": ids}, _rows(result))

    async def _plan(self, job: DeleteJob, entry: dict[str, Any], outputs: int) -> None:
        """Journal the removal when rows went (no row, no file a crash could strand:
        a stray file of the scope is still removed after the commit, or swept)."""
        handle = await self.journal.record(entry) if outputs else None

        async def finish() -> None:
            await self.close_kernels(entry)
            await self.apply(entry)
            if handle is not None:
                await self.journal.done(handle)

        job.after_commit.append(finish)

    async def close_kernels(self, entry: dict[str, Any]) -> None:
        manager = self._manager()
        if manager is None:
            return
        user_id = str(entry["user_id"])
        ids: list[str] | None = entry.get("conversation_ids")
        if ids is None:
            await manager.close_for(user_id)
        else:
            for conversation_id in ids:
                await manager.close_for(user_id, str(conversation_id))

    async def apply(self, entry: dict[str, Any]) -> None:
        """Remove the files of a journal entry's scope that no row points at."""
        user_id = entry.get("user_id")
        ids = entry.get("conversation_ids")
        if not isinstance(user_id, str) or not user_id or not isinstance(ids, list | None):
            log.warning("a deletion journal entry names no user; dropped")
            return
        query = select(SandboxOutput.path).where(SandboxOutput.user_id == user_id)
        if ids is not None:
            ids = [str(i) for i in ids if i and str(i) != "none"]  # never the user's whole dir
            query = query.where(SandboxOutput.conversation_id.in_(ids))
            dirs = [output_dir(self.root, user_id, i) for i in ids]
        else:
            dirs = [output_dir(self.root, user_id)]
        async with self.db.session() as session:
            kept = set((await session.scalars(query)).all())
        if self.objects is not None:
            prefixes = [d.relative_to(self.root).as_posix() + "/" for d in dirs]
            await asyncio.to_thread(_remove_unreferenced_objects, self.objects, prefixes, kept, 0.0)
            return
        await asyncio.to_thread(_remove_unreferenced, self.root, dirs, kept, 0.0)

    async def replay(self, older_than_s: float = 0.0) -> int:
        """Finish deletions whose after-commit step never ran (at start; hourly for
        entries at least ``older_than_s`` old). A process that died took its kernels."""
        return await self.journal.replay(self.apply, older_than_s=older_than_s)

    async def collect_orphan_outputs(self, min_age_s: float = ORPHAN_MIN_AGE_S) -> int:
        """Remove output files no row points at, ``min_age_s`` old at least."""
        if self.objects is None and not self.root.is_dir():
            return 0
        try:
            async with self.db.session() as session:
                kept = set((await session.scalars(select(SandboxOutput.path))).all())
            if self.objects is not None:
                return await asyncio.to_thread(
                    _remove_unreferenced_objects, self.objects, [""], kept, min_age_s
                )
            return await asyncio.to_thread(
                _remove_unreferenced, self.root, [self.root], kept, min_age_s
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("collecting unused code outputs failed")
            return 0


def _rows(result: Any) -> int:
    """Rows a DELETE removed (-1, "unknown", counts as some)."""
    count = getattr(result, "rowcount", -1)
    return 1 if count is None or count < 0 else int(count)


def _remove_unreferenced(root: Path, dirs: Iterable[Path], kept: set[str], min_age_s: float) -> int:
    """Unlink files under ``dirs`` whose path relative to ``root`` is not in ``kept``
    (and that are ``min_age_s`` old), then the directories left empty. Blocking."""
    now = time.time()
    removed = 0
    for top in dirs:
        if not top.is_dir() or top.is_symlink():
            continue
        for here, subdirs, names in os.walk(top, topdown=False):
            base = Path(here)
            for name in names:
                path = base / name
                try:
                    if min_age_s and now - path.lstat().st_mtime < min_age_s:
                        continue
                    if str(path.relative_to(root)) in kept:
                        continue
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
            for name in subdirs:
                _remove_if_empty(base / name, now, min_age_s)
        if top != root:
            _remove_if_empty(top, now, min_age_s)
    return removed


def _remove_unreferenced_objects(
    objects: Scoped, prefixes: Iterable[str], kept: set[str], min_age_s: float
) -> int:
    """``_remove_unreferenced`` in an object store: keys under ``prefixes`` that no
    row names (and ``min_age_s`` old) are deleted. Blocking."""
    now = time.time()
    removed = 0
    for prefix in prefixes:
        for info in list(objects.list(prefix)):
            if info.key in kept or (min_age_s and now - info.modified < min_age_s):
                continue
            objects.delete(info.key)
            removed += 1
    return removed


def _remove_if_empty(path: Path, now: float, min_age_s: float) -> None:
    with contextlib.suppress(OSError):  # not empty, or gone
        if min_age_s and now - path.lstat().st_mtime < min_age_s:
            return  # a save may be about to write into it
        path.rmdir()
