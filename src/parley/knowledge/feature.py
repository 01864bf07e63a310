"""The files-and-knowledge feature: routes, ingestion worker, context source, tool.

``knowledge_feature(settings)`` is the factory listed in
``parley.api.features.DEFAULT_FEATURES``. ``start`` builds the services on the
shared database, registers the ``search_knowledge`` tool and the ``files``
context source, and starts the background ingestion worker; nothing heavy is
loaded (the embedding model loads on first use).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from parley.config import Settings
from parley.knowledge.blobs import BlobStore
from parley.knowledge.context import FileContext, make_search_tool
from parley.knowledge.embeddings import build_embedder
from parley.knowledge.index import VectorIndex
from parley.knowledge.ingest import Ingestor
from parley.knowledge.retrieval import Reranker, Retriever
from parley.knowledge.settings import KnowledgeSettings, knowledge_settings
from parley.knowledge.store import KnowledgeStore, blob_in_use
from parley.knowledge.tables import KnowledgeFile

if TYPE_CHECKING:
    from fastapi import APIRouter

    from parley.api.features import FeatureContext
    from parley.knowledge.embeddings import Embedder
    from parley.storage.db import Database
    from parley.tools import ToolRegistry
    from parley.turns import TurnService

__all__ = ["MULTIPART_OVERHEAD", "KnowledgeFeature", "knowledge_feature"]

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 64 * 1024
TOOL_NAME = "search_knowledge"


class KnowledgeFeature:
    name = "knowledge"
    router: APIRouter | None

    def __init__(
        self,
        settings: Settings,
        config: KnowledgeSettings | None = None,
        *,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        # Imported here: the routes import parley.api, which lists this feature.
        from parley.knowledge.api import router

        self.router = router
        self.settings = settings
        self.config = config or knowledge_settings(settings)
        self.body_limits = {"/api/files": self.config.files_max_bytes + MULTIPART_OVERHEAD}
        self.blobs = BlobStore(settings.data_dir / "files")
        self._embedder = embedder
        self._reranker = reranker
        self._db: Database | None = None
        self._tools: ToolRegistry | None = None
        self._turns: TurnService | None = None
        self._source: FileContext | None = None

    async def start(self, ctx: FeatureContext) -> None:
        self._db = ctx.db
        self.embedder = self._embedder or build_embedder(ctx.settings, self.config)
        self.index = VectorIndex(ctx.db)
        await self.index.setup()
        self.retriever = Retriever(ctx.db, self.embedder, self.index, self._reranker)
        self.ingestor = Ingestor(ctx.db, self.blobs, self.embedder, self.index, self.config)
        await self.ingestor.start()
        self._source = FileContext(ctx.db, self.retriever, self.blobs, self.config)
        ctx.turns.context_sources.append(self._source)
        self._turns = ctx.turns
        if TOOL_NAME in ctx.tools:
            ctx.tools.unregister(TOOL_NAME)
        ctx.tools.register(make_search_tool(ctx.db, self.retriever, self.config, self._source))
        self._tools = ctx.tools
        self._gc_task = asyncio.create_task(self.collect_orphan_blobs())

    async def stop(self) -> None:
        self._gc_task.cancel()
        await self.ingestor.stop()
        if self._tools is not None:
            self._tools.unregister(TOOL_NAME)
        if self._turns is not None and self._source in self._turns.context_sources:
            self._turns.context_sources.remove(self._source)

    async def conversation_files(
        self, user_id: str, conversation_id: str | None
    ) -> list[tuple[str, Path]]:
        """(filename, stored path) of the files a conversation sees, for the code sandbox
        (``SandboxFeature.files``). Names are made unique; the paths are read-only blobs."""
        if self._db is None or not conversation_id:
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
        assert self._db is not None
        async with self._db.session() as session:
            if await blob_in_use(session, sha256):
                return
        await asyncio.to_thread(self.blobs.delete, sha256, min_age_s)

    async def collect_orphan_blobs(self) -> int:
        """Delete blobs no record points at (left by cascades: a deleted conversation
        or account removes records in the database, not files on disk)."""
        assert self._db is not None
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


def knowledge_feature(settings: Settings) -> KnowledgeFeature:
    return KnowledgeFeature(settings)
