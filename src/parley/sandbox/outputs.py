"""Outputs of the code interpreter: stored per user and conversation, served safely.

Bytes go to ``<data dir>/sandbox/outputs/<user>/<conversation>/<id>``, or the
same key under ``sandbox/outputs/`` in the S3 bucket (``parley.storage.objects``;
the stored name is the random id, never the sandbox-chosen filename); a row in
``sandbox_outputs`` keeps the filename and media type. The media type is picked
from a short allow-list and checked against the file's first bytes, so a file
named ``x.png`` holding HTML is served as ``application/octet-stream``; SVG and
HTML are never served as themselves (stored XSS).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from parley.messages import StepAttachment
from parley.sandbox.tables import SandboxOutput
from parley.storage.db import Database
from parley.storage.objects import LocalObjectStore, ObjectMissing, ObjectStore, Scoped, check_key
from parley.storage.tables import new_id

__all__ = ["Attachment", "OutputBudget", "OutputStore", "media_type_for"]

_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_IMAGES = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
}
_BY_SUFFIX = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".md": "text/plain",
    ".json": "application/json",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}
_MAGIC = {"application/pdf": b"%PDF", "application/zip": b"PK", _BY_SUFFIX[".xlsx"]: b"PK"}


def media_type_for(filename: str, head: bytes) -> tuple[str, str]:
    """``(media_type, kind)`` for a file; ``kind`` is ``image`` only for real images."""
    suffix = Path(filename).suffix.lower()
    media = _BY_SUFFIX.get(suffix, "application/octet-stream")
    if media in _IMAGES:
        return (
            (media, "image")
            if head.startswith(_IMAGES[media])
            else (
                "application/octet-stream",
                "file",
            )
        )
    magic = _MAGIC.get(media)
    if magic is not None and not head.startswith(magic):
        return "application/octet-stream", "file"
    return media, "file"


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a tool step carries for the web app (also stored in the step's dict)."""

    id: str
    filename: str
    media_type: str
    kind: str
    size: int

    @property
    def url(self) -> str:
        return f"/api/sandbox/outputs/{self.id}"

    def as_dict(self) -> StepAttachment:
        return {
            "id": self.id,
            "filename": self.filename,
            "media_type": self.media_type,
            "kind": self.kind,
            "size": self.size,
            "url": self.url,
        }


class OutputBudget:
    """The bytes of outputs one call may still keep (files and images together)."""

    def __init__(self, remaining: int) -> None:
        self.remaining = max(0, remaining)

    def take(self, size: int) -> bool:
        """Count ``size`` bytes against the budget; False (nothing counted) when over it."""
        if size > self.remaining:
            return False
        self.remaining -= size
        return True


class OutputStore:
    """Saves outputs and looks them up for their owner only."""

    def __init__(
        self, db: Database, root: Path, objects: ObjectStore | Scoped | None = None
    ) -> None:
        """``root``: ``<data dir>/sandbox/outputs``, where the bytes go unless
        ``objects`` (the S3 bucket's ``sandbox/outputs/``) is given."""
        self.db = db
        self.root = root
        self.objects: ObjectStore | Scoped = objects or LocalObjectStore(root)

    async def save(
        self, user_id: str, conversation_id: str | None, filename: str, data: bytes
    ) -> Attachment:
        media, kind = media_type_for(filename, data[:16])
        output_id = new_id()
        rel = Path(_SAFE_ID.sub("_", user_id)) / _SAFE_ID.sub("_", conversation_id or "none")
        rel = rel / output_id
        await asyncio.to_thread(self.objects.put_bytes, rel.as_posix(), data)
        async with self.db.session() as session:
            session.add(
                SandboxOutput(
                    id=output_id,
                    user_id=user_id,
                    conversation_id=conversation_id,
                    filename=filename[:255],
                    media_type=media,
                    kind=kind,
                    size=len(data),
                    path=str(rel),
                )
            )
            await session.commit()
        return Attachment(output_id, filename[:255], media, kind, len(data))

    async def used_bytes(self, user_id: str) -> int:
        """Bytes of outputs stored for ``user_id`` (what the per-user quota counts)."""
        async with self.db.session() as session:
            total = await session.scalar(
                select(func.coalesce(func.sum(SandboxOutput.size), 0)).where(
                    SandboxOutput.user_id == user_id
                )
            )
        return int(total or 0)

    async def get(
        self, user_id: str, output_id: str
    ) -> tuple[SandboxOutput, Path | Iterator[bytes]] | None:
        """The row and bytes of ``output_id`` when it belongs to ``user_id``: a file on
        this machine (the local store), or a stream of chunks (S3)."""
        async with self.db.session() as session:
            row = await session.scalar(
                select(SandboxOutput).where(
                    SandboxOutput.id == output_id, SandboxOutput.user_id == user_id
                )
            )
        if row is None:
            return None
        try:
            check_key(row.path)
        except ValueError:
            return None
        local = self.objects.local_path(row.path)
        if local is not None:
            return (row, local) if local.is_file() else None
        try:
            return row, await asyncio.to_thread(self.objects.iter_chunks, row.path)
        except ObjectMissing:
            return None
