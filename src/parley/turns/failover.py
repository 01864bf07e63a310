"""Which models answer when one fails: the failover chain of a chat turn or a
``/v1`` call, built from the settings, the admin's fallback lists and the registry.

``FailoverService.wrap(model)`` returns a ``parley.providers.failover.FailoverModel``
over the model and its fallbacks (those that resolve and that the caller may use),
with the retry policy of the settings and the breaker shared through the database.
``record`` writes the attempts, and the model that answered, on the answer's row
before the recorder's finish reads it back (``driver.TurnDriver._end``).

A model's fallbacks are the admin's list when one is stored (Admin > Providers >
Fallbacks; ``[]`` means none), else the config file's ``fallbacks`` of that model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from parley.config import Settings
from parley.errors import ParleyError
from parley.providers.base import ChatModel, ModelInfo
from parley.providers.failover import CallObserver, FailoverModel, RetryPolicy
from parley.providers.registry import ModelRegistry
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.failover import DatabaseBreaker, stored_fallbacks

log = logging.getLogger(__name__)

REFRESH_S = 1.0  # how stale a worker's copy of the admin's lists may be


def configured_fallbacks(settings: Settings) -> dict[str, list[str]]:
    """The config file's ``fallbacks`` of each model, by ref."""
    return {
        f"{provider.name}/{model.name}": list(model.fallbacks)
        for provider in settings.providers
        for model in provider.models
        if model.fallbacks
    }


class FailoverService:
    """Builds each call's failover chain; one per app (its breaker and cache)."""

    def __init__(self, db: Database, registry: ModelRegistry, settings: Settings) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.policy = RetryPolicy(
            attempts=settings.retry_attempts,
            base_delay_s=settings.retry_base_delay_s,
            max_delay_s=settings.retry_max_delay_s,
        )
        self.breaker = DatabaseBreaker(db, settings.breaker_failures, settings.breaker_cooldown_s)
        self.configured = configured_fallbacks(settings)
        self._stored: dict[str, list[str]] = {}
        self._read_at = -1e9
        self.observer: CallObserver | None = None  # metrics and traces (``parley.telemetry``)

    def invalidate(self) -> None:
        self._read_at = -1e9

    async def admin_lists(self) -> dict[str, list[str]]:
        """The admin's lists, re-read at most once a second."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S:
            async with self.db.session() as session:
                self._stored = await stored_fallbacks(session)
            self._read_at = now
        return self._stored

    async def fallbacks_of(self, ref: str) -> tuple[list[str], str]:
        """``ref``'s fallback refs and where they come from (``admin``, ``config``, ``none``)."""
        stored = await self.admin_lists()
        if ref in stored:
            return stored[ref], "admin"
        if ref in self.configured:
            return self.configured[ref], "config"
        return [], "none"

    async def wrap(
        self,
        model: ChatModel,
        *,
        user_id: str | None = None,
        allowed: Callable[[ModelInfo], bool] | None = None,
    ) -> FailoverModel:
        """``model`` with its fallbacks, each offered to ``user_id`` and ``allowed``
        (an API key's model scope); a fallback that does not resolve is skipped
        (logged: the admin's list names a model that is gone)."""
        refs, _ = await self.fallbacks_of(model.info.ref)
        chain: list[ChatModel] = [model]
        for ref in refs:
            if ref == model.info.ref or any(m.info.ref == ref for m in chain):
                continue
            try:
                fallback = await self.registry.resolve(ref)
            except ParleyError as exc:
                log.warning("fallback %r of %s is unavailable: %s", ref, model.info.ref, exc)
                continue
            if not fallback.info.offered_to(user_id):
                continue
            if allowed is not None and not allowed(fallback.info):
                continue
            chain.append(fallback)
        return FailoverModel(
            chain, policy=self.policy, breaker=self.breaker, observer=self.observer
        )

    async def record(self, user_id: str, message_id: str, model: FailoverModel) -> None:
        """Store the attempts and the answering model on the answer's row (only when
        an attempt failed: a first-try answer keeps ``attempts`` null)."""
        if not model.failed_over:
            return
        fields: dict[str, Any] = {"attempts": [a.public() for a in model.attempts]}
        fields["provider"], fields["model"] = model.info.provider, model.info.ref
        async with self.db.session() as session:
            await ConversationStore(session, user_id).update_message(message_id, **fields)
            await session.commit()
