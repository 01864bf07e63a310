"""Admin: users list, adding an OpenAI-compatible provider, its models in the picker."""

from __future__ import annotations

import pytest
from e2ehelpers import UPSTREAM_MODELS, Upstream, chat, content, open_admin, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_admin_adds_provider_and_its_models_appear(
    admin_page: Page, admin, upstream: Upstream, server: str
) -> None:
    page = admin_page
    page.goto("/")
    page.get_by_test_id("nav-admin").click()
    users = page.get_by_test_id("users-table")
    expect(users).to_contain_text(admin.account.email)
    expect(users).to_contain_text("admin")
    shot(page, "admin")

    open_admin(page, "providers")
    table = page.get_by_test_id("providers-table")
    expect(table.get_by_test_id("provider-row").filter(has_text="openai")).to_contain_text(
        "Environment"
    )
    name = "second-upstream"
    page.get_by_test_id("provider-name").fill(name)
    page.get_by_test_id("provider-url").fill(upstream.base_url)
    page.get_by_test_id("provider-key").fill("sk-second-dummy")
    page.get_by_test_id("provider-test").click()
    result = page.get_by_test_id("provider-test-result")
    expect(result).to_contain_text("Connected")
    for model in UPSTREAM_MODELS:
        expect(result.locator("code", has_text=model)).to_be_visible()
    assert any(r["path"] == "/v1/models" for r in upstream.requests())

    try:
        page.get_by_test_id("provider-save").click()
        row = table.get_by_test_id("provider-row").filter(has_text=name)
        expect(row).to_contain_text("Added here")
        expect(row).to_contain_text("Saved")  # key stored, never shown
        assert "sk-second-dummy" not in page.content()
        shot(page, "admin-providers")

        # The provider's models are offered in the chat's model picker.
        page.get_by_test_id("new-chat").click()
        picker = page.get_by_test_id("model-picker")
        for model in UPSTREAM_MODELS:
            expect(picker.locator(f"option[value='{name}/{model}']")).to_have_count(1)
        picker.select_option(f"{name}/scripted-mini")
        upstream.script({"text": "Answer from the second provider."})
        reply = chat(page, "Which provider answers?")
        expect(content(reply)).to_have_text("Answer from the second provider.")
        last = upstream.chat_requests()[-1]
        assert last["json"]["model"] == "scripted-mini", last["json"]
        assert last["headers"].get("authorization") == "Bearer sk-second-dummy"
        expect(page.get_by_test_id("model-picker")).to_have_value(f"{name}/scripted-mini")
    finally:
        r = page.request.delete(
            f"/api/admin/providers/{name}",
            headers={"X-CSRF-Token": _csrf(page)},
        )
        assert r.status in (204, 404), r.text()


def test_non_admin_cannot_open_admin(page: Page, user, server: str) -> None:
    page.goto("/")
    expect(page.get_by_test_id("composer")).to_be_visible()
    expect(page.get_by_test_id("nav-admin")).to_have_count(0)
    r = page.request.get("/api/admin/users")
    assert r.status == 403, r.status
    page.goto("/admin")
    expect(page.get_by_test_id("users-table")).to_have_count(0)


def _csrf(page: Page) -> str:
    for c in page.context.cookies():
        if c["name"] == "parley_csrf":
            return c["value"]
    raise AssertionError("no parley_csrf cookie")
