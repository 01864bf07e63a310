"""Session expiry handled gracefully: when the server no longer accepts the session,
the next action leads to the sign-in page with an explanation (no error page, no
dialog), and signing in again returns to where the user was."""

from __future__ import annotations

import re

import httpx
import pytest
from e2ehelpers import Account, api_chat, content, messages
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def end_browser_session(page: Page, server: str) -> None:
    """End the page's session on the server (as an expiry would), keeping its cookies."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = httpx.post(
        f"{server}/api/auth/logout",
        cookies=cookies,
        headers={"X-CSRF-Token": cookies["parley_csrf"]},
        timeout=10,
    )
    assert r.status_code == 204, r.text
    assert page.request.get("/api/auth/me").status == 401  # the browser's cookie is dead


def test_expired_session_goes_to_sign_in_and_back(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        first = api_chat(api, "The first conversation about otters")
        second = api_chat(api, "The second conversation about beavers")
    page.goto(f"/c/{second}")
    expect(content(messages(page, "user").first)).to_contain_text("beavers")

    end_browser_session(page, server)
    # The next action needs the server: it answers 401.
    page.locator(f"[data-conversation-id='{first}'] a").click()
    expect(page).to_have_url(re.compile(rf"/login\?next=%2Fc%2F{first}$"))
    flash = page.get_by_test_id("auth-flash")
    expect(flash).to_contain_text("Your session expired")
    expect(page.get_by_test_id("composer")).to_have_count(0)

    page.get_by_test_id("auth-email").fill(user.email)
    page.get_by_test_id("auth-password").fill(user.password)
    page.get_by_test_id("auth-submit").click()
    expect(page).to_have_url(re.compile(rf"/c/{first}$"))
    expect(content(messages(page, "user").first)).to_contain_text("otters")
    expect(page.get_by_test_id("auth-flash")).to_have_count(0)


def test_expired_session_while_sending_keeps_nothing_half_done(
    page: Page, user: Account, server: str
) -> None:
    page.goto("/")
    expect(page.get_by_test_id("composer")).to_be_enabled()
    # The page's own start-up requests (sidebar, assistants, settings) are done: the
    # session ends while the user types, not while the page is still loading.
    page.wait_for_load_state("networkidle")
    end_browser_session(page, server)
    page.get_by_test_id("composer").fill("Are you still there?")
    page.get_by_test_id("composer").press("Enter")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_test_id("auth-flash")).to_contain_text("Your session expired")
    # Nothing was stored for the refused turn.
    with user.api(server) as api:
        listed = api.get("/api/conversations").json()["items"]
    assert all("Are you still there?" not in (c.get("title") or "") for c in listed), listed
