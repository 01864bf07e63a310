"""The knowledge feature's share of a user's export, import and account deletion.

Exported: every collection, every file's record (name, type, size, SHA-256,
status, where it is attached) and which collections each conversation uses;
with ``ExportJob.with_files`` the stored bytes go into the ZIP as well.
Passages and vectors are not exported: they are rebuilt from the bytes.

Import gives collections and files new ids and follows the core's new
conversation and message ids. A file comes back only with its bytes: from the
ZIP (checked like an upload: sniffed type, size and page limits), or, without a
ZIP, when this account already holds the same bytes. Owning a file's digest is
not proof of having its content, so a JSON import never claims another user's
blob. Restored files are queued for ingestion once the import has committed.
Bytes are written to the store before the commit; if the import then fails,
the start-up sweep removes them as unreferenced (``collect_orphan_blobs``).

Deletion removes the records, passages and vectors (keyword index entries and
pgvector rows go with their passages), and after the commit the user's cached
vectors and the bytes no other record points at (written down first in the
deletion journal: ``KnowledgeService.plan_release``). The same hook, as a
``ConversationData``, removes a deleted conversation's attachments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import InvalidImport
from parley.knowledge.blobs import TooLarge
from parley.knowledge.service import KnowledgeService
from parley.knowledge.sniff import UploadRejected, check_limits, detect, safe_filename
from parley.knowledge.tables import (
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeConversationCollection,
    KnowledgeConversationFile,
    KnowledgeFile,
)
from parley.storage.tables import new_id, utcnow
from parley.userdata import DeleteJob, ExportJob, ImportJob

__all__ = ["KnowledgeUserData"]

log = logging.getLogger(__name__)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _CollectionRecord(_In):
    id: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _FileRecord(_In):
    id: str = Field(max_length=64)
    filename: str = Field(max_length=1000)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    conversation_id: str | None = Field(default=None, max_length=64)
    collection_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = None


class _Link(_In):
    conversation_id: str = Field(max_length=64)
    collection_id: str = Field(max_length=64)


class _FileLink(_In):
    conversation_id: str = Field(max_length=64)
    file_id: str = Field(max_length=64)


class _KnowledgePart(_In):
    collections: list[_CollectionRecord] = Field(default_factory=list, max_length=100_000)
    files: list[_FileRecord] = Field(default_factory=list, max_length=1_000_000)
    conversation_collections: list[_Link] = Field(default_factory=list, max_length=1_000_000)
    conversation_files: list[_FileLink] = Field(default_factory=list, max_length=1_000_000)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class KnowledgeUserData:
    name = "knowledge"

    def __init__(self, service: KnowledgeService) -> None:
        self.service = service

    # ------------------------------------------------------------ export

    async def export(self, session: AsyncSession, user_id: str, job: ExportJob) -> dict[str, Any]:
        collections = await session.scalars(
            select(KnowledgeCollection)
            .where(KnowledgeCollection.user_id == user_id)
            .order_by(KnowledgeCollection.created_at, KnowledgeCollection.id)
        )
        files = list(
            await session.scalars(
                select(KnowledgeFile)
                .where(KnowledgeFile.user_id == user_id)
                .order_by(KnowledgeFile.created_at, KnowledgeFile.id)
            )
        )
        links = await session.scalars(
            select(KnowledgeConversationCollection).where(
                KnowledgeConversationCollection.user_id == user_id
            )
        )
        file_links = await session.scalars(
            select(KnowledgeConversationFile).where(KnowledgeConversationFile.user_id == user_id)
        )
        if job.with_files:
            for row in files:
                try:
                    path = await asyncio.to_thread(self.service.blobs.local, row.sha256)
                except FileNotFoundError:
                    continue
                job.files[row.sha256] = path
        return {
            "collections": [
                {
                    "id": c.id,
                    "name": c.name,
                    "description": c.description,
                    "created_at": _iso(c.created_at),
                    "updated_at": _iso(c.updated_at),
                }
                for c in collections
            ],
            "files": [
                {
                    "id": f.id,
                    "filename": f.filename,
                    "media_type": f.media_type,
                    "kind": f.kind,
                    "size_bytes": f.size_bytes,
                    "sha256": f.sha256,
                    "status": f.status,
                    "error_code": f.error_code,
                    "error": f.error,
                    "pages": f.pages,
                    "chunk_count": f.chunk_count,
                    "tokens": f.tokens,
                    "conversation_id": f.conversation_id,
                    "collection_id": f.collection_id,
                    "message_id": f.message_id,
                    "created_at": _iso(f.created_at),
                    "updated_at": _iso(f.updated_at),
                }
                for f in files
            ],
            "conversation_collections": [
                {"conversation_id": link.conversation_id, "collection_id": link.collection_id}
                for link in links
            ],
            "conversation_files": [
                {"conversation_id": link.conversation_id, "file_id": link.file_id}
                for link in file_links
            ],
        }

    # ------------------------------------------------------------ import

    async def import_data(
        self, session: AsyncSession, user_id: str, data: Any, job: ImportJob
    ) -> dict[str, int]:
        try:
            part = _KnowledgePart.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidImport(
                f"The export's files are not valid: {error['loc']}: {error['msg']}."
            ) from None
        now = utcnow()
        collections = {c.id: new_id() for c in part.collections}
        if part.collections:
            await session.execute(
                insert(KnowledgeCollection),
                [
                    {
                        "id": collections[c.id],
                        "user_id": user_id,
                        "name": c.name,
                        "description": c.description,
                        "created_at": c.created_at or now,
                        "updated_at": c.updated_at or c.created_at or now,
                    }
                    for c in part.collections
                ],
            )
        links = {
            (conv, coll)
            for link in part.conversation_collections
            if (conv := job.conversations.get(link.conversation_id))
            and (coll := collections.get(link.collection_id))
        }
        if links:
            await session.execute(
                insert(KnowledgeConversationCollection),
                [
                    {"conversation_id": conv, "collection_id": coll, "user_id": user_id}
                    for conv, coll in sorted(links)
                ],
            )
        owned = set(
            (
                await session.scalars(
                    select(KnowledgeFile.sha256).where(KnowledgeFile.user_id == user_id).distinct()
                )
            ).all()
        )
        rows: list[dict[str, Any]] = []
        skipped = 0
        file_ids: dict[str, str] = {}
        for f in part.files:
            conversation_id = job.conversations.get(f.conversation_id or "")
            collection_id = collections.get(f.collection_id or "")
            if (f.conversation_id and not conversation_id) or (
                f.collection_id and not collection_id
            ):
                skipped += 1  # its conversation or collection is not in the export
                continue
            described = await self._restore_bytes(session, user_id, f, job.files, owned)
            if described is None:
                skipped += 1
                continue
            owned.add(f.sha256)
            file_ids[f.id] = new_id()
            rows.append(
                {
                    **described,
                    "id": file_ids[f.id],
                    "user_id": user_id,
                    "conversation_id": conversation_id,
                    "collection_id": collection_id,
                    "message_id": job.messages.get(f.message_id or ""),
                    "sha256": f.sha256,
                    "filename": safe_filename(f.filename),
                    "status": "ready" if described["kind"] == "image" else "queued",
                    "created_at": f.created_at or now,
                    "updated_at": now,
                }
            )
        if rows:
            await session.execute(insert(KnowledgeFile), rows)
        picked = {
            (conv, file)
            for link in part.conversation_files
            if (conv := job.conversations.get(link.conversation_id))
            and (file := file_ids.get(link.file_id))
        }
        if picked:
            await session.execute(
                insert(KnowledgeConversationFile),
                [
                    {"conversation_id": conv, "file_id": file, "user_id": user_id}
                    for conv, file in sorted(picked)
                ],
            )
        queued = [r["id"] for r in rows if r["status"] == "queued"]
        service = self.service

        async def ingest() -> None:
            service.index.invalidate(user_id)
            for file_id in queued:
                await service.ingestor.enqueue(file_id, user_id)

        job.after_commit.append(ingest)
        return {"collections": len(collections), "files": len(rows), "files_skipped": skipped}

    async def _restore_bytes(
        self,
        session: AsyncSession,
        user_id: str,
        record: _FileRecord,
        files: Any,
        owned: set[str],
    ) -> dict[str, Any] | None:
        """Put the file's bytes in the store (checked like an upload) and describe
        them (kind, media type, size, pages); None when they cannot be restored."""
        path: Path | None = files.get(record.sha256)
        if path is None:
            if record.sha256 not in owned or not self.service.blobs.exists(record.sha256):
                return None
            twin = await session.scalar(
                select(KnowledgeFile)
                .where(KnowledgeFile.user_id == user_id, KnowledgeFile.sha256 == record.sha256)
                .limit(1)
            )
            if twin is None:
                return None
            return {
                "kind": twin.kind,
                "media_type": twin.media_type,
                "size_bytes": twin.size_bytes,
                "pages": twin.pages,
            }
        try:
            return await asyncio.to_thread(self._store_blob, path, record)
        except (UploadRejected, TooLarge, OSError) as exc:
            log.info("import: file %r not restored (%s)", record.filename, exc)
            return None

    def _store_blob(self, path: Path, record: _FileRecord) -> dict[str, Any] | None:
        config, blobs = self.service.config, self.service.blobs
        name = safe_filename(record.filename)
        detected = detect(path, name)
        pages = check_limits(
            path,
            detected,
            name,
            max_pages=config.files_max_pages,
            max_unzipped_bytes=config.files_max_unzipped_bytes,
            max_ratio=config.files_max_zip_ratio,
        )
        with path.open("rb") as source:
            tmp, sha256, size = blobs.spool(source, config.files_max_bytes)
        if sha256 != record.sha256:
            blobs.discard(tmp)
            return None
        blobs.commit(tmp, sha256)
        return {
            "kind": detected.kind,
            "media_type": detected.media_type,
            "size_bytes": size,
            "pages": pages,
        }

    # ------------------------------------------------------------ deletion

    async def delete(self, session: AsyncSession, user_id: str, job: DeleteJob) -> None:
        blobs = set(
            (
                await session.scalars(
                    select(KnowledgeFile.sha256).where(KnowledgeFile.user_id == user_id).distinct()
                )
            ).all()
        )
        await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.user_id == user_id))
        await session.execute(
            delete(KnowledgeConversationFile).where(KnowledgeConversationFile.user_id == user_id)
        )
        await session.execute(delete(KnowledgeFile).where(KnowledgeFile.user_id == user_id))
        await session.execute(
            delete(KnowledgeConversationCollection).where(
                KnowledgeConversationCollection.user_id == user_id
            )
        )
        await session.execute(
            delete(KnowledgeCollection).where(KnowledgeCollection.user_id == user_id)
        )
        job.after_commit.append(await self.service.plan_release(user_id, blobs))

    # ------------------------------------------------------ a conversation's deletion

    async def delete_conversations(
        self,
        session: AsyncSession,
        user_id: str,
        conversation_ids: Sequence[str],
        job: DeleteJob,
    ) -> None:
        """The conversations' attachments go (records, passages, vectors, and after
        the commit the bytes no other record has); collections stay, unlinked."""
        job.after_commit.append(
            await self.service.delete_conversation_files(session, user_id, conversation_ids)
        )
