"""The web tools service: what the tools routes need once the feature has started.

The feature (``feature.py``) builds it and provides it through the seam; the
routes (``router.py``) receive it as a typed dependency, so neither module
imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parley.config import Settings
from parley.net import SafeFetcher
from parley.tools import ToolRegistry
from parley.tools.builtin import BUILTIN_TOOLS
from parley.web_tools.confirm import DbConfirmer
from parley.web_tools.mcp import McpHub

__all__ = ["WEB_TOOLS", "WebToolsService"]

WEB_TOOLS = frozenset({"web_search", "fetch_page"})


@dataclass(slots=True)
class WebToolsService:
    settings: Settings
    fetcher: SafeFetcher
    hub: McpHub
    confirmer: DbConfirmer
    registry: ToolRegistry

    def source_of(self, name: str) -> str:
        if name in WEB_TOOLS:
            return "web"
        if name in self.hub.tool_names():
            return "mcp"
        if name in {t.name for t in BUILTIN_TOOLS}:
            return "builtin"
        return "feature"

    def describe_tools(self) -> list[dict[str, Any]]:
        """Every registered tool as the API lists it."""
        items = []
        for name in self.registry.names():
            declared = self.registry.get(name)
            assert declared is not None
            items.append(
                {
                    "name": name,
                    "description": declared.description,
                    "side_effecting": declared.side_effecting,
                    "source": self.source_of(name),
                    "parameters": declared.parameters,
                }
            )
        return items
