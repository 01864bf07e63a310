"""Routing a turn or a ``/v1`` call: which policy applies, what the request
needs, and the model the Auto choice lands on.

The policy is the most specific one stored: the chat's project's, else its
assistant's, else the instance's (``routing_policies``, kept in memory and re-read
in the background once a second per worker: no request waits for the table).
Measuring the request costs no model call and, for a turn, at most two small
reads, each only when a rule needs it: the images the chat carries
(``CONVERSATION_IMAGES``, provided by the knowledge feature, one COUNT in the
turn's session) for a ``vision`` rule, and the budget state (``BUDGET_STATE``,
provided by the budgets feature) for a ``budget`` rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.container import Key, Services
from parley.errors import NoModelAvailable
from parley.providers.base import ModelInfo
from parley.providers.registry import ModelRegistry
from parley.routing.rules import AUTO, Need, Policy, Route, choose
from parley.routing.tables import RoutingPolicy
from parley.storage.db import Database
from parley.storage.tables import utcnow

__all__ = [
    "BUDGET_STATE",
    "CONVERSATION_IMAGES",
    "BudgetQuery",
    "BudgetState",
    "ConversationImages",
    "RoutingService",
    "Scope",
]

log = logging.getLogger(__name__)

REFRESH_S = 1.0
SCOPES = ("instance", "assistant", "project")
Scope = tuple[str, str]


@dataclass(frozen=True, slots=True)
class BudgetQuery:
    """Who a call would be charged to (the scopes budgets are set on)."""

    user_id: str
    api_key_id: str | None = None
    project_id: str | None = None
    assistant_id: str | None = None


BudgetState = Callable[[BudgetQuery], Awaitable[float | None]]
"""``query -> the largest share used (0.0-1.0+) of the budgets that apply, or None
when none does``. Provided by the budgets feature; a ``budget`` rule reads it."""

BUDGET_STATE: Key[BudgetState] = Key("budget_state")

ConversationImages = Callable[[AsyncSession, str, str, bool], Awaitable[int]]
"""``(session, user_id, conversation_id, is an assistant's chat) -> how many images
the chat sends the model``, counted in the turn's own session."""

CONVERSATION_IMAGES: Key[ConversationImages] = Key("conversation_images")


class RoutingService:
    """Reads the policies and routes; one per app (its cache)."""

    def __init__(self, db: Database, registry: ModelRegistry, services: Services) -> None:
        self.db = db
        self.registry = registry
        self.services = services
        self._policies: dict[Scope, Policy] = {}
        self._read_at = -1e9
        self._refresh: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- policies

    def invalidate(self) -> None:
        self._read_at = -1e9

    async def policies(self) -> dict[Scope, Policy]:
        """Every stored policy. Read from the database the first time; after that the
        copy in memory is served at once and, when it is over a second old, re-read in
        the background (another worker's change arrives within about a second, and no
        request waits for the read)."""
        if self._read_at < 0:
            await self._reload()
        elif time.monotonic() - self._read_at >= REFRESH_S and self._refresh is None:
            self._refresh = asyncio.create_task(self._reload())
            self._refresh.add_done_callback(self._refreshed)
        return self._policies

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refresh = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("re-reading the routing policies failed: %s", task.exception())

    async def _reload(self) -> None:
        started = time.monotonic()
        async with self.db.session() as session:
            rows = (await session.scalars(select(RoutingPolicy))).all()
        found: dict[Scope, Policy] = {}
        for row in rows:
            try:
                found[(row.scope, row.scope_id)] = Policy.of(row.rules, row.default_model)
            except ValueError as exc:  # written by an older version: skip, say so
                log.warning("routing policy %s/%s is invalid: %s", row.scope, row.scope_id, exc)
        self._policies, self._read_at = found, started

    async def aclose(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    async def policy_for(
        self, project_id: str | None = None, assistant_id: str | None = None
    ) -> tuple[Policy, str]:
        """The policy applying to a chat, and whose it is."""
        stored = await self.policies()
        for scope, scope_id in (("project", project_id), ("assistant", assistant_id)):
            if scope_id and (found := stored.get((scope, scope_id))) is not None:
                return found, scope
        return stored.get(("instance", ""), Policy()), "instance"

    async def set_policy(
        self, scope: str, scope_id: str, rules: Sequence[dict[str, Any]], default: str | None
    ) -> Policy:
        """Store a scope's policy (``ValueError`` for a bad one: unknown kind, no model)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; one of: {', '.join(SCOPES)}")
        scope_id = "" if scope == "instance" else scope_id.strip()
        if scope != "instance" and not scope_id:
            raise ValueError(f"a {scope} policy needs the {scope}'s id")
        policy = Policy.of(rules, default)
        async with self.db.session() as session:
            row = await session.get(RoutingPolicy, (scope, scope_id))
            if row is None:
                row = RoutingPolicy(scope=scope, scope_id=scope_id)
                session.add(row)
            row.rules = [r.public() for r in policy.rules]
            row.default_model = policy.default
            row.updated_at = utcnow()
            await session.commit()
        await self._reload()  # this worker applies it at once
        return policy

    async def clear(self, scope: str, scope_id: str = "") -> None:
        async with self.db.session() as session:
            await session.execute(
                delete(RoutingPolicy).where(
                    RoutingPolicy.scope == scope,
                    RoutingPolicy.scope_id == ("" if scope == "instance" else scope_id),
                )
            )
            await session.commit()
        self.invalidate()

    # ---------------------------------------------------------------- routing

    async def images(
        self, session: AsyncSession, user_id: str, conversation_id: str, assistant: bool
    ) -> int:
        lookup = self.services.get(CONVERSATION_IMAGES)
        if lookup is None:
            return 0
        return await lookup(session, user_id, conversation_id, assistant)

    async def budget_used(self, query: BudgetQuery) -> float | None:
        state = self.services.get(BUDGET_STATE)
        if state is None:
            return None
        try:
            return await state(query)
        except Exception:  # a budget back end failing must not stop the answer
            log.exception("reading the budget state for routing failed")
            return None

    async def route(
        self,
        need: Need,
        *,
        policy: Policy,
        scope: str,
        user_id: str | None,
        instance_default: str | None,
        allowed: Callable[[str], bool] | None = None,
    ) -> Route:
        """The model for ``need`` under ``policy``; ``NoModelAvailable`` when no rule's
        model, no default and no instance default is usable by the caller."""
        usable: dict[str, ModelInfo] = {
            m.ref: m
            for m in await self.registry.list_models()
            if m.offered_to(user_id) and (allowed is None or allowed(m.ref))
        }
        fallback = instance_default if instance_default in usable else None
        if fallback is None and policy.default not in usable:  # only then: another listing
            fallback = await self.registry.default_ref(None, user_id)
            if fallback is not None and fallback not in usable:
                fallback = next(iter(usable), None)
        route = choose(policy, need, usable.get, fallback, scope)
        if route is None:
            raise NoModelAvailable(f"No model is available for {AUTO!r}.")
        return route
