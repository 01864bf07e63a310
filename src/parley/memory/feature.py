"""The memory feature: saved memories, past-conversation search, summaries,
and the clean-up of temporary chats.

``start`` picks the embedder (``build_embedder``; none, logged, when it is
unavailable: recall then uses keyword + recency), registers the ``remember``
and ``search_conversations`` tools, the memory ``ContextSource`` and two
``AfterTurn`` hooks (extraction, summaries), and deletes temporary chats idle
for ``temporary_chat_hours`` now and every hour (through
``parley.userdata.conversations``, like a user's deletion).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, ClassVar

from fastapi import APIRouter

from parley.config import Settings
from parley.embeddings import Embedder, build_embedder
from parley.jobs.runner import Jobs
from parley.memory.context import MemoryContext
from parley.memory.explain import recall_router
from parley.memory.extract import EXTRACT_JOB, MemoryExtractor, ModelResolver
from parley.memory.forgetting import ForgetContext, ForgetService
from parley.memory.router import router as memories_router
from parley.memory.service import MemoryService
from parley.memory.store import expired_temporary_conversations
from parley.memory.summaries import SUMMARY_JOB, HistorySummarizer
from parley.memory.tools import make_remember_tool, make_search_conversations_tool
from parley.memory.userdata import MemoryUserData
from parley.providers.base import ChatModel
from parley.providers.registry import ModelRegistry
from parley.seam import FeatureContext, UserDataHooks
from parley.storage.db import Database
from parley.turns.hooks import TurnInfo
from parley.usage.ledger import UsageLedger
from parley.usage.metering import Charge, LedgerRef, meter_embedder, metered
from parley.userdata.conversations import delete_conversations

__all__ = ["MemoryFeature", "default_embedder", "memory_feature"]

log = logging.getLogger(__name__)

router = APIRouter()
router.include_router(memories_router)
router.include_router(recall_router)

PURGE_EVERY_S = 3600.0


def default_embedder(settings: Settings) -> Embedder | None:
    """The shared embedder, or None (keyword + recency recall) when there is none."""
    try:
        if settings.embedding_provider == "none":
            log.info("memory recall: embeddings are off; using keyword and recency")
            return None
        embedder = build_embedder(settings)
    except Exception:
        log.warning("memory recall: no embedder; using keyword and recency", exc_info=True)
        return None
    if getattr(embedder, "available", True) is False:
        log.info("memory recall: the embedding model is not installed; keyword and recency")
        return None
    return embedder


class MemoryFeature:
    name = "memory"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {}

    def __init__(self, settings: Settings, *, embedder: Embedder | bool | None = True) -> None:
        """``embedder``: an ``Embedder``, ``None`` for none, ``True`` for the default."""
        self.settings = settings
        self._embedder_choice = embedder
        self._service: MemoryService | None = None
        self._registry: ModelRegistry | None = None
        self._purger: asyncio.Task[None] | None = None
        self._hooks = UserDataHooks()
        self.summarizer: HistorySummarizer | None = None
        self.extractor: MemoryExtractor | None = None
        self.forgets: ForgetService | None = None
        self._ledger: LedgerRef = lambda: None

    @property
    def service(self) -> MemoryService:
        assert self._service is not None, "the memory feature was not started"
        return self._service

    async def start(self, ctx: FeatureContext) -> None:
        choice = self._embedder_choice
        embedder = default_embedder(self.settings) if choice is True else choice or None
        self._ledger = ctx.lookup(UsageLedger)
        meter_embedder(embedder, self._ledger)  # a remote endpoint's calls are ledger rows
        self._service = MemoryService(ctx.db, embedder)
        ctx.provide(MemoryService, self._service)
        hook = MemoryUserData(self._service)
        ctx.add_user_data(hook)
        ctx.add_conversation_data(hook)
        self._hooks = ctx.require(UserDataHooks)
        self._registry = ctx.models
        settings = self.settings
        ctx.add_tool(make_remember_tool(self.service))
        ctx.add_tool(make_search_conversations_tool(ctx.db))
        self.forgets = ForgetService(self.service)
        ctx.provide(ForgetService, self.forgets)
        ctx.add_context_source(ForgetContext(self.forgets))  # before recall: "forget ..." first
        ctx.add_context_source(
            MemoryContext(
                self.service,
                k=settings.memory_recall_k,
                budget_tokens=settings.memory_budget_tokens,
                embed_timeout_s=settings.memory_embed_timeout_s,
                min_similarity=settings.memory_recall_floor,
            )
        )
        self.extractor = MemoryExtractor(
            self.service,
            self.model_for("memory"),
            enabled=settings.memory_auto,
            forgets=self.forgets,
            jobs=ctx.require(Jobs),
        )
        ctx.require(Jobs).handle(EXTRACT_JOB, self.extractor.run_job, concurrency=2)
        self.summarizer = HistorySummarizer(
            ctx.db,
            self.model_for("summary"),
            enabled=settings.summarize_history,
            trigger=settings.summary_trigger,
            keep=settings.summary_keep,
            jobs=ctx.require(Jobs),
        )
        ctx.require(Jobs).handle(SUMMARY_JOB, self.summarizer.run_job, concurrency=2)
        ctx.add_after_turn(self.extractor)
        ctx.add_after_turn(self.summarizer)
        # Listed last in DEFAULT_FEATURES: every other feature's conversation hook
        # is registered by now (what a purge would miss, the features' sweeps find).
        await self.purge(ctx.db)
        self._purger = asyncio.create_task(self._purge_periodically(ctx.db))

    def model_for(self, endpoint: str) -> ModelResolver:
        """The model resolver for extraction (``memory``) or summaries (``summary``):
        ``resolve_model``'s choice, metered so each of its calls is a usage-ledger
        row charged to the turn's user, key, chat, project and assistant."""

        async def resolve(info: TurnInfo) -> ChatModel:
            charge = Charge(
                user_id=info.user_id,
                endpoint=endpoint,
                api_key_id=info.api_key_id,
                conversation_id=info.conversation_id,
                project_id=info.project_id,
                assistant_id=info.assistant_id,
            )
            return metered(await self.resolve_model(info), self._ledger(), charge)

        return resolve

    async def resolve_model(self, info: TurnInfo) -> ChatModel:
        """``memory_model`` when set and resolvable, else the chat's own model."""
        assert self._registry is not None
        if self.settings.memory_model:
            try:
                return await self._registry.resolve(self.settings.memory_model)
            except Exception:
                log.warning("memory_model %r is unavailable", self.settings.memory_model)
        return await self._registry.resolve(info.model.ref)

    async def purge(self, db: Database) -> int:
        """Delete expired temporary chats like a user's deletion does: through every
        feature's ``ConversationData`` hook (attachments, outputs, kernels go too)."""
        async with db.session() as session:
            stale = await expired_temporary_conversations(
                session, timedelta(hours=self.settings.temporary_chat_hours)
            )
        count = 0
        for user_id, ids in stale.items():
            async with db.session() as session:
                count += len(await delete_conversations(session, user_id, ids, self._hooks))
        if count:
            log.info("deleted %d expired temporary chats", count)
        return count

    async def _purge_periodically(self, db: Database) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_S)
            try:
                await self.purge(db)
            except Exception:
                log.exception("could not delete expired temporary chats")
            if self.forgets is not None:
                try:
                    await self.forgets.purge_expired()  # forgotten rows past their undo window
                except Exception:
                    log.exception("could not erase forgotten memories kept for undo")

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self._service is not None:
            await self._service.aclose()


def memory_feature(settings: Settings) -> MemoryFeature:
    return MemoryFeature(settings)
