"""The projects feature: its routes, ``PROJECT_PROFILES`` (a chat in a project gets
its instructions, defaults and memory mode), ``PROJECT_KNOWLEDGE`` (its files
are searched in its chats) and ``PROJECT_ACCESS`` (a ``/v1`` request in a project
asks whether its key's owner may still use it), all through the seam."""

from __future__ import annotations

from typing import Any, ClassVar

from parley.config import Settings
from parley.projects.router import router
from parley.projects.service import ProjectService
from parley.seam import PROJECT_KNOWLEDGE, USER_GROUPS, USER_GROUPS_QUERY, FeatureContext
from parley.turns.options import PROJECT_ACCESS, PROJECT_PROFILES

__all__ = ["ProjectsFeature", "projects_feature"]


class ProjectsFeature:
    name = "projects"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self, ctx: FeatureContext) -> None:
        groups = ctx.lookup(USER_GROUPS)
        in_groups = ctx.lookup(USER_GROUPS_QUERY)
        projects = ProjectService(ctx.db, groups, ctx.tool_registry, ctx.models, in_groups)
        ctx.provide(ProjectService, projects)
        ctx.provide(PROJECT_PROFILES, projects.profile)
        ctx.provide(PROJECT_KNOWLEDGE, projects.knowledge)
        ctx.provide(PROJECT_ACCESS, projects.role_of)

    async def stop(self) -> None:
        return None


def projects_feature(settings: Settings) -> ProjectsFeature:
    return ProjectsFeature(settings)
