"""Settings items of issue 3 the other settings tests leave out: the system theme,
timezone, API key revoke and "last used", change password, export my data, delete my
account."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from e2ehelpers import PASSWORD, Account, Upstream, api_chat, chat
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def login_status(server: str, email: str, password: str) -> int:
    r = httpx.post(
        f"{server}/api/auth/login", json={"email": email, "password": password}, timeout=15
    )
    return r.status_code


def test_system_theme_follows_the_os(page: Page, user: Account) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto("/settings")
    page.get_by_test_id("theme-light").check()  # an explicit theme overrides the OS
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.get_by_test_id("theme-system").check()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.wait_for_function(
        "() => fetch('/api/auth/me').then(r => r.json())"
        ".then(d => d.user.preferences.theme === 'system')"
    )
    page.emulate_media(color_scheme="light")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.reload()
    expect(page.get_by_test_id("theme-system")).to_be_checked()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.request.get("/api/auth/me").json()["user"]["preferences"]["theme"] == "system"


def test_timezone_is_saved_and_used_for_the_models_clock(
    page: Page, user: Account, upstream: Upstream
) -> None:
    page.goto("/settings")
    tz = page.get_by_test_id("timezone")
    expect(tz).to_be_visible()
    tz.select_option("Asia/Tokyo")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
    assert page.request.get("/api/auth/me").json()["user"]["timezone"] == "Asia/Tokyo"
    page.reload()
    expect(page.get_by_test_id("timezone")).to_have_value("Asia/Tokyo")

    page.get_by_test_id("new-chat").click()
    chat(page, "What time is it?")
    sent = upstream.chat_requests()[-1]["json"]["messages"]
    system = " ".join(str(m.get("content")) for m in sent if m.get("role") == "system")
    assert "(Asia/Tokyo)" in system, system


def test_api_key_last_used_then_revoked(page: Page, user: Account, server: str) -> None:
    page.goto("/settings/keys")
    page.get_by_test_id("key-name").fill("audit script")
    page.get_by_test_id("create-key").click()
    expect(page.get_by_test_id("created-key")).to_be_visible()
    key = page.locator("#new-key").input_value()
    row = page.get_by_test_id("keys-table").locator("tr", has_text="audit script")
    expect(row).to_contain_text("Never")

    r = httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    page.reload()
    expect(row).to_be_visible()
    expect(row).not_to_contain_text("Never")
    expect(row.locator("td").nth(3)).to_contain_text(re.compile(r"\d"))  # a date

    row.get_by_role("button", name="Revoke key audit script").click()
    dialog = page.get_by_test_id("confirm-dialog").filter(visible=True)
    expect(dialog).to_contain_text("Revoke API key?")
    dialog.get_by_test_id("confirm-ok").click()
    expect(page.get_by_text("Key “audit script” revoked.")).to_be_visible()
    expect(row.get_by_role("button", name="Revoke key audit script")).to_have_count(0)
    r = httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 401, r.text


def test_change_password(page: Page, user: Account, server: str) -> None:
    new = "a brand new passphrase 42"
    page.goto("/settings/account")
    page.fill("#pw-current", PASSWORD)
    page.fill("#pw-new", new)
    page.fill("#pw-confirm", new + "typo")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("The new passwords do not match.")).to_be_visible()

    page.fill("#pw-confirm", new)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed.")).to_be_visible()
    expect(page.locator("#pw-current")).to_have_value("")
    assert login_status(server, user.email, new) == 200
    assert login_status(server, user.email, PASSWORD) == 401

    # A wrong current password is refused and says so.
    page.fill("#pw-current", "not my password")
    page.fill("#pw-new", "another passphrase 43")
    page.fill("#pw-confirm", "another passphrase 43")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("form", has_text="Change password").get_by_role("alert")).to_be_visible()
    assert login_status(server, user.email, new) == 200


def test_export_my_data(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        conv = api_chat(api, "Please remember the word periwinkle")
    page.goto("/settings/account")
    with page.expect_download() as info:
        page.get_by_test_id("export-data").click()
    download = info.value
    assert download.suggested_filename.startswith("parley-export-")
    assert download.suggested_filename.endswith(".json")
    path = download.path()
    data = json.loads(path.read_text())
    assert data["format"] == "parley-export-2"
    assert data["user"]["email"] == user.email
    assert "password_hash" not in json.dumps(data)
    convs = {c["id"]: c for c in data["conversations"]}
    assert conv in convs, list(convs)
    texts = [m["content"] for m in convs[conv]["messages"]]
    assert "Please remember the word periwinkle" in texts, texts


def test_delete_my_account(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        api_chat(api, "Something to be deleted")
    page.goto("/settings/account")
    button = page.get_by_test_id("delete-account")
    page.get_by_test_id("delete-password").fill(PASSWORD)
    expect(button).to_be_disabled()  # not before typing DELETE
    page.fill("#del-confirm", "DELETE")
    expect(button).to_be_enabled()
    button.click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_test_id("auth-flash")).to_contain_text("deleted")
    assert login_status(server, user.email, PASSWORD) == 401
    assert page.request.get("/api/auth/me").status == 401
