"""The first hour's papercuts, as one journey on a fresh server (issue 12, item 10).

An admin starts a new server (it says where to go and that the first account becomes
the administrator), signs up, is offered starter suggestions, sends one and sees the
chat named by the model (the answer is not held up for it). Toasts appear at the top,
clear of the composer. The admin resets a user's password (shown once; the user signs
in with it) and deletes another user after typing their email. A user whose model
cannot be reached is told what to do, without the server's internals; the admin sees
the detail. At 375 px nothing overflows on chat, admin and settings pages and the
title stays readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2ehelpers import (
    DESKTOP,
    MOBILE,
    PASSWORD,
    Account,
    Proc,
    Upstream,
    api_signup,
    csrf,
    free_port,
    last_assistant,
    new_context,
    send,
    shot,
    sign_in,
    ui_signup,
    unique_email,
    wait_done,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

INTERNAL = re.compile(r"https?://|127\.0\.0\.1|api_key|base_url|_KEY\b", re.I)


@pytest.fixture(scope="module")
def fresh(upstream: Upstream, e2e_tmp: Path) -> Iterator[tuple[str, Proc]]:
    """A server of its own (nobody signed up yet) with model-made titles on."""
    from e2ehelpers import PARLEY, base_env

    port = free_port()
    env = base_env()
    env.update(
        {
            "PARLEY_DATA_DIR": str(e2e_tmp / "papercuts-data"),
            "PARLEY_LOG_LEVEL": "warning",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "sk-e2e-dummy",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
            "PARLEY_MEMORY_AUTO": "false",
        }
    )
    args = [str(PARLEY), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = Proc("papercuts", args, env, e2e_tmp / "papercuts.log")
    base = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(f"{base}/api/health", timeout=60)
        yield base, proc
    finally:
        proc.stop()


def _no_overflow(page: Page, what: str) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= MOBILE["width"], f"{what}: the page is {width}px wide at 375px"


def test_papercuts_journey(browser: Browser, fresh: tuple[str, Proc], upstream: Upstream) -> None:
    base, proc = fresh
    log = Path(proc.log).read_text()
    assert (
        f"Parley is running: open {base} and create the first account "
        "(it becomes the administrator)"
    ) in log

    # -- the admin signs up; the empty chat offers four starters
    admin = Account(unique_email("boss"), PASSWORD, "Boss")
    ctx = new_context(browser, base, viewport=DESKTOP)
    page = ctx.new_page()
    ui_signup(page, admin.name, admin.email)
    starters = page.get_by_test_id("starter")
    expect(starters).to_have_count(4)
    expect(starters.first).to_contain_text("Summarise a file")
    expect(page.get_by_test_id("starters")).to_contain_text("Write Python to")
    shot(page, "papercuts-starters-1280")

    # "Summarise a file" opens the file picker with its request ready in the composer
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("starter").filter(has_text="Summarise a file").click()
    assert chooser.value.is_multiple()
    expect(page.get_by_test_id("composer")).to_have_value(re.compile("^Summarise this file"))

    # a starter that needs the user's part fills the composer (caret at the end)
    page.get_by_test_id("starter").filter(has_text="Explain a concept").click()
    expect(page.get_by_test_id("composer")).to_have_value(re.compile("^Explain simply"))
    page.get_by_test_id("composer").fill("")

    # a complete one is sent; the model then names the chat
    upstream.script(
        {"text": "Here is a script using **Pillow** and `os.rename`."},
        {"text": '"Renaming photos by date"'},
    )
    page.get_by_test_id("starter").filter(has_text="Write Python to").click()
    reply = wait_done(page)
    expect(reply).to_contain_text("Pillow")
    expect(page.get_by_test_id("page-title")).to_have_text("Renaming photos by date")
    expect(page.get_by_test_id("sidebar-item").first).to_contain_text("Renaming photos by date")
    title_call = upstream.chat_requests()[-1]["json"]["messages"]
    assert "title" in title_call[0]["content"].lower()
    assert "Write a Python script" in title_call[-1]["content"]
    page.reload()
    expect(page.get_by_test_id("page-title")).to_have_text("Renaming photos by date")
    shot(page, "papercuts-model-title-1280")

    # -- a toast (archiving the open chat) sits at the top right, clear of the composer
    page.get_by_test_id("sidebar-item").first.hover()
    page.get_by_test_id("sidebar-item-menu").first.click()
    page.get_by_test_id("menu-archive").click()
    toast = page.get_by_test_id("toast").filter(has_text="Conversation archived.")
    expect(toast).to_be_visible()
    box, composer = toast.bounding_box(), page.get_by_test_id("composer").bounding_box()
    assert box and composer and box["y"] + box["height"] < composer["y"], (box, composer)
    assert box["x"] + box["width"] > DESKTOP["width"] - 40  # at the right edge
    shot(page, "papercuts-toast-1280")
    toast.get_by_role("button", name="Dismiss notification").click()
    expect(toast).to_have_count(0)

    # -- Admin → Users: reset Bea's password, then delete Cy
    bea = api_signup(base, "Bea", unique_email("bea"))
    cy = api_signup(base, "Cy", unique_email("cy"))
    page.goto("/admin/users")
    page.get_by_role("button", name=f"Reset password of {bea.email}").click()
    dialog = page.get_by_test_id("user-account-dialog")
    dialog.get_by_test_id("reset-ok").click()
    temporary = dialog.get_by_test_id("temporary-password")
    expect(temporary).to_be_visible()
    shot(page, "papercuts-reset-password-1280")
    password = temporary.inner_text().strip()
    dialog.get_by_role("button", name="Done").click()
    with httpx.Client(base_url=base, timeout=15) as c:
        old = c.post("/api/auth/login", json={"email": bea.email, "password": PASSWORD})
        assert old.status_code == 401
        new = c.post("/api/auth/login", json={"email": bea.email, "password": password})
        assert new.status_code == 200, new.text

    page.get_by_role("button", name=f"Delete {cy.email}").click()
    expect(dialog.get_by_test_id("delete-ok")).to_be_disabled()
    dialog.get_by_test_id("delete-confirm-email").fill(cy.email)
    shot(page, "papercuts-delete-user-1280")
    dialog.get_by_test_id("delete-ok").click()
    expect(page.get_by_test_id("toast").filter(has_text="User deleted.")).to_be_visible()
    expect(page.get_by_test_id("users-table")).not_to_contain_text(cy.email)
    page.reload()
    expect(page.get_by_test_id("users-table")).to_contain_text(bea.email)
    expect(page.get_by_test_id("users-table")).not_to_contain_text(cy.email)
    # no Delete on the admin's own row
    expect(page.get_by_role("button", name=f"Delete {admin.email}")).to_have_count(0)

    # -- a model that cannot be reached: the admin adds one (saved anyway)
    dead_port = free_port()  # nothing listens there
    added = page.request.post(
        "/api/admin/providers",
        data={
            "name": "office",
            "base_url": f"http://127.0.0.1:{dead_port}/v1",
            "api_key": "sk-office",
            "models": [{"name": "big"}],
            "force": True,
        },
        headers={"X-CSRF-Token": csrf(page)},
    )
    assert added.status == 201, added.text()
    page.goto("/")
    page.get_by_test_id("model-picker").select_option("office/big")
    send(page, "Are you there?")
    error = wait_done(page).get_by_test_id("message-error")
    expect(error).to_contain_text(f"127.0.0.1:{dead_port}")  # the admin sees where
    shot(page, "papercuts-error-admin-1280")
    ctx.close()

    # -- Bea, at 375 px: the same failure in words she can act on; nothing overflows
    bea_now = Account(bea.email, password, bea.name)
    phone = new_context(browser, base, viewport=MOBILE, is_mobile=True, has_touch=True)
    sign_in(phone, bea_now, base)
    mobile = phone.new_page()
    mobile.goto("/")
    expect(mobile.get_by_test_id("starters")).to_be_visible()
    _no_overflow(mobile, "empty chat")
    shot(mobile, "papercuts-starters-375")
    mobile.get_by_test_id("model-picker").select_option("office/big")
    send(mobile, "Please summarise the meeting notes from Tuesday")
    failed = wait_done(mobile)
    text = failed.get_by_test_id("message-error").inner_text()
    assert not INTERNAL.search(text), text
    assert "ask your administrator" in text
    title = mobile.get_by_test_id("page-title")
    expect(title).to_have_text("Please summarise the meeting notes from Tuesday")
    box = title.bounding_box()
    assert box and box["width"] > MOBILE["width"] * 0.6, box  # not squeezed behind the picker
    _no_overflow(mobile, "chat")
    shot(mobile, "papercuts-error-user-375")
    assert not INTERNAL.search(last_assistant(mobile).inner_text())
    for path in ("/settings/general", "/settings/account", "/settings/keys"):
        mobile.goto(path)
        expect(mobile.get_by_test_id("page-title")).to_have_text("Settings")
        _no_overflow(mobile, path)
    shot(mobile, "papercuts-settings-375")
    phone.close()

    # -- the admin's pages at 375 px: tables become cards, actions stay on screen
    phone = new_context(browser, base, viewport=MOBILE, is_mobile=True, has_touch=True)
    sign_in(phone, admin, base)
    mobile = phone.new_page()
    for path, ready, name in (
        ("/admin/users", "users-table", "users"),
        ("/admin/providers", "providers-table", "providers"),
        ("/admin/mcp", "mcp-list", "mcp"),
    ):
        mobile.goto(path)
        expect(mobile.get_by_test_id(ready)).to_be_visible()
        _no_overflow(mobile, path)
        shot(mobile, f"papercuts-admin-{name}-375")
    mobile.goto("/admin/users")
    reset = mobile.get_by_role("button", name=f"Reset password of {bea.email}")
    rbox = reset.bounding_box()
    assert rbox and rbox["x"] >= 0 and rbox["x"] + rbox["width"] <= MOBILE["width"], rbox
    phone.close()
