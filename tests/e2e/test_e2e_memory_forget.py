"""Updates that never destroy and forgetting in the user's words, in the browser
(issue 13 items 3 and 4).

A fact, then an update of the same attribute that replaces it (the memory page's
history shows the old text, and restoring it works), then a fact about the same
topic but another attribute that must not replace anything; then "can you forget
everything about my old job?" shows a chip listing the matching memories:
approve, undo, approve. The page is reloaded between the steps (the chip's state
lives on the server). Screenshots at desktop width and at 375 px.
"""

from __future__ import annotations

import pytest
from e2ehelpers import MOBILE, Account, Upstream, chat, last_assistant, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

OLD_JOB = [
    "My old job was at Northwind Logistics",
    "At my old job I drove a forklift",
    "My boss at the old job was Greg",
]


def _memory_texts(page: Page) -> list[str]:
    page.goto("/settings/memory")
    expect(
        page.get_by_test_id("memory-list").or_(page.get_by_test_id("memory-empty"))
    ).to_be_visible()
    return [t.split("\n")[0].strip() for t in page.get_by_test_id("memory-item").all_inner_texts()]


def test_update_history_restore_then_forget_with_undo(
    page: Page, user: Account, upstream: Upstream
) -> None:
    page.goto("/")
    upstream.script({"text": "Noted."})
    chat(page, "Remember that I live in Paris")
    page.get_by_test_id("new-chat").click()
    chat(page, "Remember that I moved to Lyon")
    page.reload()
    # The update replaced the memory; the old text is in its history.
    page.goto("/settings/memory")
    item = page.get_by_test_id("memory-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("I moved to Lyon.")
    item.get_by_test_id("memory-history").click()
    expect(page.get_by_test_id("memory-version")).to_contain_text("I live in Paris.")
    shot(page, "memory-history")
    page.get_by_test_id("memory-restore").click()
    expect(item).to_contain_text("I live in Paris.")
    expect(page.get_by_test_id("memory-version")).to_contain_text("I moved to Lyon.")
    page.reload()
    expect(page.get_by_test_id("memory-item")).to_contain_text("I live in Paris.")
    # Restore the update again (the newer value), for the rest of the journey.
    page.get_by_test_id("memory-history").click()
    page.get_by_test_id("memory-restore").click()
    expect(page.get_by_test_id("memory-item")).to_contain_text("I moved to Lyon.")

    # Same topic, another attribute: added beside it, nothing replaced.
    page.goto("/")
    chat(page, "Remember that I hurt my knee carrying boxes into the Lyon flat")
    page.reload()
    texts = _memory_texts(page)
    assert any("I moved to Lyon." in t for t in texts), texts
    assert any("hurt my knee" in t for t in texts), texts

    # Forgetting a topic: the chip lists the matching memories.
    for fact in OLD_JOB:
        page.get_by_test_id("memory-new").fill(fact)
        page.get_by_test_id("memory-add").click()
        expect(page.get_by_test_id("memory-item").filter(has_text=fact)).to_have_count(1)
    page.goto("/")
    upstream.script({"text": "Please confirm below."})
    answer = chat(page, "can you forget everything about my old job?")
    chip = answer.get_by_test_id("forget-chip")
    expect(chip).to_be_visible()
    expect(chip).to_contain_text("Forget these 3 memories?")
    expect(chip.get_by_test_id("forget-item")).to_have_count(3)
    shot(page, "forget-chip")
    page.reload()
    chip = last_assistant(page).get_by_test_id("forget-chip")
    expect(chip).to_contain_text("Forget these 3 memories?")
    chip.get_by_test_id("forget-approve").click()
    expect(chip).to_contain_text("Forgotten: 3 memories.")
    shot(page, "forget-chip-approved")
    page.reload()
    chip = last_assistant(page).get_by_test_id("forget-chip")
    expect(chip).to_contain_text("Forgotten: 3 memories.")
    chip.get_by_test_id("forget-undo").click()
    expect(chip).to_contain_text("Forget these 3 memories?")
    conversation = page.url
    texts = _memory_texts(page)
    assert sum(any(f in t for t in texts) for f in OLD_JOB) == 3, texts
    page.goto(conversation)
    chip = last_assistant(page).get_by_test_id("forget-chip")
    chip.get_by_test_id("forget-approve").click()
    expect(chip).to_contain_text("Forgotten: 3 memories.")
    page.set_viewport_size(MOBILE)
    page.reload()
    expect(last_assistant(page).get_by_test_id("forget-chip")).to_be_visible()
    shot(page, "forget-chip-375")
    texts = _memory_texts(page)
    assert not any(f in t for t in texts for f in OLD_JOB), texts
    assert any("I moved to Lyon." in t for t in texts), texts
    shot(page, "memory-page-after-forget-375")
