"""An upload, from the client's bytes to a record the ingestion worker picks up.

``Uploads.upload`` is the one pipeline (``KnowledgeService.upload`` calls it):

1. the target, a conversation (attach) or a collection, must be the user's;
2. the bytes are spooled into the blob store's temporary area and hashed,
   refused past ``files_max_bytes``;
3. ``sniff`` decides what the file really is and refuses hostile or broken
   ones (page limit, zip bombs, encrypted containers) before anything parses it;
4. the same bytes already uploaded to the same place are that record again
   (``duplicate``), unless their blob is gone;
5. the record is committed *before* the bytes move into place, so a concurrent
   delete of another record of the same bytes sees this one and keeps the blob;
6. images are ready at once; everything else is queued for ingestion.

No database connection is held while the bytes are read. Every refusal is a
domain error (``parley.errors``); the temporary copy never outlives a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from parley.config import Settings
from parley.errors import Busy, Invalid, NotFound, TooLarge, UnsupportedContent
from parley.knowledge.blobs import BlobStore
from parley.knowledge.blobs import TooLarge as SpoolTooLarge
from parley.knowledge.ingest import Ingestor
from parley.knowledge.sniff import UploadRejected, check_limits, detect, safe_filename
from parley.knowledge.store import KnowledgeStore
from parley.knowledge.tables import KnowledgeFile
from parley.storage.db import Database

__all__ = ["Uploaded", "Uploads", "refusal"]


@dataclass(slots=True)
class Uploaded:
    """The file's record; ``duplicate``: the same bytes were already there."""

    file: KnowledgeFile
    duplicate: bool


def refusal(exc: UploadRejected) -> Invalid | TooLarge | UnsupportedContent:
    """``sniff``'s refusal as a domain error (its code and sentence kept)."""
    if exc.status == 413:
        return TooLarge(exc.detail, exc.code)
    if exc.status == 415:
        return UnsupportedContent(exc.detail, exc.code)
    return Invalid(exc.detail, exc.code)


class Uploads:
    def __init__(
        self, db: Database, settings: Settings, blobs: BlobStore, ingestor: Ingestor
    ) -> None:
        """``settings``: the ``files_max_*`` limits."""
        self._db = db
        self._limits = settings
        self._blobs = blobs
        self._ingestor = ingestor
        self._in_flight: Counter[str] = Counter()

    @contextlib.contextmanager
    def slot(self, user_id: str) -> Iterator[None]:
        """Room for one upload of ``user_id``, taken before its bytes are read.

        Uploads are bounded per account and per worker (``files_uploads_per_user``,
        ``files_uploads_total``), so parallel uploads cannot fill the disk with
        spooled bodies; past either bound the request is refused (``Busy``, 429).
        """
        per_user, total = self._limits.files_uploads_per_user, self._limits.files_uploads_total
        if self._in_flight[user_id] >= per_user:
            raise Busy(
                f"You are already uploading {per_user} files; "
                "wait for one to finish, then try again."
            )
        if self._in_flight.total() >= total:
            raise Busy("The server is receiving many uploads right now; try again in a moment.")
        self._in_flight[user_id] += 1
        try:
            yield
        finally:
            self._in_flight[user_id] -= 1
            if not self._in_flight[user_id]:
                del self._in_flight[user_id]

    async def upload(
        self,
        user_id: str,
        source: BinaryIO,
        filename: str | None,
        *,
        conversation_id: str | None = None,
        collection_id: str | None = None,
    ) -> Uploaded:
        """Store ``source`` in a conversation, a collection, or the user's library."""
        limits, blobs = self._limits, self._blobs
        project_id = assistant_id = None
        async with self._db.session() as session:
            store = KnowledgeStore(session, user_id)
            if conversation_id is not None:
                conv = await store.conversation(conversation_id)
                if conv is None:
                    raise NotFound("conversation")
                project_id, assistant_id = conv.project_id, conv.assistant_id
            if collection_id is not None and await store.collection(collection_id) is None:
                raise NotFound("collection")
        name = safe_filename(filename)
        try:
            tmp, sha256, size = await asyncio.to_thread(blobs.spool, source, limits.files_max_bytes)
        except SpoolTooLarge:
            raise TooLarge(
                f"'{name}' is larger than the {limits.files_max_bytes:,}-byte limit for files.",
                "file_too_large",
            ) from None
        try:
            detected = await asyncio.to_thread(detect, tmp, name)
            pages = await asyncio.to_thread(
                check_limits,
                tmp,
                detected,
                name,
                max_pages=limits.files_max_pages,
                max_unzipped_bytes=limits.files_max_unzipped_bytes,
                max_ratio=limits.files_max_zip_ratio,
            )
        except UploadRejected as exc:
            blobs.discard(tmp)
            raise refusal(exc) from None
        except BaseException:
            blobs.discard(tmp)
            raise
        is_image = detected.kind == "image"
        try:
            async with self._db.session() as session:
                store = KnowledgeStore(session, user_id)
                existing = await store.duplicate(sha256, conversation_id, collection_id)
                if existing is not None and blobs.exists(sha256):
                    blobs.discard(tmp)
                    return Uploaded(existing, duplicate=True)
                row = await store.add_file(
                    conversation_id=conversation_id,
                    collection_id=collection_id,
                    project_id=project_id,
                    assistant_id=assistant_id,
                    sha256=sha256,
                    filename=name,
                    media_type=detected.media_type,
                    kind=detected.kind,
                    size_bytes=size,
                    status="ready" if is_image else "queued",
                    pages=pages,
                )
                await session.commit()
        except BaseException:
            blobs.discard(tmp)
            raise
        await asyncio.to_thread(blobs.commit, tmp, sha256)
        if not is_image:
            await self._ingestor.enqueue(row.id, row.user_id)
        return Uploaded(row, duplicate=False)
