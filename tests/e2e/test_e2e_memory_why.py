"""The "why" view of the memory chip (issue 13 item 5): an answer that used a
memory lists it under "Memories used", and "Why these?" shows why recall chose
it (its rank, its score and the parts of it, in words and numbers). The
explanation is kept on the answer, so a reload shows the same. Checked at
desktop width and at 375 px. Runs on the shared server (the embedded
all-MiniLM-L6-v2 for recall, the default floor).
"""

from __future__ import annotations

import pytest
from e2ehelpers import MOBILE, Account, Upstream, chat, last_assistant, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def open_why(page: Page) -> None:
    answer = last_assistant(page)
    used = answer.get_by_test_id("memories-used")
    expect(used).to_contain_text("Memories used (1)")
    used.locator("summary").click()
    answer.get_by_test_id("memory-why-toggle").click()
    why = answer.get_by_test_id("memory-why")
    expect(why).to_be_visible()
    [item] = why.get_by_test_id("memory-why-item").all()
    expect(item).to_contain_text("My cello teacher is called Ana.")
    expect(item).to_contain_text("#1")
    expect(item).to_contain_text("shares words with your question")
    expect(item).to_contain_text("floor")


def test_why_view_explains_the_memory_used_and_survives_reload(
    page: Page, user: Account, upstream: Upstream
) -> None:
    page.goto("/")
    upstream.script({"text": "Saved."})
    chat(page, "Remember that my cello teacher is called Ana")
    page.get_by_test_id("new-chat").click()
    upstream.reset()
    upstream.script({"text": "Ask Ana about Thursday."})
    chat(page, "When is my next cello lesson with Ana?")
    [request] = upstream.chat_requests()
    system = "\n".join(
        str(m.get("content") or "")
        for m in request["json"]["messages"]
        if m.get("role") == "system"
    )
    assert "- My cello teacher is called Ana." in system
    open_why(page)
    shot(page, "memory-why-desktop")

    page.reload()
    open_why(page)

    page.set_viewport_size(MOBILE)
    page.reload()
    open_why(page)
    last_assistant(page).get_by_test_id("memory-why").scroll_into_view_if_needed()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= MOBILE["width"], f"the page scrolls sideways at 375 px ({width} px)"
    shot(page, "memory-why-375")
