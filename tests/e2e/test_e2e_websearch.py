"""Web search from nothing to a cited answer, in Chromium against a real ``parley serve``.

The server starts with no search settings in its environment. A member sees the
composer's globe say search is not set up and to ask an admin; the admin (the first
account, signed up in the web app) follows the globe's link to Admin > Web search,
points it at a SearxNG-shaped server this module runs, tests it, saves it (no
restart), turns the globe on in a new chat, and the scripted model searches: the
answer's ``[n]`` markers are link chips that open the result in a new tab, listed
again under the answer, and still there after a reload. With the globe off the next
message no longer asks the model to search.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from e2ehelpers import (
    PageLog,
    Upstream,
    api_signup,
    chat,
    content,
    messages,
    new_context,
    running_parley,
    shot,
    sign_in,
    ui_signup,
    unique_email,
    upstream_env,
    watch,
)
from localweb import LocalWeb
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def searx() -> Iterator[LocalWeb]:
    server = LocalWeb()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bare_server(upstream: Upstream, e2e_tmp: Path) -> Iterator[str]:
    """A server whose environment configures no web search (and no first account yet)."""
    with running_parley(
        "parley-websearch", e2e_tmp / "websearch-data", upstream_env(upstream), e2e_tmp
    ) as base:
        yield base


def _system_prompt(upstream: Upstream) -> str:
    sent = upstream.chat_requests()[-1]["json"]["messages"]
    return "\n".join(str(m.get("content")) for m in sent if m.get("role") == "system")


def _open(browser: Browser, base: str, log: PageLog) -> Page:
    page = new_context(browser, base).new_page()
    watch(page, log)
    return page


def test_admin_turns_on_web_search_and_answers_cite_links(
    browser: Browser, bare_server: str, searx: LocalWeb, upstream: Upstream
) -> None:
    log = PageLog()
    # The first account, signed up in the web app, is the admin.
    admin = _open(browser, bare_server, log)
    ui_signup(admin, "Ada Admin", unique_email("wsadmin"))

    # A member: the globe says search is not set up, and to ask an admin (no link).
    member_account = api_signup(bare_server, name="Mo Member")
    member = _open(browser, bare_server, log)
    sign_in(member.context, member_account, bare_server)
    member.goto("/")
    globe = member.get_by_test_id("websearch-toggle")
    expect(globe).to_have_attribute("data-state", "unavailable")
    globe.click()
    note = member.get_by_test_id("websearch-unavailable")
    expect(note).to_contain_text("Web search is not set up.")
    expect(note).to_contain_text("Ask an administrator to turn it on.")
    expect(note.get_by_role("link")).to_have_count(0)
    # The Tools menu says why web search cannot be chosen.
    member.get_by_test_id("tools-menu").click()
    expect(member.get_by_test_id("tool-unavailable-web_search")).to_contain_text("not set up")
    shot(member, "websearch-member-not-set-up")
    member.keyboard.press("Escape")

    # The admin's globe leads to Admin > Web search.
    admin.goto("/")
    admin.get_by_test_id("websearch-toggle").click()
    admin.get_by_test_id("websearch-setup-link").click()
    expect(admin).to_have_url(re.compile(r"/admin/websearch$"))
    expect(admin.get_by_test_id("websearch-state")).to_have_attribute("data-active", "false")
    expect(admin.get_by_test_id("websearch-state")).to_contain_text("from the server’s environment")

    # Configure the SearxNG-shaped server, test it, save it.
    admin.get_by_test_id("websearch-provider").select_option("searxng")
    admin.get_by_test_id("websearch-url").fill(searx.base)
    admin.get_by_test_id("websearch-test").click()
    result = admin.get_by_test_id("websearch-test-result")
    expect(result).to_contain_text("Works: 2 results")
    expect(result).to_contain_text("Why otters hold hands")
    assert searx.queries == ["Parley web search test"]
    admin.get_by_test_id("websearch-save").click()
    state = admin.get_by_test_id("websearch-state")
    expect(state).to_have_attribute("data-active", "true")
    expect(state).to_contain_text("On: SearxNG")
    expect(state).to_contain_text("saved here")
    shot(admin, "websearch-admin-saved")

    # A new chat with the globe on: the model gets the search tool and cites [n].
    upstream.script(
        {"tool_calls": [["web_search", json.dumps({"query": "why do otters hold hands"})]]},
        {"text": "Sea otters hold hands so they do not drift apart [1]. A group is a raft [2]."},
    )
    admin.goto("/")
    globe = admin.get_by_test_id("websearch-toggle")
    expect(globe).to_have_attribute("data-state", "off")
    globe.click()
    expect(globe).to_have_attribute("aria-pressed", "true")
    expect(globe).to_contain_text("Search")
    reply = chat(admin, "Why do otters hold hands?", timeout=60_000)
    expect(reply).to_have_attribute("data-status", "complete")
    assert searx.queries[-1] == "why do otters hold hands"
    assert "web_search" in {
        t["function"]["name"] for t in upstream.chat_requests()[0]["json"].get("tools") or []
    }

    otters, rafts = f"{searx.base}/otters", f"{searx.base}/rafts"

    def check_chips() -> None:
        first = messages(admin, "assistant").first  # the searched answer
        chips = content(first).get_by_test_id("web-citation")
        expect(chips).to_have_count(2)
        host = urlsplit(searx.base).netloc
        for chip, url, title in (
            (chips.nth(0), otters, "Why otters hold hands"),
            (chips.nth(1), rafts, "Otter rafts"),
        ):
            expect(chip).to_have_attribute("href", url)
            expect(chip).to_have_attribute("target", "_blank")
            expect(chip).to_have_attribute("rel", "noopener noreferrer")
            expect(chip).to_have_text(host)
            expect(chip).to_have_attribute("title", re.compile(re.escape(title)))
        # The answer's own text shows chips, not "[n]" (the step's output keeps its numbers).
        answer = content(first).locator("p", has_text="do not drift apart")
        expect(answer).to_have_count(1)
        expect(answer).not_to_contain_text("[1]")

    check_chips()
    sources = reply.get_by_test_id("sources")
    expect(sources.locator("summary")).to_contain_text("Sources (2)")
    sources.locator("summary").click()
    expect(sources.locator("li").nth(0)).to_contain_text("[1]")
    expect(sources.get_by_role("link").nth(0)).to_have_attribute("href", otters)
    assert "javascript" not in (sources.inner_html() or "")
    shot(admin, "websearch-cited-answer")

    # A chip opens its source in a new tab.
    with admin.context.expect_page() as opened:
        content(reply).get_by_test_id("web-citation").nth(0).click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == otters
    expect(tab.locator("h1")).to_have_text("Why otters hold hands")
    tab.close()

    # Reload: the chips come back from the stored answer; the globe is still on here.
    admin.reload()
    check_chips()
    expect(admin.get_by_test_id("websearch-toggle")).to_have_attribute("aria-pressed", "true")

    # The globe asked the model to search; off, the next message does not ask.
    asked = "The user turned on web search for this message"
    assert asked in _system_prompt(upstream)
    admin.get_by_test_id("websearch-toggle").click()
    expect(admin.get_by_test_id("websearch-toggle")).to_have_attribute("aria-pressed", "false")
    upstream.script({"text": "You are welcome."})
    chat(admin, "Thanks!")
    assert asked not in _system_prompt(upstream)
    shot(admin, "websearch-globe-off")

    # On a phone the chips, the globe and the admin form still fit.
    admin.set_viewport_size({"width": 375, "height": 740})
    admin.get_by_test_id("websearch-toggle").click()
    expect(admin.get_by_test_id("websearch-toggle")).to_have_attribute("aria-pressed", "true")
    check_chips()
    messages(admin, "assistant").first.scroll_into_view_if_needed()
    shot(admin, "websearch-mobile-chat")
    admin.goto("/admin/websearch")
    expect(admin.get_by_test_id("websearch-save")).to_be_in_viewport()
    shot(admin, "websearch-mobile-admin")

    # The member's globe now works too (no restart); the Tools menu lists web search.
    member.reload()
    expect(member.get_by_test_id("websearch-toggle")).to_have_attribute("data-state", "off")
    member.get_by_test_id("tools-menu").click()
    expect(member.get_by_test_id("tool-toggle-web_search")).to_be_visible()

    problems = log.problems()
    assert not problems, problems
