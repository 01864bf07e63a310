"""The files-and-knowledge service: stored bytes, the index, retrieval, ingestion.

Built by the knowledge feature at start-up and provided to the rest of Parley
(its HTTP routes, the code sandbox's ``CONVERSATION_FILES``) through the seam;
it owns the objects whose lifetime is the app's, and nothing HTTP. The rules
of the files routes live here (upload in ``uploads.py``; download, delete,
search); refusals are domain errors of ``parley.errors``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from sqlalchemy import select

from parley.config import Settings
from parley.embeddings import Embedder
from parley.errors import Gone, NotFound
from parley.knowledge.blobs import BlobStore
from parley.knowledge.index import VectorIndex
from parley.knowledge.ingest import Ingestor
from parley.knowledge.retrieval import Hit, Retriever
from parley.knowledge.store import KnowledgeStore, blob_in_use
from parley.knowledge.tables import KnowledgeFile
from parley.knowledge.uploads import Uploaded, Uploads
from parley.storage.db import Database

__all__ = ["Download", "KnowledgeService", "Uploaded"]

log = logging.getLogger(__name__)

# What a download is served as: never HTML or SVG (they would run in our origin).
_SAFE_DOWNLOAD = {
    "pdf": "application/pdf",
    "image": None,  # the sniffed image type (png, jpeg, gif, webp)
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(slots=True, frozen=True)
class Download:
    """A file's stored bytes and a media type that cannot run in a browser."""

    path: Path
    media_type: str
    filename: str


def safe_media_type(row: KnowledgeFile) -> str:
    if row.kind == "image":
        return row.media_type
    return _SAFE_DOWNLOAD.get(row.kind) or (
        "text/plain; charset=utf-8"
        if row.media_type.startswith(("text/", "application/json"))
        else "application/octet-stream"
    )


class KnowledgeService:
    def __init__(
        self,
        db: Database,
        config: Settings,
        blobs: BlobStore,
        embedder: Embedder,
        index: VectorIndex,
        retriever: Retriever,
        ingestor: Ingestor,
    ) -> None:
        self._db = db
        self.config = config
        self.blobs = blobs
        self.embedder = embedder
        self.index = index
        self.retriever = retriever
        self.ingestor = ingestor
        self.uploads = Uploads(db, config, blobs, ingestor)

    # ------------------------------------------------------------ the files routes

    async def upload(
        self,
        user_id: str,
        source: BinaryIO,
        filename: str | None,
        *,
        conversation_id: str | None = None,
        collection_id: str | None = None,
    ) -> Uploaded:
        """See ``parley.knowledge.uploads``."""
        return await self.uploads.upload(
            user_id,
            source,
            filename,
            conversation_id=conversation_id,
            collection_id=collection_id,
        )

    async def download(self, user_id: str, file_id: str) -> Download:
        """The original bytes of the user's file (``Gone`` when they are missing)."""
        async with self._db.session() as session:
            row = await KnowledgeStore(session, user_id).file(file_id)
        if row is None:
            raise NotFound("file")
        path = self.blobs.path(row.sha256)
        if not path.is_file():
            raise Gone("The stored bytes of this file are missing.", "file_missing")
        return Download(path, safe_media_type(row), row.filename)

    async def delete_file(self, user_id: str, file_id: str) -> None:
        """Delete a file with its passages and vectors (and its bytes, if no one else has them)."""
        async with self._db.session() as session:
            store = KnowledgeStore(session, user_id)
            row = await store.file(file_id)
            if row is None:
                raise NotFound("file")
            sha256 = row.sha256
            await store.delete_file(row)
            await session.commit()
        self.index.invalidate(user_id)
        await self.release_blob(sha256)

    async def delete_collection(self, user_id: str, collection_id: str) -> None:
        """Delete a collection with its files (passages, vectors, and unshared bytes)."""
        async with self._db.session() as session:
            store = KnowledgeStore(session, user_id)
            row = await store.collection(collection_id)
            if row is None:
                raise NotFound("collection")
            blobs = await store.collection_blobs(row.id)
            await store.delete_collection(row)
            await session.commit()
        self.index.invalidate(user_id)
        for sha256 in set(blobs):
            await self.release_blob(sha256)

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        conversation_id: str | None = None,
        collection_id: str | None = None,
        file_ids: Sequence[str] | None = None,
        limit: int = 8,
        mode: Literal["hybrid", "keyword", "dense"] = "hybrid",
    ) -> list[Hit]:
        """Passages of the user's files for ``query`` (the retrieval answers use),
        within every scope given: a conversation's files, a collection, a list."""
        scope: list[str] | None = None
        async with self._db.session() as session:
            store = KnowledgeStore(session, user_id)
            if conversation_id is not None:
                if await store.conversation(conversation_id) is None:
                    raise NotFound("conversation")
                scope = [f.id for f in await store.scope_files(conversation_id)]
            if collection_id is not None:
                if await store.collection(collection_id) is None:
                    raise NotFound("collection")
                ids = [f.id for f in await store.files(collection_id=collection_id, limit=100_000)]
                scope = ids if scope is None else [i for i in scope if i in set(ids)]
            if file_ids is not None:
                owned = {f.id for f in await store.files_by_ids(file_ids)}
                scope = [i for i in file_ids if i in owned and (scope is None or i in scope)]
        return await self.retriever.search(user_id, query, file_ids=scope, limit=limit, mode=mode)

    async def conversation_files(
        self, user_id: str, conversation_id: str | None
    ) -> list[tuple[str, Path]]:
        """(filename, stored path) of the files a conversation sees, for the code
        sandbox (``parley.seam.CONVERSATION_FILES``). Names are made unique; the
        paths are read-only blobs."""
        if not conversation_id:
            return []
        async with self._db.session() as session:
            rows = await KnowledgeStore(session, user_id).scope_files(conversation_id)
        out: list[tuple[str, Path]] = []
        seen: set[str] = set()
        for row in rows:
            name, n = row.filename, 1
            while name in seen:
                n += 1
                stem, dot, ext = row.filename.rpartition(".")
                name = f"{stem} ({n}).{ext}" if dot and stem else f"{row.filename} ({n})"
            seen.add(name)
            path = self.blobs.path(row.sha256)
            if path.is_file():
                out.append((name, path))
        return out

    async def release_blob(self, sha256: str, min_age_s: float = 0.0) -> None:
        """Remove stored bytes once no record (of any user) points at them."""
        async with self._db.session() as session:
            if await blob_in_use(session, sha256):
                return
        await asyncio.to_thread(self.blobs.delete, sha256, min_age_s)

    async def collect_orphan_blobs(self) -> int:
        """Delete blobs no record points at (left by cascades: a deleted conversation
        or account removes records in the database, not files on disk)."""
        root = self.blobs.root
        if not root.is_dir():
            return 0
        try:
            names = await asyncio.to_thread(
                lambda: [p.name for p in root.glob("??/*") if len(p.name) == 64]
            )
            if not names:
                return 0
            async with self._db.session() as session:
                known = set((await session.scalars(select(KnowledgeFile.sha256).distinct())).all())
            removed = 0
            for sha256 in names:
                if sha256 not in known:  # an hour old at least: not an upload in flight
                    await self.release_blob(sha256, min_age_s=3600)
                    removed += 1
            return removed
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("collecting unused file blobs failed")
            return 0
