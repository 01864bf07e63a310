"""A tool turn reads in order in the browser (issue 12 item 6): the text the model
wrote before a tool call, the step, then the text after it, live and once stored;
the Tools menu is there on the new-chat screen with human names, and a choice made
there applies to the conversation the first message creates."""

from __future__ import annotations

from typing import Any

import pytest
from e2ehelpers import Upstream, content, last_assistant, messages, send, shot, wait_done
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

BEFORE = "Let me work that out with the calculator."
AFTER_WORDS = [f"then{i:02d}" for i in range(30)]
AFTER = "I ran it: six times seven is 42. " + " ".join(AFTER_WORDS)


def order(reply: Locator) -> list[str]:
    """The answer's parts in DOM order: ``text:<start>`` or ``steps:<count>``."""
    result: list[str] = content(reply).evaluate(
        """(el) => Array.from(el.querySelectorAll(
             '[data-testid=message-segment], [data-testid=tool-steps]')).map((n) =>
             n.matches('[data-testid=tool-steps]')
               ? 'steps:' + n.querySelectorAll('[data-testid=tool-step]').length
               : 'text:' + n.textContent.trim().slice(0, 12))"""
    )
    return result


def test_tool_turn_reads_text_step_text_and_tools_menu_on_new_chat(
    page: Page, user: Any, upstream: Upstream
) -> None:
    page.goto("/")
    # The Tools menu is on the new-chat screen, before any message, with human names.
    page.get_by_test_id("tools-menu").click()
    panel = page.get_by_test_id("tools-panel")
    expect(panel).to_be_visible()
    titles = panel.get_by_test_id("tool-title")
    expect(titles.first).to_be_visible()
    names = titles.all_text_contents()
    for human in ("Calculator", "Read a web page", "Search your chats", "Remember"):
        assert human in names, names
    assert not any("_" in n for n in names), names
    expect(panel).to_contain_text("Works out arithmetic exactly")
    expect(panel).to_contain_text("Applies to the chat you start now.")
    # Choose before the first message: no web page reading in this chat.
    page.get_by_test_id("tool-toggle-fetch_page").uncheck()
    expect(page.get_by_test_id("tool-toggle-fetch_page")).not_to_be_checked()
    expect(page.get_by_test_id("tool-toggle-calculator")).to_be_checked()
    shot(page, "tool-sequence-menu-new-chat")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    upstream.reset()
    upstream.script(
        {"text": BEFORE, "tool_calls": [["calculator", '{"expression":"6*7"}']]},
        {"text": AFTER, "rate": 12},
    )
    send(page, "What is 6*7?")
    reply = last_assistant(page)
    expect(messages(page, "assistant")).to_have_count(1)
    # Live: the text before, the step, then the text after it, still streaming.
    expect(reply.get_by_test_id("tool-step")).to_have_count(1)
    expect(content(reply)).to_contain_text("then02")
    assert reply.get_attribute("data-status") == "streaming"
    assert order(reply) == ["text:Let me work ", "steps:1", "text:I ran it: si"], order(reply)
    shot(page, "tool-sequence-live")

    wait_done(page)
    # Stored: the same order, the two texts separate paragraphs (never glued).
    expect(content(reply)).to_contain_text(AFTER_WORDS[-1])
    assert order(reply) == ["text:Let me work ", "steps:1", "text:I ran it: si"], order(reply)
    paragraphs = content(reply).locator("[data-testid=message-segment] p").all_text_contents()
    assert paragraphs[0] == BEFORE and paragraphs[1].startswith("I ran it"), paragraphs
    assert "calculator.I ran" not in (content(reply).text_content() or "")
    shot(page, "tool-sequence-done")

    # The choice made before the first message applied to the conversation.
    offered = [t["function"]["name"] for t in upstream.chat_requests()[0]["json"].get("tools", [])]
    assert "calculator" in offered and "fetch_page" not in offered, offered
    page.reload()
    reply = last_assistant(page)
    expect(reply.get_by_test_id("tool-step")).to_have_count(1)
    assert order(reply) == ["text:Let me work ", "steps:1", "text:I ran it: si"], order(reply)
    page.get_by_test_id("tools-menu").click()
    expect(page.get_by_test_id("tool-toggle-calculator")).to_be_checked()
    expect(page.get_by_test_id("tool-toggle-fetch_page")).not_to_be_checked()
    expect(page.get_by_test_id("tools-panel")).not_to_contain_text("Applies to the chat you start")
