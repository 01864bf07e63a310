"""The tools feature: web search, page reading, MCP servers, confirmations.

``start`` registers ``fetch_page`` (always) and ``web_search`` (offered when a
search back end is configured in Admin > Web search or the environment, withheld
with a reason otherwise; ``search_config.WebSearch`` swaps it live), connects this
worker to the admin's MCP servers and installs the database-backed confirmer that
makes side-effecting tool calls wait for the user's approval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from parley.config import Settings
from parley.net import AddressPolicy, Resolver, SafeFetcher
from parley.seam import FeatureContext
from parley.turns.hooks import TOOL_CONFIRMER
from parley.web_tools.confirm import DbConfirmer
from parley.web_tools.mcp import McpHub
from parley.web_tools.page import make_fetch_page
from parley.web_tools.router import router
from parley.web_tools.search_config import WebSearch
from parley.web_tools.service import WebToolsService

__all__ = ["WebToolsFeature", "web_tools_feature"]

log = logging.getLogger(__name__)


class WebToolsFeature:
    name = "tools"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {}

    def __init__(self, settings: Settings, *, resolver: Resolver | None = None) -> None:
        self.settings = settings
        self.fetcher = SafeFetcher(
            AddressPolicy.from_entries(settings.fetch_allow_hosts),
            resolver=resolver,
            max_bytes=settings.fetch_max_bytes,
            timeout_s=settings.fetch_timeout_s,
            max_redirects=settings.fetch_max_redirects,
        )
        self.search: WebSearch | None = None
        self._hub: McpHub | None = None
        self._confirmer: DbConfirmer | None = None
        self._refresher: asyncio.Task[None] | None = None

    @property
    def hub(self) -> McpHub:
        assert self._hub is not None, "the tools feature was not started"
        return self._hub

    @property
    def confirmer(self) -> DbConfirmer:
        assert self._confirmer is not None, "the tools feature was not started"
        return self._confirmer

    async def start(self, ctx: FeatureContext) -> None:
        ctx.add_tool(make_fetch_page(self.fetcher))
        self.search = WebSearch(ctx.db, self.settings, self.fetcher, offer=ctx)
        await self.search.refresh()
        ctx.provide(WebSearch, self.search)
        self._confirmer = DbConfirmer(
            ctx.db, self.settings.tool_confirm_timeout_s, redis_url=self.settings.redis_url
        )
        await self._confirmer.start()
        ctx.provide(TOOL_CONFIRMER, self._confirmer)
        # MCP servers come and go while the app runs: the hub keeps their tools in step.
        self._hub = McpHub(ctx.db, ctx.tool_registry, self.fetcher)
        ctx.provide(
            WebToolsService,
            WebToolsService(
                self.settings, self.fetcher, self._hub, self._confirmer, ctx.tool_registry
            ),
        )
        try:
            await self._hub.sync()
        except Exception:
            log.exception("could not connect MCP servers at start; will retry")
        if self.settings.mcp_refresh_s > 0:
            self._refresher = asyncio.create_task(
                self._refresh_forever(self.settings.mcp_refresh_s)
            )

    async def _refresh_forever(self, interval_s: float) -> None:
        """Follow other workers' changes: MCP servers and the web search back end."""
        assert self._hub is not None and self.search is not None
        while True:
            await asyncio.sleep(interval_s)
            for part, refresh in (
                ("MCP servers", self._hub.sync),
                ("web search", self.search.refresh),
            ):
                try:
                    await refresh()
                except Exception:
                    log.exception("could not refresh %s; will retry", part)

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._hub is not None:
            await self._hub.aclose()
        if self._confirmer is not None:
            await self._confirmer.aclose()
        if self.search is not None:
            await self.search.aclose()
        await self.fetcher.aclose()


def web_tools_feature(settings: Settings) -> WebToolsFeature:
    return WebToolsFeature(settings)
