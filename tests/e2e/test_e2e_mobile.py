"""The phone layout (375x812): the sidebar collapses into a drawer, the composer works,
nothing scrolls sideways."""

from __future__ import annotations

import pytest
from e2ehelpers import (
    MOBILE,
    Account,
    PageLog,
    Upstream,
    chat,
    content,
    new_context,
    shot,
    sign_in,
    watch,
)
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.e2e


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    body = page.evaluate("document.body.scrollWidth")
    assert width <= MOBILE["width"] and body <= MOBILE["width"], (width, body)


def test_mobile_layout(
    browser: Browser, server: str, user: Account, upstream: Upstream, page_log: PageLog
) -> None:
    ctx = new_context(browser, server, viewport=MOBILE, is_mobile=True, has_touch=True)
    try:
        sign_in(ctx, user, server)
        page = ctx.new_page()
        watch(page, page_log)
        page.goto("/")
        sidebar = page.get_by_test_id("sidebar")
        opener = page.get_by_test_id("open-sidebar")
        expect(opener).to_be_visible()
        # Collapsed: the drawer is off-screen (not in the viewport).
        expect(sidebar).not_to_be_in_viewport()
        composer = page.get_by_test_id("composer")
        expect(composer).to_be_visible()
        expect(composer).to_be_in_viewport()
        no_horizontal_scroll(page)

        upstream.script({"text": "A short answer that fits on a phone screen. " * 6})
        reply = chat(page, "Hello from a phone")
        expect(content(reply)).to_contain_text("fits on a phone")
        box = reply.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"]
        expect(page.get_by_test_id("composer")).to_be_in_viewport()
        no_horizontal_scroll(page)
        shot(page, "mobile")

        # The drawer opens over the chat, lists the conversation, and closes again.
        opener.click()
        expect(sidebar).to_be_in_viewport()
        expect(sidebar.get_by_test_id("sidebar-item")).to_have_count(1)
        expect(sidebar.get_by_test_id("nav-settings")).to_be_visible()
        shot(page, "mobile-sidebar")
        no_horizontal_scroll(page)
        sidebar.get_by_test_id("sidebar-item").first.locator("a").click()
        expect(sidebar).not_to_be_in_viewport()
        expect(content(reply)).to_be_visible()

        # Settings are usable on a phone too.
        opener.click()
        sidebar.get_by_test_id("nav-settings").click()
        expect(page.get_by_test_id("theme-dark")).to_be_visible()
        no_horizontal_scroll(page)
    finally:
        ctx.close()
    problems = page_log.problems()
    assert not problems, problems
