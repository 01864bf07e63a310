"""Assistants in the browser: build one with a file and two starters, try it in the
live preview, save and publish a new version, start a chat from a starter and get a
cited answer; then compare and restore the older version, and the chat's next answer
follows the restored instructions.

The scripted upstream answers with fixed text; the test checks what the model was
*given* (the instructions of the version in force, the assistant's file) and what
the pages show.
"""

from __future__ import annotations

import re
import struct
import time
import zlib

import pytest
from e2ehelpers import (
    PageLog,
    Upstream,
    api_signup,
    axe_violations,
    chat,
    content,
    new_context,
    shot,
    sign_in,
    watch,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

INGEST_TIMEOUT_S = 120  # the first file also loads the embedding model
FIRST = "Answer as the keeper of the Harbor Lighthouse."
SECOND = "Answer as the keeper of the Harbor Lighthouse, always in rhyme."
FACT = (
    "The emergency shutoff valve of the Harbor Lighthouse sits behind the blue door in "
    "room 4B, and the valve key hangs on hook number seven."
)
STARTERS = ["Where is the shutoff valve?", "Which hook holds the valve key?"]


def _png() -> bytes:
    """A real 2x2 orange PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x88\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _prompt(upstream: Upstream) -> str:
    return str(upstream.chat_requests()[-1]["json"]["messages"][0]["content"])


def _wait_ready(page: Page, filename: str) -> None:
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    while time.monotonic() < deadline:
        files = page.request.get("/api/files").json()["items"]
        if any(f["filename"] == filename and f["status"] == "ready" for f in files):
            return
        time.sleep(0.3)
    raise AssertionError(f"{filename} was not indexed in {INGEST_TIMEOUT_S} s")


def test_build_preview_publish_chat_and_restore(page: Page, user, upstream: Upstream) -> None:
    page.goto("/")
    page.get_by_test_id("nav-assistants").click()
    expect(page.get_by_test_id("assistants-empty")).to_be_visible()
    page.get_by_test_id("assistant-new").click()

    # --- the builder: name, avatar, instructions, two starters, a file
    page.get_by_test_id("assistant-name").fill("Lighthouse guide")
    page.get_by_test_id("assistant-avatar").fill("🗼")
    page.get_by_test_id("assistant-description").fill("Knows the lighthouse's safety manual.")
    page.get_by_test_id("assistant-instructions").fill(FIRST)
    page.get_by_test_id("assistant-starter-input").nth(0).fill(STARTERS[0])
    page.get_by_test_id("assistant-starter-input").nth(1).fill(STARTERS[1])
    page.get_by_test_id("assistant-upload").set_input_files(
        [{"name": "manual.txt", "mimeType": "text/plain", "buffer": FACT.encode()}]
    )
    file_box = page.get_by_label(re.compile(r"manual\.txt"))
    expect(file_box).to_be_checked()
    expect(page.get_by_test_id("assistant-preview")).to_contain_text("Save the assistant")
    page.get_by_test_id("assistant-save").click()
    expect(page).to_have_url(re.compile(r"/assistants/[0-9a-f]{32}$"))
    expect(page.get_by_test_id("assistant-status")).to_contain_text("Version 1, published")
    _wait_ready(page, "manual.txt")

    # --- the live preview: a starter, answered with the draft and the file
    upstream.script({"text": "Behind the blue door in room 4B [1]."})
    page.get_by_test_id("preview-starter").filter(has_text=STARTERS[0]).click()
    answer = page.get_by_test_id("preview-assistant").last
    expect(answer).to_contain_text("blue door")
    expect(answer).to_contain_text("Sources: [1] manual.txt")
    prompt = _prompt(upstream)
    assert FIRST in prompt and "room 4B" in prompt
    expect(page.get_by_test_id("assistant-form")).to_contain_text("manual.txt (ready)")
    shot(page, "assistant-builder")

    # --- a new version: saved (the preview starts over with it), then published
    page.get_by_test_id("assistant-instructions").fill(SECOND)
    expect(page.get_by_test_id("preview-unsaved")).to_be_visible()
    page.get_by_test_id("assistant-save").click()
    expect(page.get_by_test_id("assistant-status")).to_contain_text(
        "Draft version 2 · chats use version 1"
    )
    expect(page.get_by_test_id("preview-assistant")).to_have_count(0)
    page.get_by_test_id("assistant-publish").click()
    expect(page.get_by_test_id("assistant-status")).to_contain_text("Version 2, published")

    # --- the list; a chat started from a starter gets a cited answer
    page.get_by_role("link", name="All assistants").click()
    card = page.get_by_test_id("assistant-card").filter(has_text="Lighthouse guide")
    expect(card).to_contain_text("Knows the lighthouse's safety manual.")
    shot(page, "assistants-list")
    upstream.script({"text": "The key hangs on hook number seven [1]."})
    card.get_by_test_id("assistant-starter").filter(has_text=STARTERS[1]).click()
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f]{32}$"))
    chat_url = page.url
    reply = page.locator("[data-testid=message][data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(content(reply)).to_contain_text("hook number seven")
    expect(reply.get_by_test_id("file-source").filter(has_text="[1]")).to_contain_text("manual.txt")
    expect(page.get_by_test_id("chat-assistant")).to_contain_text("Lighthouse guide")
    prompt = _prompt(upstream)
    assert SECOND in prompt and "hook number seven" in prompt
    shot(page, "assistant-chat")

    # --- history: compare version 1 with the draft, restore it, publish
    page.get_by_test_id("nav-assistants").click()
    page.get_by_test_id("assistant-card").filter(has_text="Lighthouse guide").get_by_test_id(
        "assistant-edit"
    ).click()
    page.get_by_test_id("assistant-history").click()
    rows = page.get_by_test_id("version-row")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text="Version 1")
    first.get_by_test_id("version-compare").click()
    diff = page.get_by_test_id("version-diff")
    expect(diff).to_contain_text("Version 1 → version 2")
    expect(diff).to_contain_text(f"- {FIRST}")
    expect(diff).to_contain_text(f"+ {SECOND}")
    shot(page, "assistant-history")
    first.get_by_test_id("version-restore").click()
    expect(page.get_by_test_id("assistant-status")).to_contain_text(
        "Draft version 3 · chats use version 2"
    )
    expect(page.get_by_test_id("assistant-instructions")).to_have_value(FIRST)
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Restored from version 1")
    page.get_by_test_id("assistant-publish").click()
    expect(page.get_by_test_id("assistant-status")).to_contain_text("Version 3, published")

    # --- back in the chat, the next answer follows the restored instructions
    page.goto(chat_url)
    expect(page.locator("[data-testid=message][data-role=assistant]")).to_have_count(1)
    expect(page.get_by_test_id("chat-assistant")).to_contain_text("Lighthouse guide")
    upstream.script({"text": "Room 4B, behind the blue door [1]."})
    reply = chat(page, "Remind me where the valve is?")
    expect(content(reply)).to_contain_text("Room 4B")
    prompt = _prompt(upstream)
    assert FIRST in prompt and SECOND not in prompt
    # each answer's details name the version that wrote it
    expect(reply.get_by_test_id("message-meta")).to_contain_text("assistant version 3")
    first_answer = page.locator("[data-testid=message][data-role=assistant]").first
    expect(first_answer.get_by_test_id("message-meta")).to_contain_text("assistant version 2")

    # --- an uploaded image as the avatar: in the builder and the chat's header
    page.get_by_test_id("nav-assistants").click()
    page.get_by_test_id("assistant-edit").click()
    page.get_by_test_id("assistant-image").set_input_files(
        [{"name": "face.png", "mimeType": "image/png", "buffer": _png()}]
    )
    expect(page.locator(".image-avatar img")).to_be_visible()
    page.goto(chat_url)
    badge = page.get_by_test_id("chat-assistant")
    expect(badge.locator("img")).to_be_visible()
    assert badge.locator("img").evaluate("img => img.naturalWidth") == 2


def test_assistant_pages_are_accessible_and_fit_a_phone(
    browser: Browser, server: str, admin, upstream: Upstream
) -> None:
    """axe finds nothing serious on the list, the builder (with its history) and an
    assistant's empty chat; on a phone the builder's form and preview stack, and the
    chat's header keeps the assistant's name."""
    account = api_signup(server, name="Axe Assistants")
    with account.api(server) as api:
        made = api.post(
            "/api/assistants",
            json={
                "config": {
                    "name": "Tide tables",
                    "avatar": "🌊",
                    "description": "High and low water for the harbour.",
                    "starters": ["When is high tide today?", "Is it safe to launch at noon?"],
                }
            },
        ).json()
        api.post(
            f"/api/assistants/{made['id']}/versions",
            json={"config": {"name": "Tide tables", "instructions": "Answer in metres."}},
        )
        conv = api.post(f"/api/assistants/{made['id']}/chats", json={}).json()
    log = PageLog()
    ctx = new_context(browser, server, bypass_csp=True)  # axe is injected as a script
    try:
        sign_in(ctx, account, server)
        page = ctx.new_page()
        watch(page, log)
        failures: dict[str, object] = {}
        page.goto("/assistants")
        expect(page.get_by_test_id("assistant-card")).to_have_count(1)
        failures["list"] = axe_violations(page)
        page.goto(f"/assistants/{made['id']}")
        page.get_by_test_id("assistant-history").click()
        expect(page.get_by_test_id("version-row")).to_have_count(2)
        page.get_by_test_id("version-compare").click()
        expect(page.get_by_test_id("version-diff")).to_contain_text("Answer in metres.")
        failures["builder"] = axe_violations(page)
        page.goto(f"/c/{conv['conversation_id']}")
        welcome = page.get_by_test_id("assistant-welcome")
        expect(welcome).to_contain_text("Tide tables")
        expect(welcome.get_by_test_id("chat-starter")).to_have_count(2)
        failures["chat"] = axe_violations(page)
        assert not any(failures.values()), failures

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"/assistants/{made['id']}")
        form = page.get_by_test_id("assistant-form")
        preview = page.get_by_test_id("assistant-preview")
        expect(form).to_be_visible()
        form_box, preview_box = form.bounding_box(), preview.bounding_box()
        assert form_box and preview_box
        assert preview_box["y"] >= form_box["y"] + form_box["height"] - 1  # stacked
        assert form.evaluate("f => f.scrollHeight <= f.clientHeight + 1")  # nothing spills
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "assistant-builder-phone")
        page.goto(f"/c/{conv['conversation_id']}")
        expect(page.get_by_test_id("chat-assistant")).to_contain_text("Tide tables")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not log.problems(), log.problems()
    finally:
        ctx.close()
