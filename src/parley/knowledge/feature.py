"""The files-and-knowledge feature: routes, ingestion worker, context source, tool.

``knowledge_feature(settings)`` is the factory listed in
``parley.api.app.DEFAULT_FEATURES``. ``start`` builds the services on the
shared database, registers the ``search_knowledge`` tool and the ``files``
context source and the user-data hooks (export, import, account and
conversation deletion), finishes deletions a crash interrupted (the deletion
journal), and starts the background ingestion worker and the hourly sweep of
unreferenced blobs; nothing heavy is loaded (the embedding model loads on
first use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from parley.config import Settings
from parley.embeddings import EMBEDDER, Embedder, build_embedder
from parley.jobs.runner import Jobs
from parley.knowledge.api import router
from parley.knowledge.blobs import BlobStore
from parley.knowledge.context import FileContext, make_search_tool
from parley.knowledge.index import VectorIndex
from parley.knowledge.ingest import Ingestor
from parley.knowledge.retrieval import Reranker, Retriever
from parley.knowledge.service import KnowledgeService
from parley.knowledge.userdata import KnowledgeUserData
from parley.seam import (
    AUDIO_TRANSCRIBER,
    CONVERSATION_FILES,
    CONVERSATION_IMAGES,
    CONVERSATION_KNOWLEDGE,
    PROJECT_KNOWLEDGE,
    SHARED_KNOWLEDGE,
    FeatureContext,
)
from parley.storage.objects import S3ObjectStore, Scoped, build_object_store
from parley.usage.ledger import UsageLedger
from parley.usage.metering import meter_embedder

__all__ = ["MULTIPART_OVERHEAD", "KnowledgeFeature", "knowledge_feature"]

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 64 * 1024
TOOL_NAME = "search_knowledge"
HOUSEKEEPING_EVERY_S = 3600.0
PENDING_GRACE_S = 600.0


def blob_store(settings: Settings) -> BlobStore:
    """Uploaded files' bytes: under ``<data dir>/files`` or in the S3 bucket's ``files/``."""
    root = settings.data_dir / "files"
    if settings.storage_backend == "local":
        return BlobStore(root)
    return BlobStore(root, Scoped(build_object_store(settings), "files"))


class KnowledgeFeature:
    name = "knowledge"
    router: Any = router

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.body_limits = {"/api/files": self.settings.files_max_bytes + MULTIPART_OVERHEAD}
        self.blobs = blob_store(settings)
        self._embedder = embedder
        self._reranker = reranker
        self._ctx: FeatureContext | None = None
        self._source: FileContext | None = None
        self._service: KnowledgeService | None = None
        self._gc_task: asyncio.Task[None] | None = None

    @property
    def service(self) -> KnowledgeService:
        assert self._service is not None, "the knowledge feature was not started"
        return self._service

    async def start(self, ctx: FeatureContext) -> None:
        if isinstance(self.blobs.objects, Scoped) and isinstance(
            self.blobs.objects.store, S3ObjectStore
        ):
            await asyncio.to_thread(self.blobs.objects.store.ensure_bucket)
        embedder = self._embedder or build_embedder(self.settings)
        # A remote endpoint's requests are usage-ledger rows, charged to the user whose
        # file or question they embed (``billed_to`` in the queue and the retriever).
        meter_embedder(embedder, ctx.lookup(UsageLedger))
        index = VectorIndex(ctx.db)
        await index.setup()
        retriever = Retriever(ctx.db, embedder, index, self._reranker)
        ingestor = Ingestor(ctx.db, self.blobs, embedder, index, self.settings, ctx.require(Jobs))
        transcriber = ctx.lookup(AUDIO_TRANSCRIBER)
        ingestor.transcriber = transcriber  # audio files (parley.speech)
        await ingestor.start()
        self._service = KnowledgeService(
            ctx.db, self.settings, self.blobs, embedder, index, retriever, ingestor
        )
        self._service.also = ctx.lookup(CONVERSATION_KNOWLEDGE)
        ctx.provide(KnowledgeService, self._service)
        ctx.provide(EMBEDDER, embedder)  # POST /v1/embeddings serves the same vectors
        ctx.provide(CONVERSATION_FILES, self._service.conversation_files)
        ctx.provide(CONVERSATION_IMAGES, self._service.conversation_images)  # Auto's vision rule
        hook = KnowledgeUserData(self._service)
        ctx.add_user_data(hook)
        ctx.add_conversation_data(hook)
        await self._service.replay_deletions()  # left by a crash after a deletion's commit
        self._source = FileContext(ctx.db, retriever, self.blobs, self.settings)
        self._source.also = ctx.lookup(CONVERSATION_KNOWLEDGE)
        shared, project = ctx.lookup(SHARED_KNOWLEDGE), ctx.lookup(PROJECT_KNOWLEDGE)
        self._source.lent = [shared, project]
        ctx.add_context_source(self._source)
        ctx.add_tool(make_search_tool(ctx.db, retriever, self.settings, self._source), replace=True)
        self._ctx = ctx
        self._gc_task = asyncio.create_task(self._housekeeping(self._service))

    async def _housekeeping(self, service: KnowledgeService) -> None:
        """Unreferenced blobs now and hourly; journal entries a failed after-commit
        step left (older than a few minutes: not a deletion still in progress)."""
        while True:
            await service.collect_orphan_blobs()
            await asyncio.sleep(HOUSEKEEPING_EVERY_S)
            try:
                await service.replay_deletions(older_than_s=PENDING_GRACE_S)
            except Exception:
                log.exception("completing pending file deletions failed")

    async def stop(self) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
        if self._service is not None:
            await self._service.ingestor.stop()
        if self._ctx is not None:
            self._ctx.remove_tool(TOOL_NAME)
            if self._source is not None:
                self._ctx.remove_context_source(self._source)
            self._ctx.withdraw(KnowledgeService)
            self._ctx.withdraw(CONVERSATION_FILES)
            self._ctx.withdraw(CONVERSATION_IMAGES)
            self._ctx.withdraw(EMBEDDER)


def knowledge_feature(settings: Settings) -> KnowledgeFeature:
    return KnowledgeFeature(settings)
