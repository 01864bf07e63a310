"""The images feature's share of a user's export, import and account deletion.

Exported: every image's record (prompt, lineage, provider, size, digest); with
``ExportJob.with_files`` the bytes go into the ZIP too. Import gives images new
ids (keeping their lineage and following the core's new conversation ids) and
restores an image only with its bytes from the ZIP, checked like any image
(``pictures.inspect``). Deletion removes the rows, then (after the commit) the
bytes no other row names; a crash in between leaves orphans the start-up sweep
removes. A deleted conversation's images stay the user's (their
``conversation_id`` becomes null): they are files in their own right, except a
*temporary* chat's, which go with it (a temporary chat keeps nothing), by the same
hook as a ``ConversationData``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import InvalidImport, Refused
from parley.images.pictures import inspect
from parley.images.service import ImageService
from parley.images.tables import ImageRecord
from parley.storage.tables import Conversation, new_id, utcnow
from parley.userdata import DeleteJob, ExportJob, ImportJob

__all__ = ["ImagesUserData"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(max_length=64)
    parent_id: str | None = Field(default=None, max_length=64)
    root_id: str | None = Field(default=None, max_length=64)
    conversation_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    operation: str = Field(default="generate", pattern=r"^(generate|edit|variation)$")
    prompt: str = Field(default="", max_length=100_000)
    negative_prompt: str = Field(default="", max_length=100_000)
    seed: int | None = None
    provider: str = Field(default="", max_length=64)
    model: str = Field(default="", max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    cost: float = 0.0
    created_at: datetime | None = None


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")
    images: list[_Record] = Field(default_factory=list, max_length=1_000_000)


class ImagesUserData:
    name = "images"

    def __init__(self, service: ImageService) -> None:
        self.service = service

    async def export(self, session: AsyncSession, user_id: str, job: ExportJob) -> dict[str, Any]:
        rows = list(
            await session.scalars(
                select(ImageRecord)
                .where(ImageRecord.user_id == user_id)
                .order_by(ImageRecord.created_at, ImageRecord.id)
            )
        )
        if job.with_files:
            for row in rows:
                path = self.service.blobs.path(row.sha256)
                if path.is_file():
                    job.files[row.sha256] = path
        return {
            "images": [
                {
                    "id": r.id,
                    "parent_id": r.parent_id,
                    "root_id": r.root_id,
                    "conversation_id": r.conversation_id,
                    "message_id": r.message_id,
                    "operation": r.operation,
                    "prompt": r.prompt,
                    "negative_prompt": r.negative_prompt,
                    "seed": r.seed,
                    "provider": r.provider,
                    "model": r.model,
                    "media_type": r.media_type,
                    "width": r.width,
                    "height": r.height,
                    "size_bytes": r.size_bytes,
                    "sha256": r.sha256,
                    "cost": r.cost,
                    "created_at": r.created_at.isoformat().replace("+00:00", "Z"),
                }
                for r in rows
            ]
        }

    async def import_data(
        self, session: AsyncSession, user_id: str, data: Any, job: ImportJob
    ) -> dict[str, int]:
        try:
            part = _Part.model_validate(data or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidImport(
                f"The export's images are not valid: {error['loc']}: {error['msg']}."
            ) from None
        ids = {r.id: new_id() for r in part.images}
        restored = 0
        settings = self.service.settings
        for record in part.images:
            source = job.files.get(record.sha256)
            if source is None:
                continue  # without its bytes an image cannot come back
            data_bytes = await asyncio.to_thread(source.read_bytes)
            if hashlib.sha256(data_bytes).hexdigest() != record.sha256:
                continue
            try:
                picture = await asyncio.to_thread(
                    inspect,
                    data_bytes,
                    max_bytes=settings.images_max_bytes,
                    max_pixels=settings.images_max_pixels,
                )
            except Refused:
                continue
            await asyncio.to_thread(self.service.blobs.put, data_bytes)
            new = ids[record.id]
            session.add(
                ImageRecord(
                    id=new,
                    user_id=user_id,
                    conversation_id=job.conversations.get(record.conversation_id or ""),
                    message_id=job.messages.get(record.message_id or ""),
                    parent_id=None,
                    root_id=ids.get(record.root_id or "", new),
                    operation=record.operation,
                    prompt=record.prompt,
                    negative_prompt=record.negative_prompt,
                    size=f"{picture.width}x{picture.height}",
                    seed=record.seed,
                    provider=record.provider,
                    model=record.model,
                    media_type=picture.media_type,
                    width=picture.width,
                    height=picture.height,
                    size_bytes=len(data_bytes),
                    sha256=record.sha256,
                    cost=record.cost,
                    created_at=record.created_at or utcnow(),
                )
            )
            restored += 1
        await session.flush()
        # Parents after every row exists (a parent may come after its child in the file).
        for record in part.images:
            if record.parent_id and record.parent_id in ids:
                row = await session.get(ImageRecord, ids[record.id])
                parent = await session.get(ImageRecord, ids[record.parent_id])
                if row is not None and parent is not None:
                    row.parent_id = parent.id
        return {"images": restored}

    async def delete(self, session: AsyncSession, user_id: str, job: DeleteJob) -> None:
        shas = await self.service.delete_rows(session, user_id)

        async def release() -> None:
            await self.service.release(shas)

        job.after_commit.append(release)

    async def delete_conversations(
        self,
        session: AsyncSession,
        user_id: str,
        conversation_ids: Sequence[str],
        job: DeleteJob,
    ) -> None:
        temporary = select(Conversation.id).where(
            Conversation.id.in_(list(conversation_ids)),
            Conversation.user_id == user_id,
            Conversation.temporary.is_(True),
        )
        doomed = ImageRecord.user_id == user_id, ImageRecord.conversation_id.in_(temporary)
        shas = list(await session.scalars(select(ImageRecord.sha256).where(*doomed)))
        if not shas:
            return
        ids = select(ImageRecord.id).where(*doomed)
        await session.execute(
            ImageRecord.__table__.update()  # type: ignore[attr-defined]
            .where(ImageRecord.parent_id.in_(ids))
            .values(parent_id=None)
        )
        await session.execute(delete(ImageRecord).where(*doomed))

        async def release() -> None:
            await self.service.release(shas)

        job.after_commit.append(release)
