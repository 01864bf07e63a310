"""Admin items of issue 3 the other admin test leaves out: create a user, change a role,
disable and enable, sign-up open/closed/approval, the default model, the embedded
model's status, config/environment providers read-only with their source, and a
provider's key never reaching the browser."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from e2ehelpers import (
    PASSWORD,
    Upstream,
    chat,
    csrf,
    new_context,
    ui_signup,
    unique_email,
)
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.e2e


def login(server: str, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{server}/api/auth/login", json={"email": email, "password": password}, timeout=15
    )


def user_row(page: Page, email: str) -> Locator:
    return page.get_by_test_id("user-row").filter(has_text=email)


@pytest.fixture
def restore_settings(admin_page: Page) -> Iterator[None]:
    """Put sign-up back to open and the default model back to automatic."""
    yield
    r = admin_page.request.patch(
        "/api/admin/settings",
        data={"signup": "open", "default_model": None},
        headers={"X-CSRF-Token": csrf(admin_page)},
    )
    assert r.ok, r.text()


def test_admin_creates_a_user_changes_role_disables_and_enables(
    admin_page: Page, server: str
) -> None:
    page = admin_page
    email = unique_email("made-by-admin")
    page.goto("/admin/users")
    expect(page.get_by_test_id("users-table")).to_be_visible()
    page.fill("#nu-name", "Carl Created")
    page.fill("#nu-email", email)
    page.fill("#nu-pw", PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_text("User created.")).to_be_visible()
    row = user_row(page, email)
    expect(row).to_contain_text("Carl Created")
    expect(row).to_contain_text("active")
    assert login(server, email).status_code == 200

    # Change the role: stored, and the user is an admin now.
    row.get_by_label(f"Role of {email}").select_option("admin")
    expect(page.get_by_text("Role changed.")).to_be_visible()
    r = login(server, email)
    assert r.json()["user"]["role"] == "admin", r.text
    page.reload()
    expect(user_row(page, email).get_by_label(f"Role of {email}")).to_have_value("admin")
    user_row(page, email).get_by_label(f"Role of {email}").select_option("user")
    expect(page.get_by_text("Role changed.").first).to_be_visible()
    page.wait_for_function(
        "e => fetch('/api/admin/users').then(r => r.json())"
        ".then(d => d.items.find(u => u.email === e).role === 'user')",
        arg=email,
    )

    # Disable: signing in is refused with a reason; Enable restores it.
    row = user_row(page, email)
    row.get_by_role("button", name=f"Disable {email}").click()
    expect(row).to_contain_text("disabled")
    r = login(server, email)
    assert r.status_code == 403 and "disabled" in r.text, r.text
    other = page.context.browser.new_context(base_url=server)  # type: ignore[union-attr]
    try:
        p2 = other.new_page()
        p2.goto("/login")
        p2.get_by_test_id("auth-email").fill(email)
        p2.get_by_test_id("auth-password").fill(PASSWORD)
        p2.get_by_test_id("auth-submit").click()
        expect(p2.get_by_test_id("auth-error")).to_contain_text("disabled")
    finally:
        other.close()
    row.get_by_role("button", name=f"Enable {email}").click()
    expect(row).to_contain_text("active")
    assert login(server, email).status_code == 200
    # The admin cannot disable or demote themself from the table.
    me = page.request.get("/api/auth/me").json()["user"]["email"]
    expect(user_row(page, me).get_by_label(f"Role of {me}")).to_be_disabled()
    expect(user_row(page, me).get_by_role("button", name=f"Disable {me}")).to_be_disabled()


def test_signup_modes_closed_and_approval(
    admin_page: Page, browser: Browser, server: str, restore_settings: None
) -> None:
    page = admin_page
    page.goto("/admin/users")
    mode = page.get_by_test_id("signup-mode")
    expect(mode).to_have_value("open")

    mode.select_option("closed")
    expect(page.get_by_text("Sign-up mode saved.")).to_be_visible()
    assert httpx.get(f"{server}/api/auth/config", timeout=10).json()["signup"] == "closed"
    visitor = new_context(browser, server)
    try:
        v = visitor.new_page()
        v.goto("/signup")
        expect(v.get_by_text("Sign-up is closed on this server.")).to_be_visible()
        expect(v.locator("#auth-name")).to_have_count(0)
        v.goto("/login")
        expect(v.get_by_test_id("auth-submit")).to_be_visible()
        expect(v.get_by_test_id("to-signup")).to_have_count(0)
        r = httpx.post(
            f"{server}/api/auth/signup",
            json={"email": unique_email("closed"), "password": PASSWORD, "name": "No"},
            timeout=15,
        )
        assert r.status_code == 403, r.text

        page.reload()
        expect(mode).to_have_value("closed")
        mode.select_option("approval")
        expect(page.get_by_text("Sign-up mode saved.").first).to_be_visible()
        email = unique_email("waiting")
        v.goto("/signup")
        expect(v.get_by_text("need an administrator's approval")).to_be_visible()
        v.fill("#auth-name", "Wendy Waiting")
        v.get_by_test_id("auth-email").fill(email)
        v.get_by_test_id("auth-password").fill(PASSWORD)
        v.get_by_test_id("auth-submit").click()
        expect(v.get_by_text("waiting for an administrator to approve it")).to_be_visible()
        expect(v.get_by_test_id("composer")).to_have_count(0)
        assert login(server, email).status_code == 403

        page.reload()
        row = user_row(page, email)
        expect(row).to_contain_text("pending")
        row.get_by_role("button", name=f"Approve {email}").click()
        expect(row).to_contain_text("active")
        assert login(server, email).status_code == 200
    finally:
        visitor.close()

    mode.select_option("open")
    expect(page.get_by_text("Sign-up mode saved.").first).to_be_visible()
    ctx = new_context(browser, server)
    try:
        ui_signup(ctx.new_page(), "Otto Open", unique_email("open-again"))
    finally:
        ctx.close()


def test_default_model_embedded_status_and_provider_sources(
    admin_page: Page, server: str, upstream: Upstream, restore_settings: None
) -> None:
    page = admin_page
    api_urls: set[str] = set()
    page.on(
        "response",
        lambda r: api_urls.add(r.url) if "/api/" in r.url and r.request.method == "GET" else None,
    )
    page.goto("/admin/providers")
    # The environment's provider: read-only, its source shown, no delete, key hidden.
    env_row = page.get_by_test_id("provider-row").filter(has_text="openai")
    expect(env_row).to_contain_text("Environment")
    expect(env_row).to_contain_text("read-only")
    expect(env_row).to_contain_text("Saved")
    expect(env_row.get_by_role("button", name="Delete provider openai")).to_have_count(0)
    r = page.request.delete("/api/admin/providers/openai", headers={"X-CSRF-Token": csrf(page)})
    assert r.status >= 400, "an environment provider was deleted through the API"
    # The embedded model's status (off on this server).
    expect(page.get_by_test_id("local-model-status")).to_contain_text("turned off")

    # Test a saved provider's connection from its row.
    env_row.get_by_role("button", name="Test connection to openai").click()
    expect(env_row).to_contain_text("OK: 2 models")

    # Pick the default model: new conversations use it.
    default = page.get_by_test_id("default-model")
    expect(default).to_have_value("openai/scripted-mini")
    default.select_option("openai/scripted-model")
    expect(page.get_by_text("Default model saved.")).to_be_visible()
    assert page.request.get("/api/models").json()["default"] == "openai/scripted-model"
    page.reload()
    expect(page.get_by_test_id("default-model")).to_have_value("openai/scripted-model")
    page.get_by_test_id("new-chat").click()
    picker = page.get_by_test_id("model-picker")
    expect(picker).to_have_value("")
    expect(picker.locator("option[value='']")).to_contain_text("scripted-model")
    upstream.script({"text": "From the new default."})
    chat(page, "Who answers by default now?")
    assert upstream.chat_requests()[-1]["json"]["model"] == "scripted-model"
    # "Automatic" forgets the choice: the first model is the default again.
    page.goto("/admin/providers")
    page.get_by_test_id("default-model").select_option("")
    expect(page.get_by_text("Default model saved.")).to_be_visible()
    assert page.request.get("/api/models").json()["default"] == "openai/scripted-mini"
    assert page.request.get("/api/admin/settings").json()["default_model"] is None
    page.reload()
    expect(page.get_by_test_id("default-model")).to_have_value("openai/scripted-mini")

    # Keys never reach the browser: not in the page, not in any API answer it read.
    secret = "sk-e2e-dummy"  # the environment provider's key (conftest)
    page.goto("/admin/providers")
    expect(page.get_by_test_id("providers-table")).to_be_visible()
    page.goto("/admin/users")
    expect(page.get_by_test_id("users-table")).to_be_visible()
    assert secret not in page.content()
    assert any(u.endswith("/api/admin/providers") for u in api_urls), api_urls
    for url in sorted(api_urls):
        body = page.request.get(url).text()
        assert secret not in body, f"{url} returned the provider key"
