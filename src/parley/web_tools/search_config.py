"""Admin > Web search: the search back end chosen in the web app, and applying it live.

The environment (``PARLEY_SEARCH_PROVIDER``, ``PARLEY_SEARXNG_URL``, the API keys)
gives the initial value; once an admin saves, the database row
(``WebSearchConfigRow``) overrides it until the admin resets it. The API key is
write-only, as a provider's key is: stored, used, never returned (only its last
four characters, so an admin can tell which key is in use).

``WebSearch`` is the back end the ``web_search`` tool calls on this worker. It
swaps back ends without a restart: a save on this worker applies at once; other
workers notice the row's ``updated_at`` on their next refresh (the tools list
and the MCP refresh interval both check it, one primary-key read). When no back
end is configured the tool is withheld with a reason, so the tools list says
search is not set up and the model is never offered a tool that cannot work.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from parley.config import Settings
from parley.errors import Invalid
from parley.net import FetchBlocked, FetchError, SafeFetcher, parse_url
from parley.storage.db import Database
from parley.storage.tables import utcnow
from parley.tools import Tool
from parley.web_tools.page import make_web_search
from parley.web_tools.search import (
    SearchProvider,
    SearchResult,
    build_search_provider,
    env_search_choice,
    env_search_key,
)
from parley.web_tools.tables import WebSearchConfigRow

__all__ = [
    "NOT_SET_UP",
    "SearchChoice",
    "SearchKind",
    "SearchTest",
    "WebSearch",
    "ddgs_available",
    "key_hint",
]

log = logging.getLogger(__name__)

SearchKind = Literal["none", "searxng", "brave", "tavily", "ddgs"]
ROW_ID = "default"
TEST_QUERY = "Parley web search test"
TEST_TIMEOUT_S = 20.0
_NEEDS = {
    "searxng": "PARLEY_SEARXNG_URL",
    "brave": "PARLEY_BRAVE_API_KEY",
    "tavily": "PARLEY_TAVILY_API_KEY",
    "ddgs": "the ddgs package",
}
NOT_SET_UP = "Web search is not set up: an admin can turn it on in Admin > Web search."


def ddgs_available() -> bool:
    """Whether the optional keyless back end (the ``ddgs`` package) is installed."""
    return importlib.util.find_spec("ddgs") is not None


def key_hint(key: str | None) -> str | None:
    """Enough of a key to recognise it ("…f3a9"), never enough to use it."""
    if not key:
        return None
    return "…" + key[-4:] if len(key) >= 12 else "…"


@dataclass(frozen=True, slots=True)
class SearchChoice:
    """A back end with its URL or key, and where the choice came from."""

    provider: SearchKind
    url: str | None = None
    api_key: str | None = None
    source: Literal["environment", "database"] = "environment"
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchTest:
    """What a test query through a back end found (the admin's Test button)."""

    ok: bool
    count: int
    titles: list[str]
    error: str | None


class ToolOffer(Protocol):
    """Where the tool is offered or withheld (the feature's ``FeatureContext``)."""

    def add_tool(self, tool: Tool, *, replace: bool = False) -> None: ...

    def withhold_tool(self, tool: Tool, reason: str) -> None: ...


class WebSearch:
    """The ``web_search`` tool's back end on this worker, swapped without a restart.

    It is itself a ``SearchProvider`` (it delegates to the current one), so the
    tool is built once and keeps working across changes.
    """

    def __init__(
        self,
        db: Database | None,
        settings: Settings,
        fetcher: SafeFetcher,
        *,
        offer: ToolOffer | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.fetcher = fetcher
        self.tool: Tool = make_web_search(self, settings.search_max_results)
        self.choice: SearchChoice = self.env_choice()
        self.error: str | None = None  # why the chosen back end could not be built
        self._current: SearchProvider | None = None
        self.name = "none"  # the back end's, for the tool's output ("Results for ... (searxng)")
        self._loaded = False
        self._lock = asyncio.Lock()
        self._offer = offer  # the FeatureContext: add_tool / withhold_tool

    # ------------------------------------------------------------ the provider protocol

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        if self._current is None:
            raise FetchError(NOT_SET_UP)
        return await self._current.search(query, limit)

    async def aclose(self) -> None:
        if self._current is not None:
            await self._current.aclose()
            self._current = None

    # ------------------------------------------------------------ what is configured

    @property
    def configured(self) -> bool:
        return self._current is not None

    def env_choice(self) -> SearchChoice:
        """What the environment configures (the value before any admin saves)."""
        kind = env_search_choice(self.settings)
        return SearchChoice(
            kind,  # type: ignore[arg-type]  # env_search_choice returns one of SearchKind
            url=self.settings.searxng_url if kind == "searxng" else None,
            api_key=env_search_key(self.settings, kind),
        )

    async def stored_choice(self) -> SearchChoice | None:
        if self.db is None:  # `parley doctor` with a database it could not open
            return None
        async with self.db.session() as session:
            row = await session.get(WebSearchConfigRow, ROW_ID)
        if row is None:
            return None
        return SearchChoice(
            row.provider,  # type: ignore[arg-type]  # written only through save()
            url=row.url,
            api_key=row.api_key,
            source="database",
            updated_at=row.updated_at,
        )

    async def refresh(self, *, force: bool = False) -> None:
        """Apply the stored choice (or the environment's) if it changed since last time."""
        async with self._lock:
            choice = await self.stored_choice() or self.env_choice()
            if self._loaded and not force and choice == self.choice:
                return
            await self._apply(choice)

    async def _apply(self, choice: SearchChoice) -> None:
        old, self._current, self.error = self._current, None, None
        try:
            self._current = build_search_provider(
                choice.provider, self.fetcher, url=choice.url, api_key=choice.api_key
            )
        except (ValueError, FetchError, FetchBlocked) as exc:
            self.error = getattr(exc, "message", None) or str(exc)
            if choice.source == "environment":  # admins only see this (their page, doctor)
                self.error += (
                    f" (PARLEY_SEARCH_PROVIDER={choice.provider} needs {_NEEDS[choice.provider]})"
                )
            log.warning("web search (%s) cannot be used: %s", choice.provider, self.error)
        self.choice, self._loaded = choice, True
        self.name = self._current.name if self._current is not None else "none"
        if old is not None:
            await old.aclose()
        offer = self._offer
        if offer is None:
            return
        if self._current is not None:
            offer.add_tool(self.tool, replace=True)
        else:
            offer.withhold_tool(self.tool, NOT_SET_UP)

    # ------------------------------------------------------------ admin changes

    def _resolve(self, provider: SearchKind, url: str | None, api_key: str | None) -> SearchChoice:
        """The choice an admin's form describes, checked; a key left empty keeps the
        one in use for the same back end."""
        url = (url or "").strip() or None
        api_key = (api_key or "").strip() or None
        if provider == "searxng":
            if not url:
                raise Invalid("Enter the address of your SearxNG instance.", "search_url_missing")
            try:
                parsed = parse_url(url)
            except FetchBlocked as exc:
                raise Invalid(f"That address cannot be used: {exc.message}", "url_blocked") from exc
            if not url.lower().startswith(("http://", "https://")):
                raise Invalid(
                    "The SearxNG address must start with http:// or https://.", "url_blocked"
                )
            return SearchChoice("searxng", url=parsed.url.rstrip("/"), source="database")
        if provider in ("brave", "tavily"):
            if api_key is None and self.choice.provider == provider:
                api_key = self.choice.api_key
            if not api_key:
                raise Invalid(f"Enter your {provider.title()} API key.", "search_key_missing")
            return SearchChoice(provider, api_key=api_key, source="database")
        if provider == "ddgs" and not ddgs_available():
            raise Invalid(
                "Keyless search needs the 'ddgs' package on the server "
                "(pip install 'parley[keyless-search]').",
                "ddgs_missing",
            )
        return SearchChoice(provider, source="database")

    async def save(
        self, provider: SearchKind, url: str | None, api_key: str | None, admin_id: str
    ) -> None:
        """Store the admin's choice and apply it on this worker now."""
        choice = self._resolve(provider, url, api_key)
        assert self.db is not None, "saving needs the database"
        async with self.db.session() as session:
            row = await session.get(WebSearchConfigRow, ROW_ID)
            if row is None:
                row = WebSearchConfigRow(id=ROW_ID, provider=choice.provider)
                session.add(row)
            row.provider, row.url, row.api_key = choice.provider, choice.url, choice.api_key
            row.updated_by, row.updated_at = admin_id, utcnow()
            await session.commit()
        await self.refresh(force=True)

    async def reset(self) -> None:
        """Forget the admin's choice: the environment's applies again."""
        assert self.db is not None, "resetting needs the database"
        async with self.db.session() as session:
            row = await session.get(WebSearchConfigRow, ROW_ID)
            if row is not None:
                await session.delete(row)
                await session.commit()
        await self.refresh(force=True)

    async def test(self, provider: SearchKind, url: str | None, api_key: str | None) -> SearchTest:
        """Run a real query through the back end the form describes (not saved)."""
        choice = self._resolve(provider, url, api_key)
        if choice.provider == "none":
            return SearchTest(False, 0, [], "Web search is off; choose a search service to test.")
        try:
            backend = build_search_provider(
                choice.provider, self.fetcher, url=choice.url, api_key=choice.api_key
            )
        except (ValueError, FetchError, FetchBlocked) as exc:
            return SearchTest(False, 0, [], getattr(exc, "message", None) or str(exc))
        assert backend is not None
        try:
            found = await asyncio.wait_for(backend.search(TEST_QUERY, 5), TEST_TIMEOUT_S)
        except FetchError as exc:
            return SearchTest(False, 0, [], exc.message)
        except TimeoutError:
            return SearchTest(False, 0, [], f"No answer within {TEST_TIMEOUT_S:.0f} seconds.")
        finally:
            await backend.aclose()
        return SearchTest(True, len(found), [r.title for r in found], None)
