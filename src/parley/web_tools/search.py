"""Web search behind one interface, with interchangeable back ends.

``SearchProvider.search(query, limit)`` returns ``SearchResult``s whatever the
service: a self-hosted SearxNG (its JSON API), the Brave Search API, Tavily,
or (opt-in, needs the internet and the ``ddgs`` package) DuckDuckGo & co.
through ``ddgs``. Requests go through the ``SafeFetcher``'s guarded client and
never follow redirects, so an API key is only ever sent to the configured
host and a compromised search service cannot bounce us to internal addresses.
Result links are kept only when they are plain http(s) URLs: they are shown
to users as clickable citations.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from parley.config import Settings
from parley.messages import WebSource
from parley.net import (
    AddressPolicy,
    FetchBlocked,
    FetchError,
    SafeFetcher,
    parse_url,
    read_limited,
)

__all__ = [
    "BraveSearch",
    "DdgsSearch",
    "SearchProvider",
    "SearchResult",
    "SearxngSearch",
    "TavilySearch",
    "build_search_provider",
    "env_search_choice",
    "env_search_key",
    "make_search_provider",
]

MAX_SNIPPET_CHARS = 500
BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
TAVILY_URL = "https://api.tavily.com/search"
# Encodings read_limited inflates under its limit (httpx would add br/zstd when installed).
_ENCODINGS = {"Accept-Encoding": "gzip, deflate"}


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str

    def source(self) -> WebSource:
        """The citation stored on the answer."""
        return {"kind": "web", "url": self.url, "title": self.title, "snippet": self.snippet}


class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, limit: int) -> list[SearchResult]: ...

    async def aclose(self) -> None: ...


def _clean(items: list[dict[str, Any]], title: str, url: str, snippet: str) -> list[SearchResult]:
    """Results with a usable http(s) link, trimmed; others are dropped."""
    found: list[SearchResult] = []
    for item in items:
        link = str(item.get(url) or "")
        try:
            canonical = parse_url(link).url
        except FetchBlocked:
            continue
        if not link.lower().startswith(("http://", "https://")):
            continue
        text = " ".join(str(item.get(snippet) or "").split())[:MAX_SNIPPET_CHARS]
        found.append(SearchResult(str(item.get(title) or canonical)[:300], canonical, text))
    return found


class _HttpSearch:
    """Shared request handling: one GET/POST, no redirects, JSON back."""

    name = "http"

    def __init__(self, fetcher: SafeFetcher, *, owned: bool = False) -> None:
        self.fetcher = fetcher
        self._owned = owned

    async def aclose(self) -> None:
        if self._owned:
            await self.fetcher.aclose()

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            async with self.fetcher.client(headers=_ENCODINGS) as client:
                request = client.build_request(method, url, **kwargs)
                response = await client.send(request, stream=True)
                try:
                    self._check_status(response)
                    # Read (and inflate) under the byte limit: a hostile or broken
                    # service cannot make the server buffer an endless answer.
                    body, cut = await read_limited(response, self.fetcher.max_bytes)
                finally:
                    await response.aclose()
        except FetchError:
            raise
        except httpx2.HTTPError as exc:
            raise FetchError(f"The {self.name} search service is unreachable: {exc}.") from exc
        if cut:
            raise FetchError(f"The {self.name} search answer is too large.")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FetchError(f"The {self.name} search service did not answer JSON.") from exc

    def _check_status(self, response: httpx2.Response) -> None:
        if response.is_redirect:
            raise FetchError(
                f"The {self.name} search service answered with a redirect; redirects are not "
                "followed for search APIs (check the configured URL)."
            )
        if response.status_code in (401, 403):
            raise FetchError(f"The {self.name} search service refused the API key.")
        if response.status_code == 429:
            raise FetchError(f"The {self.name} search service is rate limiting; try later.")
        if response.status_code >= 400:
            raise FetchError(
                f"The {self.name} search service answered HTTP {response.status_code}."
            )


class SearxngSearch(_HttpSearch):
    """A SearxNG instance's JSON API (``search.formats`` must include ``json``)."""

    name = "searxng"

    def __init__(self, fetcher: SafeFetcher, base_url: str, *, owned: bool = False) -> None:
        super().__init__(fetcher, owned=owned)
        self.base_url = parse_url(base_url).url.rstrip("/")

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        data = await self._json(
            "GET", f"{self.base_url}/search", params={"q": query, "format": "json"}
        )
        items = data.get("results", []) if isinstance(data, dict) else []
        return _clean(items, "title", "url", "content")[:limit]


