"""The assistants feature: the builder's routes, the turn profile, the knowledge
scope and the ``/v1`` gateway, all through the seam.

``start`` provides ``AssistantService`` (its routes), ``TURN_PROFILES`` (the turn
service asks it for an assistant chat's instructions, model, tools, temperature
and memory mode), ``CONVERSATION_KNOWLEDGE`` (the knowledge feature adds an
assistant's collections and files to its chats' scope) and ``ASSISTANTS`` (the
``/v1`` routers resolve ``assistant/<slug>``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import APIRouter

from parley.assistants.access import Access
from parley.assistants.gateway import Gateway
from parley.assistants.router import router as builder_router
from parley.assistants.service import AssistantService
from parley.assistants.share_router import router as share_router
from parley.assistants.sharing import SharingService
from parley.config import Settings
from parley.seam import (
    ASSISTANTS,
    CONVERSATION_KNOWLEDGE,
    SHARED_KNOWLEDGE,
    USER_GROUPS,
    USER_GROUPS_QUERY,
    FeatureContext,
    UserDataHooks,
)
from parley.turns import TurnService
from parley.turns.options import TURN_PROFILES

__all__ = ["AssistantsFeature", "assistants_feature"]

# The share routes first: ``/api/assistants/import`` before ``/{assistant_id}``.
router = APIRouter()
router.include_router(share_router)
router.include_router(builder_router)


class AssistantsFeature:
    name = "assistants"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self, ctx: FeatureContext) -> None:
        groups = ctx.lookup(USER_GROUPS)
        in_groups = ctx.lookup(USER_GROUPS_QUERY)
        access = Access(groups, in_groups)
        service = AssistantService(ctx.db, ctx.tool_registry, ctx.models, access)
        ctx.provide(AssistantService, service)
        ctx.provide(SharingService, SharingService(ctx.db, access))
        ctx.provide(TURN_PROFILES, service.profile)
        ctx.provide(CONVERSATION_KNOWLEDGE, service.knowledge)
        ctx.provide(SHARED_KNOWLEDGE, service.lent)
        gateway = Gateway(ctx.db, service, ctx.require(TurnService), ctx.require(UserDataHooks))
        ctx.provide(ASSISTANTS, gateway)

    async def stop(self) -> None:
        return None


def assistants_feature(settings: Settings) -> AssistantsFeature:
    return AssistantsFeature(settings)
