"""Budgets in the browser: an admin sets a user's daily budget with a cheaper model
to answer once it is spent (Admin → Budgets, finding the user by name), the user
chats, sees the 80% warning above the composer, then the next answer comes from the
cheaper model with the notice under it; the user's Settings → Usage lists the
budget; the admin picks a group and an API key by name for two more limits, listed
by name; and the admin's table shows the use."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from e2ehelpers import (
    PageLog,
    Upstream,
    api_signup,
    chat,
    content,
    csrf,
    new_context,
    shot,
    sign_in,
    watch,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

MODEL = "openai/scripted-model"  # priced here: output 1000 per million tokens
CHEAP = "openai/scripted-mini"  # free


def test_admin_sets_a_daily_budget_and_the_user_sees_the_warning_then_the_downgrade(
    admin_page: Page, admin: Any, browser: Browser, server: str, upstream: Upstream
) -> None:
    page = admin_page
    headers = {"X-CSRF-Token": csrf(page)}
    providers = page.request.get("/api/admin/providers").json()["items"]
    settings = next(
        m for p in providers for m in p["model_settings"] if f"{p['name']}/{m['name']}" == MODEL
    )
    most = settings["max_output_tokens"]  # a chat call's worst case: this many output tokens
    estimate = most * 1000 / 1_000_000
    budget = round(estimate * 1.1, 6)  # one answer's worst case fits, a second does not
    priced = page.request.put(
        "/api/admin/prices",
        data={"model": MODEL, "input_price": 0, "cached_input_price": 0, "output_price": 1000},
        headers=headers,
    )
    assert priced.ok, priced.text()
    person = api_signup(server, name="Budget User")
    context = new_context(browser, server)
    log = PageLog()
    try:
        # --- the admin sets the user's daily budget and the cheaper model
        page.goto("/admin/budgets")
        expect(page.get_by_test_id("budget-form")).to_be_visible()
        page.get_by_test_id("budget-scope").select_option("user")
        page.get_by_test_id("budget-search").fill(person.email.split("@")[0])  # found by name
        target = page.get_by_test_id("budget-target")
        expect(target.locator("option", has_text=person.email)).to_have_count(1)
        target.select_option(label=person.email)
        page.get_by_test_id("budget-kind").select_option("cost")
        page.get_by_test_id("budget-period").select_option("day")
        page.get_by_test_id("budget-amount").fill(str(budget))
        page.get_by_test_id("budget-downgrade").select_option(CHEAP)
        page.get_by_test_id("budget-save").click()
        row = page.get_by_test_id("budget-row").filter(has_text=person.email)
        expect(row).to_contain_text("Daily budget")
        expect(row).to_contain_text(f"Answer with {CHEAP}")
        expect(row.get_by_test_id("budget-use")).to_contain_text("(0%)")
        shot(page, "budgets-admin")

        # --- the user's first answer uses 90% of a worst case: over 80% of the budget
        sign_in(context, person, server)
        mine = context.new_page()
        watch(mine, log)
        mine.goto("/")
        mine.get_by_test_id("model-picker").select_option(MODEL)
        upstream.script({"tokens": round(most * 0.9)}, {"text": "A cheaper answer."})
        first = chat(mine, "A long answer, please")
        expect(first.get_by_test_id("budget-notice")).to_have_count(0)
        warning = mine.get_by_test_id("budget-warning")
        expect(warning).to_contain_text("You have used 8")
        expect(warning).to_contain_text("of your daily budget")
        shot(mine, "budgets-warning")

        # --- the next answer does not fit: the cheaper model answers, and says so
        second = chat(mine, "And another one")
        expect(content(second)).to_have_text("A cheaper answer.")
        notice = second.get_by_test_id("budget-notice")
        expect(notice).to_contain_text(
            f"The daily budget of your account is spent; answered by {CHEAP} instead."
        )
        shot(mine, "budgets-downgrade")
        mine.reload()  # stored on the message
        expect(mine.get_by_test_id("budget-notice").last).to_contain_text(CHEAP)

        # --- Settings → Usage lists the budget with its use
        mine.goto("/settings/usage")
        expect(mine.get_by_test_id("my-budget")).to_contain_text("Daily budget")
        expect(mine.get_by_test_id("my-budget")).to_contain_text("over 80%")
        assert not log.problems(), log.problems()

        # --- a group's and an API key's limits are picked by name, and listed by name
        team = f"Research {uuid.uuid4().hex[:6]}"
        group = page.request.post("/api/admin/groups", data={"name": team}, headers=headers)
        assert group.ok, group.text()
        key_name = f"nightly-{uuid.uuid4().hex[:6]}"
        key = page.request.post("/api/keys", data={"name": key_name}, headers=headers)
        assert key.ok, key.text()
        page.reload()
        page.get_by_test_id("budget-scope").select_option("group")
        page.get_by_test_id("budget-search").fill(team.lower())
        page.get_by_test_id("budget-target").select_option(label=team)
        page.get_by_test_id("budget-kind").select_option("cost")
        page.get_by_test_id("budget-period").select_option("month")
        page.get_by_test_id("budget-amount").fill("50")
        page.get_by_test_id("budget-save").click()
        expect(page.get_by_test_id("budget-row").filter(has_text=f"group {team}")).to_be_visible()
        page.get_by_test_id("budget-scope").select_option("key")
        page.get_by_test_id("budget-search").fill(key_name)
        page.get_by_test_id("budget-target").select_option(
            label=f"{key_name} ({admin.account.email})"
        )
        page.get_by_test_id("budget-kind").select_option("requests")
        page.get_by_test_id("budget-amount").fill("60")
        page.get_by_test_id("budget-save").click()
        keyed = page.get_by_test_id("budget-row").filter(has_text=f"API key {key_name}")
        expect(keyed).to_contain_text("Requests per minute")
        page.get_by_test_id("budget-search").fill("no such thing")
        expect(page.get_by_test_id("budget-target")).to_contain_text("Nothing matches")

        # --- the admin's table shows the use
        page.reload()
        expect(row.get_by_test_id("budget-use")).to_contain_text("(8")
        row.get_by_test_id("budget-delete").click()
        expect(page.get_by_test_id("budget-row").filter(has_text=person.email)).to_have_count(0)
    finally:
        context.close()
        page.request.post("/api/admin/prices/reset", data={"model": MODEL}, headers=headers)
        for made in page.request.get("/api/admin/budgets").json()["items"]:
            if made["scope"] in ("group", "key"):
                page.request.delete(f"/api/admin/budgets/{made['id']}", headers=headers)
