"""The web tools service: what the tools routes need once the feature has started.

The feature (``feature.py``) builds it and provides it through the seam; the
routes (``router.py``) receive it as a typed dependency, so neither module
imports the other's internals. The admin's MCP servers are ``mcp``
(``mcp_admin.McpAdmin``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from parley.config import Settings
from parley.errors import NotFound
from parley.net import SafeFetcher
from parley.storage.conversations import ConversationStore
from parley.tools import Tool, ToolRegistry
from parley.tools.builtin import BUILTIN_TOOLS
from parley.web_tools.confirm import DbConfirmer
from parley.web_tools.mcp import McpHub
from parley.web_tools.mcp_admin import McpAdmin
from parley.web_tools.tables import ToolConfirmation

__all__ = ["WEB_TOOLS", "ToolInfo", "ToolSource", "UnavailableTool", "WebToolsService"]

WEB_TOOLS = frozenset({"web_search", "fetch_page"})

ToolSource = Literal["web", "mcp", "builtin", "feature"]


@dataclass(slots=True)
class ToolInfo:
    """A registered tool as the tools page lists it."""

    name: str
    description: str
    side_effecting: bool
    source: ToolSource
    parameters: dict[str, Any]
    title: str  # what people see: "Run code", "Web search"
    summary: str  # one line for people


@dataclass(slots=True)
class UnavailableTool:
    """A tool a feature has but cannot offer now, and why (``ctx.withhold_tool``)."""

    name: str
    title: str
    summary: str
    reason: str


def human_title(declared: Tool) -> str:
    """The tool's human name: its declared ``title``, else its name in words
    (an MCP server's ``get_weather`` becomes "Get weather")."""
    if declared.title:
        return declared.title
    words = re.sub(r"[_\-]+", " ", declared.name).strip()
    return words[:1].upper() + words[1:]


def human_summary(declared: Tool) -> str:
    """One line about the tool: its declared ``summary``, else the first sentence of
    the description the model gets."""
    if declared.summary:
        return declared.summary
    first = re.split(r"(?<=[.!?])\s", declared.description.strip(), maxsplit=1)[0]
    return first if len(first) <= 140 else first[:139].rstrip() + "…"


@dataclass(slots=True)
class WebToolsService:
    settings: Settings
    fetcher: SafeFetcher
    hub: McpHub
    confirmer: DbConfirmer
    registry: ToolRegistry
    mcp: McpAdmin = field(init=False)

    def __post_init__(self) -> None:
        self.mcp = McpAdmin(self.hub, self.fetcher)

    def source_of(self, name: str) -> ToolSource:
        if name in WEB_TOOLS:
            return "web"
        if name in self.hub.tool_names():
            return "mcp"
        if name in {t.name for t in BUILTIN_TOOLS}:
            return "builtin"
        return "feature"

    def describe_tools(self) -> list[ToolInfo]:
        """Every registered tool as the API lists it."""
        items = []
        for name in self.registry.names():
            declared = self.registry.get(name)
            assert declared is not None
            items.append(
                ToolInfo(
                    name=name,
                    description=declared.description,
                    side_effecting=declared.side_effecting,
                    source=self.source_of(name),
                    parameters=declared.parameters,
                    title=human_title(declared),
                    summary=human_summary(declared),
                )
            )
        return items

    def unavailable_tools(self) -> list[UnavailableTool]:
        """Tools withheld now (the sandbox cannot start), with why."""
        return [
            UnavailableTool(t.name, human_title(t), human_summary(t), reason)
            for t, reason in self.registry.withheld()
        ]

    async def pending_calls(self, user_id: str, conversation_id: str) -> list[ToolConfirmation]:
        """The calls of one of the user's conversations that wait for an answer."""
        async with self.confirmer.db.session() as session:
            if await ConversationStore(session, user_id).get(conversation_id) is None:
                raise NotFound("conversation")
        return await self.confirmer.pending(user_id, conversation_id)
