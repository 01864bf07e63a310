"""The groups feature: admin routes, and ``USER_GROUPS`` for everything that
grants by group (sharing, budgets, model access)."""

from __future__ import annotations

from typing import Any, ClassVar

from parley.config import Settings
from parley.groups.router import router
from parley.groups.service import GroupService
from parley.seam import USER_GROUPS, USER_GROUPS_QUERY, FeatureContext
from parley.turns.picks import MODEL_ACCESS

__all__ = ["GroupsFeature", "groups_feature"]


class GroupsFeature:
    name = "groups"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self, ctx: FeatureContext) -> None:
        groups = GroupService(ctx.db)
        ctx.provide(GroupService, groups)
        ctx.provide(USER_GROUPS, groups.of_user)
        ctx.provide(USER_GROUPS_QUERY, groups.of_user_query)
        ctx.provide(MODEL_ACCESS, groups.pickable)

    async def stop(self) -> None:
        return None


def groups_feature(settings: Settings) -> GroupsFeature:
    return GroupsFeature(settings)
