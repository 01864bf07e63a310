"""HTTP API of Admin > Web search (admins only; the rules are ``search_config.WebSearch``).

- ``GET    /api/admin/web-search``: what is in use, where it came from, never the key.
- ``PUT    /api/admin/web-search``: save a back end (applies now, no restart).
- ``POST   /api/admin/web-search/test``: run a real query through the form's back end.
- ``DELETE /api/admin/web-search``: forget the saved choice; the environment's applies.

Whether search can be used is public to signed-in users through ``GET /api/tools``
(``web_search`` listed, or withheld with a reason), which the composer reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from parley.http.bodies import Body
from parley.http.deps import AdminUser, service
from parley.http.guard import GuardedRoute
from parley.web_tools.search_config import SearchKind, WebSearch, ddgs_available, key_hint

router = APIRouter(route_class=GuardedRoute, prefix="/api/admin/web-search", tags=["web search"])

Search = Annotated[WebSearch, Depends(service(WebSearch))]


class WebSearchIn(Body):
    """The admin's form. ``api_key`` left empty keeps the key already in use for
    the same service; ``url`` is for SearxNG only."""

    provider: SearchKind
    url: str | None = Field(default=None, max_length=2000)
    api_key: str | None = Field(default=None, max_length=500)


class WebSearchConfigPublic(BaseModel):
    provider: SearchKind = Field(description="The search service in use; none: search is off")
    source: Literal["environment", "database"] = Field(
        description="database: saved in Admin > Web search (overrides the environment)"
    )
    url: str | None = Field(description="The SearxNG instance's address")
    key_set: bool = Field(description="An API key is stored (it is never returned)")
    key_hint: str | None = Field(description="The key's last four characters, to recognise it")
    active: bool = Field(description="Search is offered to the model now")
    error: str | None = Field(description="Why the chosen service cannot be used")
    ddgs_available: bool = Field(description="The keyless back end's package is installed")
    updated_at: str | None


class WebSearchTestResult(BaseModel):
    ok: bool
    count: int = Field(description="How many results the test query returned")
    titles: list[str] = Field(description="The results' titles (untrusted text)")
    error: str | None


def _public(search: WebSearch) -> WebSearchConfigPublic:
    choice = search.choice
    return WebSearchConfigPublic(
        provider=choice.provider,
        source=choice.source,
        url=choice.url,
        key_set=bool(choice.api_key),
        key_hint=key_hint(choice.api_key),
        active=search.configured,
        error=search.error,
        ddgs_available=ddgs_available(),
        updated_at=choice.updated_at.isoformat() if choice.updated_at else None,
    )


@router.get("")
async def get_web_search(search: Search, admin: AdminUser) -> WebSearchConfigPublic:
    await search.refresh()
    return _public(search)


@router.put("")
async def save_web_search(
    body: WebSearchIn, search: Search, admin: AdminUser
) -> WebSearchConfigPublic:
    await search.save(body.provider, body.url, body.api_key, admin.id)
    return _public(search)


@router.delete("")
async def reset_web_search(search: Search, admin: AdminUser) -> WebSearchConfigPublic:
    await search.reset()
    return _public(search)


@router.post("/test")
async def test_web_search(
    body: WebSearchIn, search: Search, admin: AdminUser
) -> WebSearchTestResult:
    await search.refresh()
    found = await search.test(body.provider, body.url, body.api_key)
    return WebSearchTestResult(
        ok=found.ok, count=found.count, titles=found.titles, error=found.error
    )
