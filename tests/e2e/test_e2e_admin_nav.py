"""Admin's thirteen sections in five groups: a list down the left at 1280x800, two
rows of tabs on a phone; every name on one line and whole, a link to a section
opens it with its group marked, and the page never scrolls sideways."""

from __future__ import annotations

import pytest
from e2ehelpers import ADMIN_GROUPS, MOBILE, PageLog, new_context, open_admin, shot, sign_in, watch
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
PHONE_390 = {"width": 390, "height": 844}


def _one_line_and_whole(link: Locator) -> None:
    """The link's text is on one line and not cut off."""
    fits = link.evaluate(
        """el => ({cut: el.scrollWidth > el.clientWidth + 1, rects: el.getClientRects().length,
                   height: el.getBoundingClientRect().height})"""
    )
    assert not fits["cut"], f"{link} is cut off: {fits}"
    assert fits["rects"] == 1 and fits["height"] < 48, f"{link} wraps: {fits}"


def _same_row(links: list[Locator]) -> None:
    tops = {round((link.bounding_box() or {"y": -1})["y"]) for link in links}
    assert len(tops) == 1, f"the row wraps: tops {sorted(tops)}"


def _page_fits(page: Page, width: int) -> None:
    scroll = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    assert scroll <= width, f"{page.url} is {scroll} px wide"


def test_admin_sections_at_1280x800(browser: Browser, server: str, admin) -> None:
    log = PageLog()
    ctx = new_context(browser, server, viewport=DESKTOP)
    try:
        sign_in(ctx, admin.account, server)
        page = ctx.new_page()
        watch(page, log)
        page.goto("/admin/budgets")  # a deep link opens its section
        expect(page.get_by_test_id("admin-tab-budgets")).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("region", name="Budgets")).to_be_visible()
        nav = page.get_by_test_id("admin-nav")
        expect(page.get_by_test_id("admin-groups")).to_be_hidden()  # the list names the groups
        box = nav.bounding_box()
        assert box and box["y"] + box["height"] <= DESKTOP["height"], box
        content = page.locator("section.content").bounding_box()
        assert content and box["x"] + box["width"] <= content["x"], (box, content)  # on the left
        for sections in ADMIN_GROUPS.values():
            for section in sections:
                link = page.get_by_test_id(f"admin-tab-{section}")
                expect(link).to_be_visible()
                _one_line_and_whole(link)
        for section in ("users", "providers", "jobs", "mcp"):
            open_admin(page, section)
            expect(page).to_have_url(f"{server}/admin/{section}")
        shot(page, "admin-nav-1280")
        _page_fits(page, DESKTOP["width"])
    finally:
        ctx.close()
    assert not log.problems(), log.problems()


def test_admin_sections_on_a_phone(browser: Browser, server: str, admin) -> None:
    log = PageLog()
    ctx = new_context(browser, server, viewport=MOBILE, is_mobile=True, has_touch=True)
    try:
        sign_in(ctx, admin.account, server)
        page = ctx.new_page()
        watch(page, log)
        page.goto("/admin/websearch")
        expect(page.get_by_test_id("admin-group-tools")).to_have_attribute("aria-current", "true")
        groups = [page.get_by_test_id(f"admin-group-{g}") for g in ADMIN_GROUPS]
        for tab in groups:
            expect(tab).to_be_visible()
            _one_line_and_whole(tab)
        _same_row(groups)
        for group, sections in ADMIN_GROUPS.items():
            for section in sections:
                open_admin(page, section)
                expect(page.get_by_test_id(f"admin-group-{group}")).to_have_attribute(
                    "aria-current", "true"
                )
            links = [page.get_by_test_id(f"admin-tab-{s}") for s in sections]
            for link in links:
                expect(link).to_be_visible()
                _one_line_and_whole(link)
            _same_row(links)
            # only the open group's sections are shown
            others = [s for g, ss in ADMIN_GROUPS.items() if g != group for s in ss]
            expect(page.get_by_test_id(f"admin-tab-{others[0]}")).to_be_hidden()
            _page_fits(page, MOBILE["width"])
            if group == "models":
                shot(page, "admin-nav-375")
        page.set_viewport_size(PHONE_390)  # a larger phone: the same two rows
        open_admin(page, "providers")
        _same_row(groups)
        _page_fits(page, PHONE_390["width"])
        shot(page, "admin-nav-390")
    finally:
        ctx.close()
    assert not log.problems(), log.problems()
