"""The fetch_page tool: extraction, citations, limits, refusals, end to end."""

from __future__ import annotations

import json

from webtools_helpers import Client, LocalWeb, Page, article, parse_sse

from parley.messages import ToolCall
from parley.net import AddressPolicy, SafeFetcher
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import ToolContext, ToolRegistry
from parley.web_tools.page import make_fetch_page

LOCAL = AddressPolicy.from_entries(["127.0.0.1"])
STORY = "Sea otters hold hands while they sleep.\nThey wrap themselves in kelp to stay put.\n" + (
    "\n".join(
        f"Fact {i}: otters are social marine mammals of the North Pacific coasts; "
        "they eat sea urchins, crabs and clams."
        for i in range(5)
    )
)


async def run_fetch(fetcher: SafeFetcher, url: str, **extra: object) -> tuple[str, bool, list]:
    registry = ToolRegistry([make_fetch_page(fetcher)])
    ctx = ToolContext()
    outcome = await registry.run(
        ToolCall("c", "fetch_page", json.dumps({"url": url, **extra})), context=ctx
    )
    return outcome.output, outcome.is_error, ctx.sources


async def test_extracts_the_main_text_and_cites_the_page(web: LocalWeb) -> None:
    web.route("/otters", Page(article("Otter facts", STORY)))
    fetcher = SafeFetcher(LOCAL)
    try:
        output, is_error, sources = await run_fetch(fetcher, f"{web.base}/otters")
    finally:
        await fetcher.aclose()
    assert not is_error
    assert output.startswith(f"Page: Otter facts\nURL: {web.base}/otters")
    assert "hold hands while they sleep" in output and "wrap themselves in kelp" in output
    assert "Menu item" not in output and "Copyright footer" not in output
    assert sources == [
        {
            "kind": "web",
            "url": f"{web.base}/otters",
            "title": "Otter facts",
            "snippet": sources[0]["snippet"],
        }
    ]
    assert "Sea otters hold hands" in sources[0]["snippet"]


async def test_plain_text_redirects_and_length_cap(web: LocalWeb) -> None:
    web.route("/old", Page("", 301, headers={"Location": "/notes.txt"}))
    web.route("/notes.txt", Page("line\n" * 2000, content_type="text/plain"))
    fetcher = SafeFetcher(LOCAL)
    try:
        output, is_error, sources = await run_fetch(fetcher, f"{web.base}/old", max_chars=300)
    finally:
        await fetcher.aclose()
    assert not is_error
    assert f"URL: {web.base}/notes.txt" in output and "(redirected 1 time(s))" in output
    assert "[page text truncated at 300 characters]" in output
    assert sources[0]["url"] == f"{web.base}/notes.txt"


async def test_non_pages_and_blocked_urls_are_errors_for_the_model(web: LocalWeb) -> None:
    web.route("/img.png", Page(b"\x89PNG....", content_type="image/png"))
    fetcher = SafeFetcher(LOCAL)
    blocked = SafeFetcher()
    try:
        png, png_error, png_sources = await run_fetch(fetcher, f"{web.base}/img.png")
        meta, meta_error, _ = await run_fetch(blocked, "http://169.254.169.254/latest/meta-data/")
        scheme, scheme_error, _ = await run_fetch(blocked, "file:///etc/passwd")
    finally:
        await fetcher.aclose()
        await blocked.aclose()
    assert png_error and "image/png" in png and png_sources == []
    assert meta_error and "cloud metadata address" in meta
    assert scheme_error and "Only http and https" in scheme


async def test_fetch_page_in_a_turn_is_a_visible_step_with_a_citation(
    client: Client, conversation: str, scripted: ScriptedModel, web: LocalWeb
) -> None:
    web.route("/otters", Page(article("Otter facts", STORY)))
    url = f"{web.base}/otters"
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("f1", "fetch_page", json.dumps({"url": url}))]),
        "They hold hands [source](" + url + ").",
    )
    response = await client.post(
        f"/api/conversations/{conversation}/messages", json={"content": f"Summarize {url}"}
    )
    events = parse_sse(response.text)
    start = next(data for name, data in events if name == "tool_start")
    assert start["name"] == "fetch_page" and url in start["arguments"]
    message = dict(events)["done"]["message"]
    assert message["steps"][0]["name"] == "fetch_page"
    assert "hold hands while they sleep" in message["steps"][0]["output"]
    assert message["sources"][0]["url"] == url
    assert len(web.hits("/otters")) == 1
