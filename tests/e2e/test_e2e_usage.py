"""Usage and prices in the browser: an admin prices the model in Admin → Prices, the
admin and a user chat a little, the user sees their rows in Settings → Usage (and a
message's cost on hover), the admin sees both users in Admin → Usage and downloads
the CSV."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from e2ehelpers import PageLog, Upstream, api_signup, chat, new_context, shot, sign_in, watch
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

MODELS = ["openai/scripted-mini", "openai/scripted-model"]  # the chat's model is one of them


def test_prices_usage_views_and_csv(
    admin_page: Page,
    admin: Any,  # conftest.AdminSignup
    browser: Browser,
    server: str,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    page = admin_page
    # The admin prices the model, in place.
    page.goto("/admin/prices")
    for model in MODELS:
        row = page.get_by_test_id("price-row").filter(has_text=model)
        expect(row).to_be_visible()
        row.get_by_test_id("price-input").fill("4")
        row.get_by_test_id("price-output").fill("12")
        row.get_by_test_id("price-save").click()
        expect(row).to_contain_text("Set here")
    expect(page.get_by_text("it applies from now on").first).to_be_visible()
    shot(page, "admin-prices")

    # The admin chats a little.
    upstream.script({"text": "An answer for the admin."})
    page.goto("/")
    chat(page, "Hello from the admin")

    # A user chats a little, and sees the cost of an answer on hover.
    user = api_signup(server, name="Usage User")
    context = new_context(browser, server)
    log = PageLog()
    try:
        sign_in(context, user, server)
        mine = context.new_page()
        watch(mine, log)
        mine.goto("/settings/usage")  # a newcomer's page: a next step, not an error
        expect(mine.get_by_test_id("usage-empty")).to_contain_text("No model calls")
        shot(mine, "usage-empty")
        upstream.script({"text": "A first answer."}, {"text": "A second, longer answer."})
        mine.goto("/")
        chat(mine, "First question")
        reply = chat(mine, "Second question")
        reply.get_by_role("button", name="Response details").hover()
        meta = reply.get_by_test_id("message-meta")
        expect(meta).to_contain_text(re.compile(r"\$0\.\d+"))  # priced: not $0

        mine.goto("/settings/usage")
        expect(mine.get_by_test_id("usage-totals")).to_contain_text("2")  # two calls
        expect(mine.get_by_test_id("usage-by-model")).to_contain_text("openai/scripted-")
        expect(mine.get_by_test_id("usage-by-key")).to_contain_text("Web app (no key)")
        expect(mine.get_by_test_id("usage-bar").first).to_be_attached()
        mine.get_by_test_id("usage-period").select_option("7")
        expect(mine.get_by_test_id("usage-bar")).to_have_count(7)
        shot(mine, "usage-settings")
        assert not log.problems(), log.problems()
    finally:
        context.close()

    # The admin sees both users, and downloads everything as CSV.
    page.goto("/admin/usage")
    by_user = page.get_by_test_id("usage-by-user")
    expect(by_user).to_contain_text(admin.account.email)
    expect(by_user).to_contain_text(user.email)
    expect(page.get_by_test_id("usage-by-endpoint")).to_contain_text("Chats")
    shot(page, "usage-admin")
    with page.expect_download() as download:
        page.get_by_test_id("usage-csv").click()
    saved = tmp_path / "usage.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    users = {r["user"] for r in rows}
    assert {admin.account.email, user.email} <= users, users
    theirs = [r for r in rows if r["user"] == user.email]
    assert len(theirs) == 2 and all(float(r["cost"]) > 0 for r in theirs), theirs
    assert all(r["model"] in MODELS and r["endpoint"] == "chat" for r in theirs)

    # Back to the default price (other tests share this server).
    page.goto("/admin/prices")
    for model in MODELS:
        row = page.get_by_test_id("price-row").filter(has_text=model)
        row.get_by_test_id("price-reset").click()
        expect(row).to_contain_text("Default")
