"""The "Memory updated" chip and the recall floor in the browser (issue 12 item 9).

"Remember that I'm vegetarian" shows a *Memory updated* chip (not "Memories
used") with a link to the memory page, and a reload still shows it (it is kept
in the answer's sources). An unrelated question ("What is 1234*5678?") gets no
memory and shows no "Memories used"; a related one ("suggest a dinner") does.
Runs on the shared server (the embedded all-MiniLM-L6-v2 for recall, the
default ``MEMORY_RECALL_FLOOR``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from e2ehelpers import Account, Upstream, chat, last_assistant, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def system_text(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content") or "")
        for m in request["json"].get("messages", [])
        if m.get("role") == "system"
    )


def test_memory_updated_chip_survives_reload_and_unrelated_questions_use_no_memory(
    page: Page, user: Account, upstream: Upstream
) -> None:
    page.goto("/")
    upstream.script({"text": "Noted: you are vegetarian."})
    told = chat(page, "Remember that I'm vegetarian")
    chip = told.get_by_test_id("memory-updated")
    expect(chip).to_be_visible()
    expect(chip).to_contain_text("Memory updated")
    expect(chip.get_by_test_id("memory-updated-item")).to_have_text(["I'm vegetarian. (saved)"])
    expect(chip.get_by_test_id("memory-updated-link")).to_have_attribute("href", "/settings/memory")
    expect(told.get_by_test_id("memories-used")).to_have_count(0)  # a change, not a use
    shot(page, "memory-chip-saved")

    # A reload shows it again: it is stored on the answer.
    page.reload()
    again = last_assistant(page)
    expect(again.get_by_test_id("memory-updated")).to_contain_text("I'm vegetarian.")
    expect(again.get_by_test_id("memories-used")).to_have_count(0)
    shot(page, "memory-chip-after-reload")

    # Its link opens the memory page, which lists the memory.
    again.get_by_test_id("memory-updated-link").click()
    expect(page).to_have_url(re.compile(r"/settings/memory$"))
    expect(page.get_by_test_id("memory-item").filter(has_text="I'm vegetarian.")).to_have_count(1)

    # An unrelated question: no memory reaches the model, none is shown.
    page.get_by_test_id("new-chat").click()
    upstream.reset()
    upstream.script({"text": "7006652"})
    answer = chat(page, "What is 1234*5678?")
    [request] = upstream.chat_requests()
    assert "<saved_memories>" not in system_text(request)
    expect(answer.get_by_test_id("memories-used")).to_have_count(0)
    expect(answer.get_by_test_id("memory-updated")).to_have_count(0)
    shot(page, "memory-chip-unrelated")

    # A related one gets it, listed as used.
    upstream.reset()
    upstream.script({"text": "How about a chickpea curry?"})
    dinner = chat(page, "suggest a dinner")
    [request] = upstream.chat_requests()
    assert "- I'm vegetarian." in system_text(request)
    used = dinner.get_by_test_id("memories-used")
    expect(used).to_contain_text("Memories used (1)")
    expect(dinner.get_by_test_id("memory-updated")).to_have_count(0)
    shot(page, "memory-chip-related")
