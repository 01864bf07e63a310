"""Reloading mid-answer: the page reattaches to the answer the server is still
writing (live text, Stop), a follow-up waits for it, and the title still arrives."""

from __future__ import annotations

import pytest
from e2ehelpers import (
    Upstream,
    content,
    last_assistant,
    messages,
    shot,
    ui_signup,
    unique_email,
    wait_done,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

FIRST = " ".join(f"alpha{i:02d}" for i in range(50))
SECOND = " ".join(f"beta{i:02d}" for i in range(60))


def test_reload_mid_answer_resumes_live_text_stop_and_no_half_branch(
    page: Page, upstream: Upstream, server: str
) -> None:
    ui_signup(page, "Rita Reload", unique_email("resume"))
    upstream.script({"text": FIRST, "rate": 6}, {"text": SECOND, "rate": 6})

    # 1. Ask; reload while the answer streams.
    page.get_by_test_id("composer").fill("Count slowly for me")
    page.get_by_test_id("composer").press("Enter")
    reply = last_assistant(page)
    expect(content(reply)).to_contain_text("alpha03")
    page.reload()

    # 2. After the reload: the same answer, live, with Stop; it keeps growing.
    reply = last_assistant(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(page.get_by_test_id("stop")).to_be_visible()
    seen = (content(reply).text_content() or "").split()
    assert "alpha49" not in seen, "the answer was already complete: nothing to resume"
    later = f"alpha{min(int(seen[-1][5:]) + 3, 49) if seen else 5:02d}"
    expect(content(reply)).to_contain_text(later)  # live text, after the reload
    grown = (content(reply).text_content() or "").strip()
    assert grown.startswith("alpha00 alpha01 alpha02 alpha03"), grown
    # A follow-up now would branch from half an answer: Enter does not send it.
    page.get_by_test_id("composer").fill("And then?")
    page.get_by_test_id("composer").press("Enter")
    expect(messages(page, "user")).to_have_count(1)
    expect(page.get_by_test_id("composer-disabled-reason")).to_contain_text("still being written")
    shot(page, "resume-reattached-live")

    # 3. It finishes whole, and the automatic title reaches the reattached page.
    reply = wait_done(page)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(page.get_by_test_id("composer-disabled-reason")).to_have_count(0)
    expect(content(reply)).to_have_text(FIRST)
    expect(page.get_by_test_id("sidebar-item").first).to_contain_text("Count slowly for me")
    shot(page, "resume-finished")

    # 4. The follow-up (the kept draft) goes under the finished answer; reload again,
    #    then Stop from the reattached page.
    expect(page.get_by_test_id("composer")).to_have_value("And then?")
    page.get_by_test_id("composer").press("Enter")
    expect(messages(page, "assistant")).to_have_count(2)
    second = last_assistant(page)
    expect(content(second)).to_contain_text("beta03")
    page.reload()
    second = last_assistant(page)
    expect(second).to_have_attribute("data-status", "streaming")
    before = (content(second).text_content() or "").split()
    later = f"beta{int(before[-1][4:]) + 2 if before else 6:02d}"
    expect(content(second)).to_contain_text(later)
    page.get_by_test_id("stop").click()
    expect(second).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_test_id("send")).to_be_visible()
    stopped = (content(second).text_content() or "").strip()
    assert stopped.startswith("beta00 beta01") and "beta59" not in stopped, stopped
    shot(page, "resume-stopped")

    # 5. What the server stored: one branch, the follow-up under the complete answer.
    conv_id = page.url.rsplit("/", 1)[-1]
    detail = page.request.get(f"/api/conversations/{conv_id}").json()
    rows = detail["messages"]
    assert [m["role"] for m in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[1]["status"] == "complete" and rows[1]["content"] == FIRST
    assert rows[2]["parent_id"] == rows[1]["id"] and rows[2]["content"] == "And then?"
    assert rows[3]["status"] == "cancelled"
    assert len(rows[1]["siblings"]) == 1 and len(rows[2]["siblings"]) == 1
    assert detail["conversation"]["title"] == "Count slowly for me"
