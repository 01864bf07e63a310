"""Settings: theme persistence, custom instructions reaching the model, API keys."""

from __future__ import annotations

import httpx
import pytest
from e2ehelpers import Account, Upstream, api_chat, chat, content, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_dark_theme_persists_across_reload(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        conv = api_chat(api, "A conversation to look at in the dark")
    page.goto("/settings")
    expect(page.get_by_test_id("theme-light")).to_be_visible()
    page.get_by_test_id("theme-dark").check()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shot(page, "settings")
    # Saved on the account (not only in this browser).
    with user.api(server) as api:
        prefs = api.get("/api/auth/me").json()["user"]["preferences"]
    assert prefs.get("theme") == "dark", prefs

    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_test_id("theme-dark")).to_be_checked()

    page.goto(f"/c/{conv}")
    expect(content(page.locator("[data-testid=message][data-role=assistant]"))).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shot(page, "chat-dark")

    # A brand-new browser (no localStorage) gets the theme from the account.
    fresh = page.context.browser.new_context(base_url=server)  # type: ignore[union-attr]
    try:
        fresh.add_cookies(page.context.cookies())  # type: ignore[arg-type]
        other = fresh.new_page()
        other.goto("/")
        expect(other.get_by_test_id("composer")).to_be_visible()
        expect(other.locator("html")).to_have_attribute("data-theme", "dark")
    finally:
        fresh.close()

    page.goto("/settings")
    page.get_by_test_id("theme-light").check()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")


def test_custom_instructions_are_sent_to_the_model(
    page: Page, user: Account, upstream: Upstream
) -> None:
    about = "I am a marine biologist who studies octopuses."
    style = "Answer in exactly three bullet points."
    page.goto("/settings/personalization")
    page.get_by_test_id("about-me").fill(about)
    page.get_by_test_id("response-style").fill(style)
    page.get_by_test_id("save-instructions").click()
    expect(page.get_by_text("Custom instructions saved.")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("about-me")).to_have_value(about)
    expect(page.get_by_test_id("response-style")).to_have_value(style)

    page.get_by_test_id("new-chat").click()
    chat(page, "What do I study?")
    sent = upstream.chat_requests()[-1]["json"]["messages"]
    system = [m for m in sent if m.get("role") == "system"]
    assert system, f"no system message sent: {sent}"
    text = " ".join(str(m.get("content")) for m in system)
    assert about in text, text
    assert style in text, text


def test_api_key_shown_once_then_usable(page: Page, user: Account, server: str) -> None:
    page.goto("/settings/keys")
    page.get_by_test_id("key-name").fill("e2e laptop")
    page.get_by_test_id("create-key").click()
    created = page.get_by_test_id("created-key")
    expect(created).to_be_visible()
    expect(created).to_contain_text("will not be shown again")
    key = page.locator("#new-key").input_value()
    assert key.startswith("pk-") and len(key) > 20, key
    table = page.get_by_test_id("keys-table")
    expect(table).to_contain_text("e2e laptop")

    # Shown once: after a reload only the name and prefix are listed.
    page.reload()
    expect(page.get_by_test_id("keys-table")).to_contain_text("e2e laptop")
    expect(page.get_by_test_id("created-key")).to_have_count(0)
    assert key not in page.content()
    listed = page.request.get("/api/keys").json()["items"]
    assert all("key" not in item for item in listed), listed

    r = httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    ids = [m["id"] for m in r.json()["data"]]
    assert "openai/scripted-model" in ids, ids
    r = httpx.get(f"{server}/v1/models", headers={"Authorization": "Bearer pk-wrong"}, timeout=10)
    assert r.status_code == 401
    r = httpx.get(f"{server}/v1/models", timeout=10)
    assert r.status_code == 401
    r = httpx.post(
        f"{server}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "openai/scripted-model", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


def test_api_key_with_expiry_and_scopes(page: Page, user: Account, server: str) -> None:
    page.goto("/settings/keys")
    page.get_by_test_id("key-name").fill("embeddings robot")
    page.get_by_test_id("key-expiry").select_option("30")
    page.get_by_text("Limit what this key can do").click()
    page.get_by_test_id("key-scope-embeddings").check()
    page.get_by_test_id("create-key").click()
    expect(page.get_by_test_id("created-key")).to_be_visible()
    key = page.locator("#new-key").input_value()
    row = page.get_by_test_id("keys-table").locator("tr", has_text="embeddings robot")
    expect(row.get_by_test_id("key-scopes")).to_have_text("Embeddings")
    expect(row).not_to_contain_text("No expiry")
    listed = {k["name"]: k for k in page.request.get("/api/keys").json()["items"]}
    assert listed["embeddings robot"]["scopes"]["endpoints"] == ["embeddings"]
    assert listed["embeddings robot"]["expires_at"] is not None

    auth = {"Authorization": f"Bearer {key}"}
    refused = httpx.post(
        f"{server}/v1/chat/completions",
        headers=auth,
        json={"model": "parley", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["type"] == "permission_error"
    native = httpx.get(f"{server}/api/conversations", headers=auth, timeout=10)
    assert native.status_code == 403, native.text
