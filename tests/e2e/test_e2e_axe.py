"""Accessibility: axe-core finds no serious or critical violations on the main pages.

axe is injected with ``add_script_tag`` (a <script> element with axe's code), which
the app's CSP (``script-src 'self'``) would refuse, so this context alone is made
with ``bypass_csp=True``. The CSP itself is covered by the other tests."""

from __future__ import annotations

import pytest
from e2ehelpers import (
    MOBILE,
    Account,
    PageLog,
    Upstream,
    api_chat,
    axe_violations,
    new_context,
    sign_in,
    watch,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


def check(page: Page, name: str, failures: dict[str, list[dict[str, object]]]) -> None:
    bad = axe_violations(page)
    if bad:
        failures[name] = bad


def test_no_serious_axe_violations(
    browser: Browser, server: str, admin, upstream: Upstream
) -> None:
    failures: dict[str, list[dict[str, object]]] = {}
    log = PageLog()
    ctx = new_context(browser, server, bypass_csp=True)
    try:
        page = ctx.new_page()
        watch(page, log)
        page.goto("/login")
        expect(page.get_by_test_id("auth-submit")).to_be_visible()
        check(page, "sign-in", failures)
        page.goto("/signup")
        expect(page.locator("#auth-name")).to_be_visible()
        check(page, "sign-up", failures)

        sign_in(ctx, admin.account, server)
        with admin.account.api(server) as api:
            upstream.script(
                {
                    "text": "Here is **bold**, a list:\n\n- one\n- two\n\n"
                    "```python\nprint(1)\n```\n\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n\n[a link](https://example.org)"
                },
                {"tool_calls": [["calculator", '{"expression":"2+2"}']]},
                {"text": "It is 4."},
            )
            conv = api_chat(api, "Show me some formatting")
            api_chat(api, "And 2+2 with the calculator", conv)
            api.patch("/api/me", json={"preferences": {"theme": "light"}})
        page.goto(f"/c/{conv}")
        expect(page.get_by_test_id("message")).to_have_count(4)
        expect(page.get_by_test_id("tool-step")).to_have_count(1)
        check(page, "chat (light)", failures)

        page.goto("/settings")
        page.get_by_test_id("theme-dark").check()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        check(page, "settings general (dark)", failures)
        for tab in ("personalization", "keys", "account"):
            page.get_by_test_id(f"settings-tab-{tab}").click()
            expect(page.get_by_test_id(f"settings-tab-{tab}")).to_have_attribute(
                "aria-current", "page"
            )
            check(page, f"settings {tab} (dark)", failures)

        page.goto(f"/c/{conv}")
        expect(page.get_by_test_id("message")).to_have_count(4)
        check(page, "chat (dark)", failures)

        page.goto("/admin/users")
        expect(page.get_by_test_id("users-table")).to_be_visible()
        check(page, "admin users (dark)", failures)
        page.goto("/admin/providers")
        expect(page.get_by_test_id("providers-table")).to_be_visible()
        check(page, "admin providers (dark)", failures)

        page.goto("/settings")
        page.get_by_test_id("theme-light").check()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        page.goto("/admin/providers")
        expect(page.get_by_test_id("providers-table")).to_be_visible()
        check(page, "admin providers (light)", failures)

        page.set_viewport_size(MOBILE)
        page.goto(f"/c/{conv}")
        expect(page.get_by_test_id("message")).to_have_count(4)
        check(page, "chat at 375 px", failures)
        page.get_by_test_id("open-sidebar").click()
        expect(page.get_by_test_id("sidebar")).to_be_in_viewport()
        check(page, "sidebar drawer at 375 px", failures)
    finally:
        ctx.close()
    assert not failures, "axe serious/critical violations:\n" + "\n".join(
        f"  {page_name}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes']}"
        for page_name, vs in failures.items()
        for v in vs
    )
    assert not log.dialogs and not log.foreign_requests(), (log.dialogs, log.foreign_requests())


def test_axe_on_a_new_users_empty_chat(browser: Browser, server: str, user: Account) -> None:
    ctx = new_context(browser, server, bypass_csp=True)
    try:
        sign_in(ctx, user, server)
        page = ctx.new_page()
        page.goto("/")
        expect(page.get_by_test_id("composer")).to_be_visible()
        bad = axe_violations(page)
        assert not bad, bad
        # Control: axe really runs and reports a nameless button as critical.
        page.evaluate(
            "document.querySelector('main, body').appendChild(document.createElement('button'))"
        )
        assert "button-name" in {v["id"] for v in axe_violations(page)}
    finally:
        ctx.close()
