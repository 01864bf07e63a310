"""Optional capabilities (files, tools, memory...) plugged into the app as features.

A feature is a small object with a ``name``, an optional ``router`` (included
when the app is built) and ``start``/``stop`` called by the app's lifespan.
``start`` receives the shared services and registers what the feature adds:
tools (``ctx.tools.register``), context sources and after-turn hooks
(``ctx.turns.context_sources`` / ``ctx.turns.after_turn``); the feature keeps its
own state on itself and is reachable from handlers as ``request.app.state.features[name]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import APIRouter

from parley.config import Settings
from parley.knowledge.feature import knowledge_feature
from parley.memory.feature import memory_feature
from parley.providers.registry import ModelRegistry
from parley.sandbox.feature import sandbox_feature
from parley.storage.db import Database
from parley.tools import ToolRegistry
from parley.turns import TurnService
from parley.web_tools.feature import web_tools_feature


@dataclass(slots=True)
class FeatureContext:
    settings: Settings
    db: Database
    registry: ModelRegistry
    turns: TurnService
    tools: ToolRegistry


class Feature(Protocol):
    name: str
    router: APIRouter | None

    async def start(self, ctx: FeatureContext) -> None: ...

    async def stop(self) -> None: ...


FeatureFactory = Callable[[Settings], Feature]

# Each feature module adds its factory here (one line each).
DEFAULT_FEATURES: list[FeatureFactory] = [
    knowledge_feature,
    web_tools_feature,
    sandbox_feature,
    memory_feature,
]
