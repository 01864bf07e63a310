"""Keyboard shortcuts: new chat, focus the composer, stop, search, and the help dialog
that lists them. Key presses go to the page, never to a focused control's own handler
(except where the composer itself must react)."""

from __future__ import annotations

import re

import pytest
from e2ehelpers import Account, Upstream, chat, content, last_assistant, send
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

SLOW = " ".join(f"tick{i:02d}" for i in range(60))


def test_new_chat_and_focus_composer_shortcuts(
    page: Page, user: Account, upstream: Upstream
) -> None:
    upstream.script({"text": "First reply."})
    page.goto("/")
    chat(page, "Hello there")
    expect(page).to_have_url(re.compile(r"/c/[^/]+$"))

    # Shift+Esc brings focus back to the composer from anywhere.
    page.get_by_test_id("search-input").focus()
    page.keyboard.press("Shift+Escape")
    expect(page.get_by_test_id("composer")).to_be_focused()

    # Ctrl+Shift+O starts a new chat (empty, at "/") with the composer focused.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
    expect(page.get_by_test_id("message-list")).to_have_count(0)
    expect(page.get_by_test_id("composer")).to_be_focused()
    expect(page.get_by_test_id("composer")).to_have_value("")

    # Shift+Esc from another screen goes back to the chat and focuses the composer.
    page.goto("/settings")
    expect(page.get_by_test_id("settings-tab-general")).to_be_visible()  # the app is up
    expect(page.get_by_test_id("composer")).to_have_count(0)
    page.keyboard.press("Shift+Escape")
    expect(page.get_by_test_id("composer")).to_be_focused()


def test_search_shortcut_focuses_search(page: Page, user: Account, upstream: Upstream) -> None:
    upstream.script({"text": "Noted."})
    page.goto("/")
    chat(page, "Tell me about the marmoset colony")
    page.get_by_test_id("composer").focus()
    page.keyboard.press("Control+k")
    search = page.get_by_test_id("search-input")
    expect(search).to_be_focused()
    page.keyboard.type("marmoset")
    expect(page.get_by_test_id("search-hit").first).to_contain_text("marmoset")


def test_escape_stops_the_stream(page: Page, user: Account, upstream: Upstream) -> None:
    upstream.script({"text": SLOW, "rate": 8})
    page.goto("/")
    send(page, "Count slowly")
    reply = last_assistant(page)
    expect(content(reply)).to_contain_text("tick02")
    page.keyboard.press("Escape")
    expect(reply).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_test_id("send")).to_be_visible()
    assert "tick59" not in (content(reply).text_content() or "")


def test_help_dialog_lists_the_shortcuts(page: Page, user: Account) -> None:
    page.goto("/")
    expect(page.get_by_test_id("composer")).to_be_visible()
    page.keyboard.press("Control+/")
    dialog = page.get_by_test_id("help-dialog")
    expect(dialog).to_be_visible()
    for action in ("New chat", "Search conversations", "Focus the message box", "Stop generating"):
        expect(dialog).to_contain_text(action)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Escape closed the dialog only: nothing else reacted (no stream to stop, still home).
    expect(page.get_by_test_id("composer")).to_be_visible()
