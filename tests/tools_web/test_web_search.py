"""Search back ends against a local server with canned answers, provider
selection from settings, and the web_search tool end to end with citations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from webtools_helpers import Client, LocalWeb, Page, parse_sse

from parley.config import load_settings
from parley.messages import ToolCall
from parley.net import AddressPolicy, FetchError, SafeFetcher
from parley.providers.scripted import Reply, ScriptedModel
from parley.web_tools.search import (
    BraveSearch,
    DdgsSearch,
    SearxngSearch,
    TavilySearch,
    make_search_provider,
)

LOCAL = AddressPolicy.from_entries(["127.0.0.1"])


@pytest.fixture
async def fetcher() -> Any:
    f = SafeFetcher(LOCAL)
    yield f
    await f.aclose()


async def test_searxng_json_api(web: LocalWeb, fetcher: SafeFetcher) -> None:
    results = await SearxngSearch(fetcher, web.base).search("otters", 5)
    assert [r.url for r in results] == ["https://example.org/otters", "https://example.net/rafts"]
    assert results[0].title == "Otters hold hands"
    assert "drift apart" in results[0].snippet
    seen = web.hits("/search")[0]
    assert seen.query["q"] == ["otters"] and seen.query["format"] == ["json"]
    assert results[0].source() == {
        "kind": "web",
        "url": "https://example.org/otters",
        "title": "Otters hold hands",
        "snippet": results[0].snippet,
    }


async def test_brave_api_sends_its_key_and_maps_results(
    web: LocalWeb, fetcher: SafeFetcher
) -> None:
    canned = {"web": {"results": [{"url": "https://a.example/", "title": "A", "description": "d"}]}}
    web.route("/brave", Page(json.dumps(canned), content_type="application/json"))
    results = await BraveSearch(fetcher, "brave-key", f"{web.base}/brave").search("q", 3)
    assert [(r.title, r.url, r.snippet) for r in results] == [("A", "https://a.example/", "d")]
    seen = web.hits("/brave")[0]
    assert seen.headers["x-subscription-token"] == "brave-key"
    assert seen.query["count"] == ["3"]


async def test_tavily_api_posts_json_with_bearer_key(web: LocalWeb, fetcher: SafeFetcher) -> None:
    canned = {"results": [{"url": "https://t.example/x", "title": "T", "content": "c"}]}
    web.route("/tavily", Page(json.dumps(canned), content_type="application/json"))
    results = await TavilySearch(fetcher, "tvly-key", f"{web.base}/tavily").search("q", 2)
    assert [r.url for r in results] == ["https://t.example/x"]
    seen = web.hits("/tavily")[0]
    assert seen.method == "POST" and seen.headers["authorization"] == "Bearer tvly-key"
    assert json.loads(seen.body) == {"query": "q", "max_results": 2}


async def test_search_apis_never_follow_redirects(web: LocalWeb, fetcher: SafeFetcher) -> None:
    """A compromised search service cannot bounce us (and our API key) elsewhere."""
    web.route("/moved/search", Page("", 302, headers={"Location": "http://169.254.169.254/latest"}))
    web.route("/keyed", Page("", 307, headers={"Location": f"{web.base}/steal"}))
    with pytest.raises(FetchError) as searx:
        await SearxngSearch(fetcher, f"{web.base}/moved").search("q", 3)
    assert "redirect" in searx.value.message
    with pytest.raises(FetchError):
        await BraveSearch(fetcher, "secret-key", f"{web.base}/keyed").search("q", 3)
    assert web.hits("/steal") == []


async def test_search_errors_are_readable(web: LocalWeb, fetcher: SafeFetcher) -> None:
    web.route("/denied", Page("{}", 401, "application/json"))
    web.route("/html", Page("<html>not json</html>"))
    with pytest.raises(FetchError) as denied:
        await BraveSearch(fetcher, "bad", f"{web.base}/denied").search("q", 3)
    assert "refused the API key" in denied.value.message
    with pytest.raises(FetchError) as html:
        await TavilySearch(fetcher, "k", f"{web.base}/html").search("q", 3)
    assert "did not answer JSON" in html.value.message


async def test_searxng_on_an_internal_host_needs_no_allow_list_but_metadata_stays_blocked(
    web: LocalWeb, tmp_path: Path
) -> None:
    """The admin's SearxNG URL is trusted as a host; nothing else becomes reachable."""
    settings = load_settings(data_dir=tmp_path, searxng_url=web.base)
    provider = make_search_provider(settings, SafeFetcher())
    assert isinstance(provider, SearxngSearch)
    try:
        assert len(await provider.search("otters", 5)) == 2
        assert provider.fetcher.policy.allow_hosts == frozenset({"127.0.0.1"})
        bad = SearxngSearch(provider.fetcher, "http://169.254.169.254/")
        with pytest.raises(FetchError):
            await bad.search("q", 1)
    finally:
        await provider.aclose()


