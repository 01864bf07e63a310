"""Sign-up (the first account is the admin), sign out and sign in again."""

from __future__ import annotations

import pytest
from e2ehelpers import PASSWORD, ui_signup, unique_email
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_first_signup_is_admin_then_sign_out_and_in(admin, page: Page, server: str) -> None:
    # What the sign-up page showed the very first account (the session's admin fixture).
    assert admin.first_admin_notice, "the first sign-up did not explain it becomes the admin"
    assert admin.admin_nav_after_signup, "the admin nav did not appear after the first sign-up"
    assert admin.role == "admin"

    # Sign in again through the form: the admin nav is there.
    page.goto("/login")
    page.get_by_test_id("auth-email").fill(admin.account.email)
    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("composer")).to_be_visible()
    expect(page.get_by_test_id("nav-admin")).to_be_visible()

    # Sign out: back to the sign-in page; the app is no longer reachable.
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(f"{server}/login", timeout=10_000)
    expect(page.get_by_test_id("auth-submit")).to_be_visible()
    page.goto("/")
    expect(page.get_by_test_id("auth-email")).to_be_visible()
    assert page.request.get("/api/auth/me").status == 401


def test_second_account_is_not_admin_and_bad_password_is_refused(
    admin, page: Page, server: str
) -> None:
    email = unique_email("second")
    page.goto("/signup")
    expect(page.get_by_test_id("first-admin-notice")).to_have_count(0)
    ui_signup(page, "Bea User", email)
    expect(page.get_by_test_id("nav-settings")).to_be_visible()
    expect(page.get_by_test_id("nav-admin")).to_have_count(0)
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("auth-submit")).to_be_visible()

    page.goto("/login")
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill("not the password")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-error")).to_contain_text("Wrong email or password")

    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("composer")).to_be_visible()
    expect(page.get_by_test_id("nav-admin")).to_have_count(0)