class BraveSearch(_HttpSearch):
    """The Brave Search API (``X-Subscription-Token``)."""

    name = "brave"

    def __init__(self, fetcher: SafeFetcher, api_key: str, url: str = BRAVE_URL) -> None:
        super().__init__(fetcher)
        self.api_key, self.url = api_key, parse_url(url).url

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        data = await self._json(
            "GET",
            self.url,
            params={"q": query, "count": max(1, min(limit, 20))},
            headers={"X-Subscription-Token": self.api_key, "Accept": "application/json"},
        )
        web = data.get("web", {}) if isinstance(data, dict) else {}
        items = web.get("results", []) if isinstance(web, dict) else []
        return _clean(items, "title", "url", "description")[:limit]


class TavilySearch(_HttpSearch):
    """Tavily's search API (bearer key)."""

    name = "tavily"

    def __init__(self, fetcher: SafeFetcher, api_key: str, url: str = TAVILY_URL) -> None:
        super().__init__(fetcher)
        self.api_key, self.url = api_key, parse_url(url).url

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        data = await self._json(
            "POST",
            self.url,
            json={"query": query, "max_results": max(1, min(limit, 20))},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        items = data.get("results", []) if isinstance(data, dict) else []
        return _clean(items, "title", "url", "content")[:limit]


class DdgsSearch:
    """Keyless metasearch through the ``ddgs`` package (opt-in: it needs the internet).

    ``ddgs`` makes its own connections (not through the guarded fetcher); it
    only talks to public search engines chosen by the library, never to a URL
    a user or model supplies.
    """

    name = "ddgs"

    def __init__(self, text: Callable[..., list[dict[str, Any]]] | None = None) -> None:
        if text is None:
            try:
                from ddgs import DDGS  # type: ignore[import-not-found,unused-ignore]
            except ImportError as exc:
                raise FetchError(
                    "Keyless search needs the 'ddgs' package: pip install 'parley[keyless-search]'."
                ) from exc
            text = DDGS().text
        self._text = text

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        try:
            items = await asyncio.to_thread(self._text, query, max_results=limit)
        except Exception as exc:  # the library raises its own tree; all mean "no results"
            raise FetchError(f"Keyless search failed: {type(exc).__name__}: {exc}.") from exc
        return _clean(list(items or []), "title", "href", "body")[:limit]

    async def aclose(self) -> None:
        return None


def build_search_provider(
    choice: str, fetcher: SafeFetcher, *, url: str | None = None, api_key: str | None = None
) -> SearchProvider | None:
    """The back end ``choice`` (``none``, ``searxng``, ``brave``, ``tavily``, ``ddgs``)
    with its URL or key, whoever chose it (the environment or Admin > Web search).
    Raises ``ValueError`` naming what is missing."""
    if choice == "none":
        return None
    if choice == "searxng":
        if not url:
            raise ValueError("SearxNG needs the URL of the instance")
        host = parse_url(url).host
        # The admin configured this host, so it may be internal; its redirects are not followed.
        scoped = SafeFetcher(
            fetcher.policy.with_hosts(host),
            resolver=fetcher.transport.backend.resolver,
            max_bytes=fetcher.max_bytes,
            timeout_s=fetcher.timeout_s,
        )
        return SearxngSearch(scoped, url, owned=True)
    if choice in ("brave", "tavily"):
        if not api_key:
            raise ValueError(f"{choice.title()} needs an API key")
        return (BraveSearch if choice == "brave" else TavilySearch)(fetcher, api_key)
    if choice == "ddgs":
        return DdgsSearch()
    raise ValueError(f"unknown search back end {choice!r}")


def env_search_choice(settings: Settings) -> str:
    """The back end the settings name; ``auto`` picks the first one configured
    (SearxNG, Brave, Tavily) and never the keyless one."""
    choice = settings.search_provider
    if choice != "auto":
        return choice
    if settings.searxng_url:
        return "searxng"
    if settings.brave_api_key:
        return "brave"
    if settings.tavily_api_key:
        return "tavily"
    return "none"


def env_search_key(settings: Settings, choice: str) -> str | None:
    """The API key the settings hold for ``choice`` (None for keyless back ends)."""
    return {"brave": settings.brave_api_key, "tavily": settings.tavily_api_key}.get(choice)


_ENV_NAMES = {
    "searxng": "PARLEY_SEARXNG_URL",
    "brave": "PARLEY_BRAVE_API_KEY",
    "tavily": "PARLEY_TAVILY_API_KEY",
}


def make_search_provider(settings: Settings, fetcher: SafeFetcher) -> SearchProvider | None:
    """The back end the environment configures (Admin > Web search overrides it:
    ``search_config``)."""
    choice = env_search_choice(settings)
    try:
        return build_search_provider(
            choice,
            fetcher,
            url=settings.searxng_url,
            api_key=env_search_key(settings, choice),
        )
    except ValueError:
        raise ValueError(
            f"PARLEY_SEARCH_PROVIDER={choice} needs {_ENV_NAMES.get(choice, 'its settings')}"
        ) from None


def default_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy.from_entries(settings.fetch_allow_hosts)
