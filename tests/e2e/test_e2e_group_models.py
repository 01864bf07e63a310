"""Which models a group may pick, in the browser: the admin ticks one model for a
group in Admin → Groups; a member's model picker offers only that one (after a
reload too), a new chat answers with it, and an assistant shared with the group
still answers on its own model, which the member may not pick directly."""

from __future__ import annotations

import re

import pytest
from e2ehelpers import Upstream, api_signup, chat, new_context, shot, sign_in
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


def _picker_refs(page: Page) -> list[str]:
    expect(page.get_by_test_id("model-picker")).to_be_visible()
    values = page.locator("[data-testid=model-picker] option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    return [v for v in values if v and v != "auto"]  # Auto routes among these


def test_a_group_limited_to_one_model_still_chats_with_a_shared_assistant(
    browser: Browser, server: str, admin, upstream: Upstream
) -> None:
    member = api_signup(server, name="Intern")
    with admin.account.api(server) as api:
        refs = [m["ref"] for m in api.get("/api/models").json()["items"] if not m.get("auto")]
        mini = next(r for r in refs if r.endswith("/scripted-mini"))
        big = next(r for r in refs if r.endswith("/scripted-model"))
        assistant = api.post(
            "/api/assistants",
            json={"config": {"name": "Big thinker", "instructions": "Think big.", "model": big}},
        ).json()

    # the admin: a group with the member, limited to the mini model, in Admin -> Groups
    admin_ctx = new_context(browser, server)
    try:
        sign_in(admin_ctx, admin.account, server)
        apage = admin_ctx.new_page()
        apage.goto("/admin/groups")
        apage.get_by_test_id("group-name").fill("Interns")
        apage.get_by_test_id("group-create").click()
        group = apage.get_by_test_id("group").filter(has_text="Interns")
        expect(group.get_by_test_id("group-models-summary")).to_have_text("all models")
        group.get_by_role("button", name="Interns").click()
        group.get_by_test_id("group-pick-user").select_option(label=member.email)
        group.get_by_test_id("group-add-member").click()
        expect(group.get_by_test_id("group-member")).to_contain_text(member.email)
        group.get_by_test_id(f"group-model-{mini}").check()
        group.get_by_test_id("group-models-save").click()
        expect(group.get_by_test_id("group-models-summary")).not_to_have_text("all models")
        shot(apage, "admin-group-models")
        apage.reload()
        group = apage.get_by_test_id("group").filter(has_text="Interns")
        expect(group.get_by_test_id("group-models-summary")).not_to_have_text("all models")
        group_id = next(
            g["id"]
            for g in apage.request.get("/api/admin/groups").json()["items"]
            if g["name"] == "Interns"
        )
    finally:
        admin_ctx.close()
    with admin.account.api(server) as api:
        shared = api.post(
            f"/api/assistants/{assistant['id']}/shares",
            json={"kind": "group", "group_id": group_id, "role": "chat"},
        )
        assert shared.status_code == 201, shared.text

    ctx = new_context(browser, server)
    try:
        sign_in(ctx, member, server)
        page = ctx.new_page()
        page.goto("/")
        assert _picker_refs(page) == [mini]
        page.reload()
        assert _picker_refs(page) == [mini]  # the reload keeps it
        upstream.script({"text": "A small answer."})
        chat(page, "Hello there")
        assert upstream.chat_requests()[-1]["json"]["model"] == "scripted-mini"

        # the shared assistant answers on its own model
        page.goto("/assistants")
        card = page.get_by_test_id("gallery-card").filter(has_text="Big thinker")
        card.get_by_test_id("gallery-chat").click()
        expect(page).to_have_url(re.compile(r"/c/[0-9a-f]{32}$"))
        upstream.script({"text": "A big answer."})
        chat(page, "Think about it")
        request = upstream.chat_requests()[-1]["json"]
        assert request["model"] == "scripted-model"
        assert "Think big." in request["messages"][0]["content"]
        page.reload()
        assert _picker_refs(page) == [mini]  # still not a model to pick
        expect(page.get_by_test_id("model-picker")).to_contain_text("Assistant's")
    finally:
        ctx.close()
        with admin.account.api(server) as api:  # the shared server's other tests
            api.delete(f"/api/admin/groups/{group_id}")
