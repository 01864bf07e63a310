"""The Responses API feature: ``/v1/responses`` and ``/v1/conversations``.

It adds no tools or context of its own: a response is a turn, so memory, files
and Parley's tools reach API callers through the turn service like they reach
the web app. It provides ``ResponsesService`` and ``ConversationsService`` for
its routes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from parley.config import Settings
from parley.instance.providers import RegistrySync
from parley.responses.conversations import ConversationsService
from parley.responses.router import router
from parley.responses.service import ResponsesService
from parley.seam import ASSISTANTS, FeatureContext, UserDataHooks
from parley.turns import TurnService
from parley.usage.ledger import UsageLedger

__all__ = ["ResponsesFeature", "responses_feature"]


class ResponsesFeature:
    name = "responses"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {"/v1/responses": 32 * 1024 * 1024}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: ResponsesService | None = None

    async def start(self, ctx: FeatureContext) -> None:
        sync = ctx.require(RegistrySync)
        hooks = ctx.require(UserDataHooks)
        self.service = ResponsesService(ctx.db, ctx.require(TurnService), sync, hooks)
        assistants = ctx.lookup(ASSISTANTS)  # assistant/<slug> models, resolved at use time
        self.service.assistants = assistants
        ctx.provide(ResponsesService, self.service)
        ledger = ctx.lookup(UsageLedger)  # compaction's model calls are ledger rows
        ctx.provide(ConversationsService, ConversationsService(ctx.db, sync, hooks, ledger))

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.aclose()


def responses_feature(settings: Settings) -> ResponsesFeature:
    return ResponsesFeature(settings)