def test_provider_selection(tmp_path: Path) -> None:
    fetcher = SafeFetcher()

    def pick(**values: Any) -> str | None:
        provider = make_search_provider(load_settings(data_dir=tmp_path, **values), fetcher)
        return None if provider is None else provider.name

    assert pick() is None
    assert pick(brave_api_key="b") == "brave"
    assert pick(tavily_api_key="t") == "tavily"
    assert pick(brave_api_key="b", searxng_url="http://127.0.0.1:8888") == "searxng"
    assert pick(search_provider="tavily", brave_api_key="b", tavily_api_key="t") == "tavily"
    assert pick(search_provider="none", brave_api_key="b") is None
    assert pick(search_provider="ddgs") == "ddgs"  # only when asked for: it needs the internet
    with pytest.raises(ValueError, match="PARLEY_BRAVE_API_KEY"):
        pick(search_provider="brave")


async def test_keyless_adapter_maps_ddgs_results() -> None:
    calls: list[tuple[str, int]] = []

    def text(query: str, max_results: int) -> list[dict[str, str]]:
        calls.append((query, max_results))
        return [
            {"title": "D", "href": "https://d.example/", "body": "duck"},
            {"title": "bad", "href": "file:///etc/passwd", "body": "dropped"},
        ]

    results = await DdgsSearch(text).search("ducks", 4)
    assert [(r.title, r.url, r.snippet) for r in results] == [("D", "https://d.example/", "duck")]
    assert calls == [("ducks", 4)]

    def broken(query: str, max_results: int) -> list[dict[str, str]]:
        raise RuntimeError("offline")

    with pytest.raises(FetchError, match="Keyless search failed"):
        await DdgsSearch(broken).search("q", 1)


async def test_web_search_tool_feeds_the_answer_with_cited_sources(
    client: Client, conversation: str, scripted: ScriptedModel, web: LocalWeb
) -> None:
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("s1", "web_search", '{"query": "do otters hold hands"}')]),
        lambda request: (
            "Yes: [they do](https://example.org/otters)."
            if "drift apart" in request.messages[-1].content
            else "no results seen"
        ),
    )
    response = await client.post(
        f"/api/conversations/{conversation}/messages", json={"content": "Do otters hold hands?"}
    )
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names.index("tool_start") < names.index("tool_result") < names.index("sources")
    sources = dict(events)["sources"]["sources"]
    assert [s["url"] for s in sources] == [
        "https://example.org/otters",
        "https://example.net/rafts",
    ]
    assert all(s["kind"] == "web" and s["title"] and s["snippet"] for s in sources)
    message = dict(events)["done"]["message"]
    assert message["content"] == "Yes: [they do](https://example.org/otters)."
    assert message["sources"] == sources
    step = message["steps"][0]
    assert step["name"] == "web_search" and not step["is_error"]
    assert "[1] Otters hold hands" in step["output"] and step["duration_ms"] >= 0
    # The model saw the results as untrusted tool output.
    tool_message = scripted.requests[1].messages[-1]
    assert tool_message.role == "tool" and tool_message.content.startswith("<tool_output")
    stored = (await client.get(f"/api/conversations/{conversation}")).json()["messages"][-1]
    assert stored["sources"] == sources
