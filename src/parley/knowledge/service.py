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
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import Settings
from parley.embeddings import Embedder
from parley.errors import Gone, NotFound
from parley.knowledge.blobs import BlobStore
from parley.knowledge.index import VectorIndex
from parley.knowledge.ingest import Ingestor
from parley.knowledge.retrieval import Hit, Retriever
from parley.knowledge.store import KnowledgeStore, ScopeLookup, also_for, blob_in_use
from parley.knowledge.tables import KnowledgeFile
from parley.knowledge.uploads import Uploaded, Uploads
from parley.storage.db import Database
from parley.userdata.journal import DeletionJournal

__all__ = ["Download", "KnowledgeService", "Uploaded"]

log = logging.getLogger(__name__)

CACHE_UNUSED_S = 86_400.0  # a remote blob's local copy unused this long is removed

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
        self.journal = DeletionJournal(config.data_dir / "deletions" / "knowledge")
        self.also: ScopeLookup | None = None  # more a chat sees (an assistant's knowledge)

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
        try:
            path = await asyncio.to_thread(self.blobs.local, row.sha256)
        except FileNotFoundError:
            raise Gone("The stored bytes of this file are missing.", "file_missing") from None
        return Download(path, safe_media_type(row), row.filename)

    async def delete_file(self, user_id: str, file_id: str) -> None:
        """Delete a file with its passages and vectors (and its bytes, if no one else has them)."""
        async with self._db.session() as session:
            store = KnowledgeStore(session, user_id)
            row = await store.file(file_id)
            if row is None:
                raise NotFound("file")
            release = await self.plan_release(user_id, [row.sha256])
            await store.delete_file(row)
            await session.commit()
        await release()

    async def delete_collection(self, user_id: str, collection_id: str) -> None:
        """Delete a collection with its files (passages, vectors, and unshared bytes)."""
        async with self._db.session() as session:
            store = KnowledgeStore(session, user_id)
            row = await store.collection(collection_id)
            if row is None:
                raise NotFound("collection")
            release = await self.plan_release(user_id, await store.collection_blobs(row.id))
            await store.delete_collection(row)
            await session.commit()
        await release()

    async def delete_conversation_files(
        self, session: AsyncSession, user_id: str, conversation_ids: Sequence[str]
    ) -> Callable[[], Awaitable[None]]:
        """In the caller's transaction: delete the files attached to these conversations
        (records, passages, vectors) and their links to collections (the collections
        and their files are the user's library: they stay). Returns the step to run
        after the commit: the bytes no other record has, and the in-memory vectors."""
        store = KnowledgeStore(session, user_id)
        files = await store.conversation_attachments(conversation_ids)
        release = await self.plan_release(user_id, [f.sha256 for f in files])
        for row in files:
            await store.delete_file(row)
        await store.detach_conversations(conversation_ids)
        return release

    # ------------------------------------------------------------ removing bytes

    async def plan_release(
        self, user_id: str, digests: Iterable[str]
    ) -> Callable[[], Awaitable[None]]:
        """Before a commit that deletes records: write down (durably, in the deletion
        journal) that these blobs may go, and return the step that removes them once
        the commit is done. A crash in between leaves the entry, and the feature's
        start replays it (``replay_deletions``); a deletion that did not commit
        keeps its bytes, since ``release_blob`` removes only what no record uses."""
        entry: dict[str, Any] = {"user_id": user_id, "blobs": sorted(set(digests))}
        handle = await self.journal.record(entry) if entry["blobs"] else None

        async def release() -> None:
            await self.apply_release(entry)
            if handle is not None:
                await self.journal.done(handle)

        return release

    async def apply_release(self, entry: dict[str, Any]) -> None:
        """A journal entry's work: the user's cached vectors, then each blob."""
        user_id = entry.get("user_id")
        if isinstance(user_id, str):
            self.forget_vectors(user_id)
        for sha256 in entry.get("blobs") or []:
            if isinstance(sha256, str):
                await self.release_blob(sha256)

    async def replay_deletions(self, older_than_s: float = 0.0) -> int:
        """Finish deletions whose after-commit step never ran (at start, and hourly
        for entries at least ``older_than_s`` old)."""
        return await self.journal.replay(self.apply_release, older_than_s=older_than_s)

    def forget_vectors(self, user_id: str) -> None:
        """Drop the user's vectors from the in-process dense index now (a stale
        matrix would otherwise stay in memory until that user's next search,
        which for a deleted account never comes); the next search rebuilds it
        from the database."""
        self.index.drop(user_id)

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
                also = await also_for(self.also, user_id, conversation_id)
                scope = [f.id for f in await store.scope_files(conversation_id, also)]
            if collection_id is not None:
                if await store.collection(collection_id) is None:
                    raise NotFound("collection")
                ids = [f.id for f in await store.files(collection_id=collection_id, limit=100_000)]
                scope = ids if scope is None else [i for i in scope if i in set(ids)]
            if file_ids is not None:
                owned = {f.id for f in await store.files_by_ids(file_ids)}
                scope = [i for i in file_ids if i in owned and (scope is None or i in scope)]
        return await self.retriever.search(user_id, query, file_ids=scope, limit=limit, mode=mode)

    async def conversation_images(
        self, session: AsyncSession, user_id: str, conversation_id: str, assistant: bool
    ) -> int:
        """How many images a conversation shows the model (each turn sends them all):
        the Auto model's ``vision`` rule (``parley.seam.CONVERSATION_IMAGES``). One
        COUNT in the caller's session (the turn's, before the model is called); an
        assistant's knowledge is looked up only for an assistant's chat."""
        also = await also_for(self.also, user_id, conversation_id) if assistant else None
        with session.no_autoflush:  # the turn's question is still pending: one flush
            return await KnowledgeStore(session, user_id).count_images(conversation_id, also)

    async def conversation_files(
        self, user_id: str, conversation_id: str | None
    ) -> list[tuple[str, Path]]:
        """(filename, stored path) of the files a conversation sees, for the code
        sandbox (``parley.seam.CONVERSATION_FILES``). Names are made unique; the
        paths are read-only blobs."""
        if not conversation_id:
            return []
        also = await also_for(self.also, user_id, conversation_id)
        async with self._db.session() as session:
            rows = await KnowledgeStore(session, user_id).scope_files(conversation_id, also)
        out: list[tuple[str, Path]] = []
        seen: set[str] = set()
        for row in rows:
            name, n = row.filename, 1
            while name in seen:
                n += 1
                stem, dot, ext = row.filename.rpartition(".")
                name = f"{stem} ({n}).{ext}" if dot and stem else f"{row.filename} ({n})"
            seen.add(name)
            try:
                out.append((name, await asyncio.to_thread(self.blobs.local, row.sha256)))
            except FileNotFoundError:
                continue
        return out

    async def release_blob(self, sha256: str, min_age_s: float = 0.0) -> bool:
        """Remove stored bytes once no record (of any user) points at them. An upload
        of the same bytes that commits its record after the check puts its blob in
        place after that commit, so a blob newer than the check is kept. True when
        the bytes are gone."""
        checked = time.time()
        async with self._db.session() as session:
            if await blob_in_use(session, sha256):
                return False
        return await asyncio.to_thread(
            self.blobs.delete, sha256, min_age_s, unless_written_after=checked
        )

    async def collect_orphan_blobs(self) -> int:
        """Delete blobs no record points at and at least an hour old (at start and
        hourly): bytes an import wrote before its transaction failed, or records
        removed behind the service's back (a cascade). Deletions through the
        service remove their bytes at once and do not wait for this."""
        try:
            names = await asyncio.to_thread(lambda: [sha for sha, _ in self.blobs.digests()])
            await asyncio.to_thread(self.blobs.prune_cache, CACHE_UNUSED_S)
            if not names:
                return 0
            async with self._db.session() as session:
                known = set((await session.scalars(select(KnowledgeFile.sha256).distinct())).all())
            removed = 0
            for sha256 in names:
                # an hour old at least: not an upload or import in flight
                if sha256 not in known and await self.release_blob(sha256, min_age_s=3600):
                    removed += 1
            return removed
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("collecting unused file blobs failed")
            return 0
