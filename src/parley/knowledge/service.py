"""The files-and-knowledge service: stored bytes, the index, retrieval, ingestion.

Built by the knowledge feature at start-up and provided to the rest of Parley
(its HTTP routes, the code sandbox's ``CONVERSATION_FILES``) through the seam;
it owns the objects whose lifetime is the app's, and nothing HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import select

from parley.config import Settings
from parley.embeddings import Embedder
from parley.knowledge.blobs import BlobStore
from parley.knowledge.index import VectorIndex
from parley.knowledge.ingest import Ingestor
from parley.knowledge.retrieval import Retriever
from parley.knowledge.store import KnowledgeStore, blob_in_use
from parley.knowledge.tables import KnowledgeFile
from parley.storage.db import Database

__all__ = ["KnowledgeService"]

log = logging.getLogger(__name__)


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
