"""Groups, sharing and projects in the browser.

- An owner shares an assistant (with a file and two starters) with a group the admin
  made in Admin → Groups; a second user in that group finds it under *Shared with
  you*, starts a chat from a starter and gets a cited answer, but cannot download the
  file or open the settings; removing them from the group ends access at once.
- A project with a file and instructions: a project-only memory is used inside it and
  absent from a normal chat; a chat moved out of the project loses its context.
"""

from __future__ import annotations

import re
import time

import pytest
from e2ehelpers import Account, Upstream, api_signup, chat, content, new_context, shot, sign_in
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

INGEST_TIMEOUT_S = 120
FACT = "The spare lantern key of the Harbor Lighthouse hangs on hook number seven."
STARTERS = ["Where is the spare key?", "Who keeps the lantern?"]


def _prompt(upstream: Upstream) -> str:
    return str(upstream.chat_requests()[-1]["json"]["messages"][0]["content"])


def _ready(api, file_id: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.get(f"/api/files/{file_id}").json()["status"] == "ready":
            return
        time.sleep(0.3)
    raise AssertionError("the file was not indexed")


def test_a_group_share_gives_a_cited_chat_but_not_the_file_and_ends_on_removal(
    browser: Browser, page: Page, server: str, admin, user: Account, upstream: Upstream
) -> None:
    # the owner (this page's user): an assistant with a file and two starters
    with user.api(server) as api:
        made = api.post(
            "/api/files", files={"file": ("keys.txt", FACT.encode(), "text/plain")}
        ).json()
        _ready(api, made["id"])
        assistant = api.post(
            "/api/assistants",
            json={
                "config": {
                    "name": "Keeper",
                    "instructions": "Answer as the lighthouse keeper.",
                    "starters": STARTERS,
                    "file_ids": [made["id"]],
                }
            },
        ).json()
    second = api_signup(server, name="Second User")

    # the admin: a group with the second user, in Admin -> Groups
    admin_ctx = new_context(browser, server)
    try:
        sign_in(admin_ctx, admin.account, server)
        apage = admin_ctx.new_page()
        apage.goto("/admin/groups")
        apage.get_by_test_id("group-name").fill("Lighthouse crew")
        apage.get_by_test_id("group-create").click()
        group = apage.get_by_test_id("group").filter(has_text="Lighthouse crew")
        group.get_by_role("button", name="Lighthouse crew").click()
        group.get_by_test_id("group-pick-user").select_option(label=second.email)
        group.get_by_test_id("group-add-member").click()
        expect(group.get_by_test_id("group-member")).to_contain_text(second.email)
        shot(apage, "admin-groups")
    finally:
        admin_ctx.close()

    # the owner shares it with the group, as "can chat"
    page.goto(f"/assistants/{assistant['id']}")
    panel = page.get_by_test_id("share-panel")
    panel.get_by_test_id("share-kind").select_option("group")
    panel.get_by_test_id("share-group").select_option(label="Lighthouse crew")
    panel.get_by_test_id("share-role").select_option("chat")
    panel.get_by_test_id("share-add").click()
    expect(panel.get_by_test_id("share")).to_contain_text("Lighthouse crew")
    expect(panel.get_by_test_id("share")).to_contain_text("Can chat")
    shot(page, "assistant-sharing")

    # the second user: the gallery, a starter, a cited answer
    ctx = new_context(browser, server)
    try:
        sign_in(ctx, second, server)
        p2 = ctx.new_page()
        p2.goto("/assistants")
        card = p2.get_by_test_id("gallery-card").filter(has_text="Keeper")
        expect(card).to_be_visible()
        shot(p2, "assistant-gallery")
        card.get_by_test_id("gallery-chat").click()
        expect(p2).to_have_url(re.compile(r"/c/[0-9a-f]{32}$"))
        upstream.script({"text": "On hook number seven [1]."})
        p2.get_by_test_id("chat-starter").filter(has_text=STARTERS[0]).click()
        reply = p2.locator("[data-testid=message][data-role=assistant]").last
        expect(reply).to_have_attribute("data-status", "complete")
        expect(content(reply)).to_contain_text("hook number seven")
        expect(reply.get_by_test_id("file-source").filter(has_text="[1]")).to_contain_text(
            "keys.txt"
        )
        prompt = _prompt(upstream)
        assert "lighthouse keeper" in prompt and "hook number seven" in prompt
        # ...but not the file, nor the settings
        assert p2.request.get(f"/api/files/{made['id']}/content").status == 404
        assert p2.request.get(f"/api/assistants/{assistant['id']}").status == 403
        p2.goto(f"/assistants/{assistant['id']}")
        expect(p2.get_by_role("alert")).to_contain_text("settings")

        # removed from the group: access ends at once
        with admin.account.api(server) as api:
            gid = next(g["id"] for g in api.get("/api/admin/groups").json()["items"])
            second_id = next(
                u["id"]
                for u in api.get("/api/admin/users").json()["items"]
                if u["email"] == second.email
            )
            assert api.delete(f"/api/admin/groups/{gid}/members/{second_id}").status_code == 204
        chat_id = p2.request.get("/api/conversations").json()["items"][0]["id"]
        refused = p2.request.post(
            f"/api/conversations/{chat_id}/messages",
            data={"content": "And the lantern?"},
            headers={
                "X-CSRF-Token": next(
                    c["value"] for c in ctx.cookies() if c["name"] == "parley_csrf"
                )
            },
        )
        assert refused.status == 404
        p2.goto("/assistants")
        expect(p2.get_by_test_id("gallery-card")).to_have_count(0)
    finally:
        ctx.close()


def test_a_project_keeps_its_file_instructions_and_memory_inside(
    page: Page, user: Account, upstream: Upstream
) -> None:
    page.goto("/")
    page.get_by_test_id("nav-projects").click()
    page.get_by_test_id("project-name").fill("Garden")
    page.get_by_test_id("project-create").click()
    expect(page).to_have_url(re.compile(r"/projects/[0-9a-f]{32}$"))
    page.get_by_test_id("project-instructions").fill("Answer as a master gardener.")
    page.get_by_test_id("project-memory-project").check()
    page.get_by_test_id("project-save").click()
    page.get_by_test_id("project-upload").set_input_files(
        [
            {
                "name": "seeds.txt",
                "mimeType": "text/plain",
                "buffer": b"The tomato seeds are in the blue shed.",
            }
        ]
    )
    expect(page.get_by_test_id("project-files")).to_contain_text("seeds.txt")
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    while "ready" not in (page.get_by_test_id("project-files").inner_text() or ""):
        assert time.monotonic() < deadline, "seeds.txt was not indexed"
        time.sleep(0.5)
        page.reload()
    shot(page, "project-page")

    # inside: the file, the instructions, and a project-only memory
    page.get_by_test_id("project-new-chat").click()
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f]{32}$"))
    project_chat = page.url
    upstream.script({"text": "In the blue shed [1]."})
    reply = chat(page, "Where are the tomato seeds?")
    expect(content(reply)).to_contain_text("blue shed")
    prompt = _prompt(upstream)
    assert "master gardener" in prompt and "blue shed" in prompt
    upstream.script({"text": "Noted."})
    chat(page, "Remember that my locker code is 3141")
    upstream.script({"text": "It is 3141."})
    chat(page, "What is my locker code?")
    assert "3141" in _prompt(upstream)
    expect(page.get_by_test_id("sidebar-projects")).to_contain_text("Garden")

    # a normal chat: no project memory, no instructions, no file
    page.get_by_test_id("new-chat").click()
    upstream.script({"text": "I do not know."})
    chat(page, "What is my locker code? Where are the tomato seeds?")
    prompt = _prompt(upstream)
    assert "3141" not in prompt and "master gardener" not in prompt and "blue shed" not in prompt

    # the project chat moved out loses the project's context
    page.get_by_test_id("nav-projects").click()
    page.get_by_test_id("project-card").filter(has_text="Garden").get_by_role("link").click()
    page.get_by_test_id("project-chat").first.get_by_test_id("project-move-out").click()
    expect(page.get_by_test_id("project-chat")).to_have_count(0)
    page.goto(project_chat)
    expect(page.locator("[data-testid=message][data-role=assistant]")).to_have_count(3)
    upstream.script({"text": "No idea."})
    chat(page, "Where are the tomato seeds, and my locker code?")
    prompt = _prompt(upstream)
    assert "master gardener" not in prompt and "blue shed" not in prompt and "3141" not in prompt
