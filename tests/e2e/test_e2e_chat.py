"""Chat turns in the browser against a real server and a scripted upstream:
streaming, stop, regenerate, edit branches, tool steps, errors with Retry, CSP."""

from __future__ import annotations

import re

import httpx
import pytest
from e2ehelpers import (
    DEFAULT_REPLY,
    PageLog,
    Upstream,
    chat,
    content,
    last_assistant,
    messages,
    send,
    shot,
    wait_done,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

WORDS = [f"word{i:02d}" for i in range(40)]
SLOW_TEXT = " ".join(WORDS)


def test_csp_header_on_app_html(server: str) -> None:
    for path in ("/", "/login", "/c/does-not-exist", "/settings"):
        r = httpx.get(f"{server}{path}", timeout=10)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers.get("content-security-policy", "")
        directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
        assert directives.get("script-src") == "script-src 'self'", csp
        assert "default-src" in directives and "'self'" in directives["default-src"], csp
        assert "unsafe-eval" not in csp and "unsafe-inline" not in directives["script-src"]
        assert directives.get("object-src") == "object-src 'none'", csp
        assert "frame-ancestors" in directives, csp


def test_streamed_answer_grows_then_completes(
    page: Page, user, upstream: Upstream, page_log: PageLog
) -> None:
    upstream.script({"text": SLOW_TEXT, "rate": 20})
    page.goto("/")
    # Record the reply's visible length on every DOM change while it streams.
    send(page, "Count for me slowly")
    reply = last_assistant(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    page.evaluate(
        """() => {
          window.__lengths = [];
          const list = document.querySelector('[data-testid=message-list]');
          new MutationObserver(() => {
            const msgs = list.querySelectorAll('[data-testid=message][data-role=assistant]');
            const last = msgs[msgs.length - 1];
            const c = last && last.querySelector('[data-testid=message-content]');
            if (c && last.dataset.status === 'streaming')
              window.__lengths.push(c.textContent.length);
          }).observe(list, {subtree: true, childList: true, characterData: true, attributes: true});
        }"""
    )
    # Partial text while streaming: the first words are there, the last one is not yet.
    expect(content(reply)).to_contain_text("word03")
    expect(reply).to_have_attribute("data-status", "streaming")
    assert "word39" not in (content(reply).text_content() or "")
    expect(page.get_by_test_id("stop")).to_be_visible()
    # Then it completes with the whole text.
    wait_done(page)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(content(reply)).to_have_text(SLOW_TEXT)
    lengths = page.evaluate("window.__lengths")
    distinct = sorted(set(lengths))
    assert len(distinct) >= 5, f"the reply did not grow progressively: {lengths}"
    assert lengths == sorted(lengths), f"the streamed text shrank: {lengths}"
    assert re.search(r"/c/[0-9a-f]+$", page.url)
    # The conversation got a title from the first message, shown in the sidebar.
    expect(page.get_by_test_id("sidebar-item").first).to_contain_text("Count for me slowly")
    shot(page, "chat-light")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert not page_log.csp_violations()


def test_stop_keeps_partial_text_and_cancelled_status(page: Page, user, upstream: Upstream) -> None:
    upstream.script({"text": SLOW_TEXT, "rate": 8})
    page.goto("/")
    send(page, "Talk for a long time")
    reply = last_assistant(page)
    expect(content(reply)).to_contain_text("word02")
    page.get_by_test_id("stop").click()
    expect(reply).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_test_id("send")).to_be_visible()
    expect(content(reply)).to_contain_text("word00 word01 word02")
    partial = (content(reply).text_content() or "").strip()
    assert partial.startswith("word00 word01 word02"), partial
    assert "word39" not in partial, "the reply was not stopped"
    # The server kept the partial answer with the cancelled status.
    page.reload()
    reply = last_assistant(page)
    expect(reply).to_have_attribute("data-status", "cancelled")
    expect(content(reply)).to_contain_text("word00 word01 word02")
    saved = (content(reply).text_content() or "").strip()
    assert saved.startswith("word00 word01 word02") and "word39" not in saved, saved
    # The upstream request was abandoned (the server closed the connection).
    reqs = upstream.chat_requests()
    assert reqs and reqs[-1]["disconnected"], reqs[-1:]


def test_regenerate_creates_second_version_with_navigation(
    page: Page, user, upstream: Upstream
) -> None:
    upstream.script({"text": "First answer alpha."}, {"text": "Second answer beta."})
    page.goto("/")
    reply = chat(page, "Give me an answer")
    expect(content(reply)).to_have_text("First answer alpha.")
    expect(reply.get_by_test_id("branch-label")).to_have_count(0)

    reply.hover()
    reply.get_by_test_id("regenerate").click()
    reply = wait_done(page)
    expect(content(reply)).to_have_text("Second answer beta.")
    expect(messages(page, "assistant")).to_have_count(1)
    label = reply.get_by_test_id("branch-label")
    expect(label).to_have_text("2/2")

    reply.get_by_test_id("branch-prev").click()
    expect(label).to_have_text("1/2")
    expect(content(last_assistant(page))).to_have_text("First answer alpha.")
    expect(reply.get_by_test_id("branch-prev")).to_be_disabled()

    last_assistant(page).get_by_test_id("branch-next").click()
    expect(label).to_have_text("2/2")
    expect(content(last_assistant(page))).to_have_text("Second answer beta.")

    # The chosen branch is the server's active branch: a reload shows it.
    last_assistant(page).get_by_test_id("branch-prev").click()
    expect(label).to_have_text("1/2")
    page.reload()
    expect(content(last_assistant(page))).to_have_text("First answer alpha.")
    expect(last_assistant(page).get_by_test_id("branch-label")).to_have_text("1/2")


def test_edit_earlier_message_branches(page: Page, user, upstream: Upstream) -> None:
    upstream.script(
        {"text": "Paris is the capital."},
        {"text": "About two million people."},
        {"text": "Rome is the capital."},
    )
    page.goto("/")
    chat(page, "What is the capital of France?")
    chat(page, "How many people live there?")
    expect(messages(page)).to_have_count(4)

    first = messages(page, "user").first
    first.hover()
    first.get_by_test_id("edit-message").click()
    page.get_by_test_id("edit-input").fill("What is the capital of Italy?")
    page.get_by_test_id("edit-submit").click()
    wait_done(page)

    # The new branch: edited question, its own answer, the later turn is gone.
    expect(messages(page)).to_have_count(2)
    first = messages(page, "user").first
    expect(content(first)).to_have_text("What is the capital of Italy?")
    expect(content(last_assistant(page))).to_have_text("Rome is the capital.")
    label = first.get_by_test_id("branch-label")
    expect(label).to_have_text("2/2")
    nav = first.get_by_role("group", name="Versions of this message")
    expect(nav).to_contain_text("2/2")
    expect(first.get_by_test_id("branch-prev")).to_be_enabled()
    expect(first.get_by_test_id("branch-next")).to_be_disabled()

    # < : the original question with its whole follow-up.
    first.get_by_test_id("branch-prev").click()
    expect(messages(page)).to_have_count(4)
    expect(label).to_have_text("1/2")
    expect(content(messages(page, "user").first)).to_have_text("What is the capital of France?")
    expect(content(last_assistant(page))).to_have_text("About two million people.")

    # > : back to the edit.
    messages(page, "user").first.get_by_test_id("branch-next").click()
    expect(messages(page)).to_have_count(2)
    expect(label).to_have_text("2/2")
    expect(content(last_assistant(page))).to_have_text("Rome is the capital.")

    # The model saw only the edited branch for the edited turn.
    sent = upstream.chat_requests()[-1]["json"]["messages"]
    texts = [m.get("content") for m in sent]
    assert "What is the capital of Italy?" in texts
    assert "What is the capital of France?" not in texts


def test_tool_step_is_shown_collapsibly(page: Page, user, upstream: Upstream) -> None:
    upstream.script(
        {"tool_calls": [["calculator", '{"expression":"6*7"}']]},
        {"text": "Six times seven is 42."},
    )
    page.goto("/")
    reply = chat(page, "What is 6*7? Use the calculator.")
    expect(content(reply)).to_contain_text("Six times seven is 42.")
    step = reply.get_by_test_id("tool-step")
    expect(step).to_have_count(1)
    expect(step.locator("summary")).to_contain_text("calculator")
    # Collapsed by default: arguments and result are hidden until opened.
    expect(step).not_to_have_attribute("open", "")
    io_args = step.locator("pre").first
    expect(io_args).to_be_hidden()
    step.locator("summary").click()
    expect(step).to_have_attribute("open", "")
    expect(step.locator("pre").first).to_be_visible()
    expect(step.locator("pre").first).to_contain_text("6*7")
    expect(step).to_contain_text("Result")
    expect(step.locator("pre").nth(1)).to_contain_text("42")
    step.locator("summary").click()
    expect(step.locator("pre").first).to_be_hidden()

    # The tool result went back to the model, and the step is kept after a reload.
    second = upstream.chat_requests()[-1]["json"]["messages"]
    assert any(m.get("role") == "tool" and "42" in str(m.get("content")) for m in second)
    page.reload()
    step = last_assistant(page).get_by_test_id("tool-step")
    expect(step.locator("summary")).to_contain_text("calculator")
    step.locator("summary").click()
    expect(step.locator("pre").first).to_contain_text("6*7")
    expect(step.locator("pre").nth(1)).to_contain_text("42")


def test_upstream_error_shows_retry_that_recovers(page: Page, user, upstream: Upstream) -> None:
    # three failures: the server's own retries (retry_attempts) are spent too
    upstream.script(*[{"fail": "500"}] * 3, {"text": "Recovered after the retry."})
    page.goto("/")
    send(page, "This will fail first")
    reply = last_assistant(page)
    expect(reply).to_have_attribute("data-status", "failed")
    error = reply.get_by_test_id("message-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"\S"))
    error_text = error.text_content() or ""
    assert "undefined" not in error_text and "[object" not in error_text, error_text
    expect(error).to_have_attribute("role", "alert")

    reply.get_by_test_id("retry").click()
    reply = wait_done(page)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(content(reply)).to_have_text("Recovered after the retry.")
    expect(page.get_by_test_id("message-error")).to_have_count(0)
    page.reload()
    expect(content(last_assistant(page))).to_have_text("Recovered after the retry.")


def test_default_reply_and_sidebar_navigation(page: Page, user, upstream: Upstream) -> None:
    """Two conversations; switching between them in the sidebar shows each one's messages."""
    page.goto("/")
    chat(page, "First conversation here")
    first_url = page.url
    page.get_by_test_id("new-chat").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(messages(page)).to_have_count(0)
    chat(page, "Second conversation here")
    expect(content(last_assistant(page))).to_have_text(DEFAULT_REPLY)
    items = page.get_by_test_id("sidebar-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Second conversation here")
    items.nth(1).locator("a").click()
    expect(page).to_have_url(first_url)
    expect(content(messages(page, "user").first)).to_have_text("First conversation here")
