"""375 px wide: the screens the phone test does not visit (settings tabs, admin) fit
without sideways scrolling of the page, and search works from the drawer."""

from __future__ import annotations

import pytest
from e2ehelpers import MOBILE, PageLog, api_chat, new_context, sign_in, watch
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


def page_fits(page: Page) -> None:
    width = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    assert width <= MOBILE["width"], f"{page.url} is {width} px wide"


def test_settings_admin_and_search_at_375px(browser: Browser, server: str, admin) -> None:
    log = PageLog()
    ctx = new_context(browser, server, viewport=MOBILE, is_mobile=True, has_touch=True)
    try:
        sign_in(ctx, admin.account, server)
        with admin.account.api(server) as api:
            api_chat(api, "Phones and the narwhal migration")
        page = ctx.new_page()
        watch(page, log)
        for tab in ("general", "personalization", "keys", "account"):
            page.goto(f"/settings/{tab}" if tab != "general" else "/settings")
            expect(page.get_by_test_id(f"settings-tab-{tab}")).to_have_attribute(
                "aria-current", "page"
            )
            page_fits(page)
        page.goto("/admin/users")
        expect(page.get_by_test_id("users-table")).to_be_visible()
        page_fits(page)
        expect(page.get_by_test_id("signup-mode")).to_be_in_viewport()
        page.goto("/admin/providers")
        expect(page.get_by_test_id("providers-table")).to_be_visible()
        page_fits(page)
        expect(page.get_by_test_id("provider-url")).to_be_visible()

        page.goto("/")
        page.get_by_test_id("open-sidebar").click()
        sidebar = page.get_by_test_id("sidebar")
        expect(sidebar).to_be_in_viewport()
        sidebar.get_by_test_id("search-input").fill("narwhal")
        hit = sidebar.get_by_test_id("search-hit").first
        expect(hit.locator("mark").first).to_have_text("narwhal")
        hit.click()
        expect(sidebar).not_to_be_in_viewport()
        expect(page.get_by_test_id("message").first).to_contain_text("narwhal")
        page_fits(page)
    finally:
        ctx.close()
    assert not log.problems(), log.problems()
