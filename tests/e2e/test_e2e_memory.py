"""Memory in the browser (issue 6, "Done when"): a fact told in one chat is used
in a new one and shown under the answer, the memory page links back to the
message it came from, deleting it stops its use, a temporary chat leaves no
trace, automatic extraction goes to the memory model, and review mode.

This module runs its own ``parley serve`` with automatic extraction on (the
shared server turns it off) and ``PARLEY_MEMORY_MODEL=openai/scripted-mini``,
so each request to the scripted upstream says by its ``model`` whether it is a
chat turn (``scripted-model``) or an extraction (``scripted-mini``, with a JSON
schema ``response_format``). Extraction runs after the reply, so a turn that
extracts takes two scripted replies: the answer, then the JSON operations.
Messages without first-person words ("Any dinner ideas?") never extract.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2ehelpers import (
    Account,
    PageLog,
    Upstream,
    api_signup,
    chat,
    content,
    messages,
    new_context,
    shot,
    sign_in,
    start_parley,
    watch,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

CHAT_MODEL = "scripted-model"
MEMORY_MODEL = "scripted-mini"


@pytest.fixture(scope="module")
def memory_server(upstream: Upstream, e2e_tmp: Path) -> Iterator[str]:
    env = {
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_API_KEY": "sk-e2e-dummy",
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        "PARLEY_DEFAULT_MODEL": f"openai/{CHAT_MODEL}",
        "PARLEY_MEMORY_AUTO": "true",
        "PARLEY_MEMORY_MODEL": f"openai/{MEMORY_MODEL}",
    }
    proc, base = start_parley("parley-memory", e2e_tmp / "memory-data", env, e2e_tmp)
    try:
        api_signup(base, "Memory Admin")  # the first account is the admin; tests use others
        yield base
    finally:
        proc.stop()


@pytest.fixture
def account(memory_server: str, upstream: Upstream) -> Account:
    upstream.reset()
    return api_signup(memory_server, "Vera")


@pytest.fixture
def mpage(browser: Browser, memory_server: str, account: Account) -> Iterator[Page]:
    ctx = new_context(browser, memory_server)
    sign_in(ctx, account, memory_server)
    log = PageLog()
    page = ctx.new_page()
    watch(page, log)
    try:
        yield page
        problems = log.problems()
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)
    finally:
        ctx.close()


# ---------------------------------------------------------------- helpers


def system_text(request: dict[str, Any]) -> str:
    """Everything the model got as system instructions in one recorded request."""
    parts = []
    for message in request["json"].get("messages", []):
        if message.get("role") == "system":
            body = message.get("content")
            if isinstance(body, list):
                body = " ".join(str(b.get("text", "")) for b in body if isinstance(b, dict))
            parts.append(str(body or ""))
    return "\n".join(parts)


def turns(upstream: Upstream, model: str = CHAT_MODEL) -> list[dict[str, Any]]:
    return [r for r in upstream.chat_requests() if r["json"].get("model") == model]


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (background work is
    asynchronous: extraction after the reply, deletion of a left temporary chat)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)


def memories(account: Account, base: str, status: str = "active") -> list[dict[str, Any]]:
    with account.api(base) as client:
        r = client.get("/api/memories", params={"status": status})
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def extraction_reply(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"text": json.dumps({"memories": list(ops)})}


def conversation_id(page: Page) -> str:
    match = re.search(r"/c/([A-Za-z0-9_-]+)", page.url)
    assert match, page.url
    return match.group(1)


# ---------------------------------------------------------------- tests


def test_a_fact_told_in_one_chat_is_used_in_a_new_one_until_deleted(
    mpage: Page, upstream: Upstream, account: Account, memory_server: str
) -> None:
    page = mpage
    page.goto("/")
    upstream.script({"text": "Noted: you are vegetarian."})
    told = chat(page, "Remember that I'm vegetarian")
    source_conversation = conversation_id(page)
    source_message = messages(page, "user").last.get_attribute("data-message-id")
    assert source_message
    # Saved before the answer (no model call needed), and the model was told so.
    [saving] = turns(upstream)
    assert "<memory_update>" in system_text(saving)
    assert "I'm vegetarian." in system_text(saving)
    expect(told.get_by_test_id("memory-updated")).to_contain_text("I'm vegetarian.")
    expect(told.get_by_test_id("memories-used")).to_have_count(0)  # saved, not used

    # A new chat: the memory reaches the model in its block, and the answer says so.
    page.get_by_test_id("new-chat").click()
    upstream.script({"text": "A chickpea curry would be perfect."})
    answer = chat(page, "Any dinner ideas for tonight?")
    assert conversation_id(page) != source_conversation
    using = turns(upstream)[-1]
    block = re.search(r"<saved_memories>\n(.*?)\n</saved_memories>", system_text(using), re.S)
    assert block and "- I'm vegetarian." in block.group(1)
    assert not any(
        m.get("role") == "user" and "vegetarian" in str(m.get("content"))
        for m in using["json"]["messages"]
    )  # it came from memory, not from this chat
    used = answer.get_by_test_id("memories-used")
    expect(used).to_contain_text("Memories used (1)")
    used.locator("summary").click()
    expect(used.get_by_test_id("memory-used")).to_have_text(["I'm vegetarian."])

    # The memory page lists it with a link to the message it came from.
    used.get_by_role("link", name="Manage memories").click()
    expect(page).to_have_url(re.compile(r"/settings/memory$"))
    item = page.get_by_test_id("memory-item").filter(has_text="I'm vegetarian.")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("you asked")
    link = item.get_by_test_id("memory-source-link")
    expect(link).to_have_attribute("href", f"/c/{source_conversation}#m-{source_message}")
    link.click()
    expect(page).to_have_url(re.compile(rf"/c/{source_conversation}#m-{source_message}$"))
    origin = page.locator(f"[data-testid=message][data-message-id='{source_message}']")
    expect(content(origin)).to_have_text("Remember that I'm vegetarian")
    expect(origin).to_have_attribute("data-linked", "true")
    expect(origin).to_be_in_viewport()

    # Deleting it on the memory page stops its use.
    page.goto("/settings/memory")
    item.get_by_test_id("memory-delete").click()
    expect(page.get_by_test_id("memory-empty")).to_be_visible()
    assert memories(account, memory_server) == []
    page.get_by_test_id("new-chat").click()
    upstream.script({"text": "How about a mushroom risotto?"})
    after = chat(page, "Any dinner ideas for tonight?")
    last = system_text(turns(upstream)[-1])
    assert "<saved_memories>" not in last and "vegetarian" not in last
    expect(after.get_by_test_id("memories-used")).to_have_count(0)
    assert turns(upstream, MEMORY_MODEL) == []  # nothing here needed extraction


def test_a_temporary_chat_leaves_no_trace(
    mpage: Page, upstream: Upstream, account: Account, memory_server: str
) -> None:
    page = mpage
    with account.api(memory_server) as client:
        assert client.post("/api/memories", json={"text": "I'm vegetarian"}).status_code == 201
    page.goto("/")
    page.get_by_test_id("temporary-toggle").click()
    expect(page.get_by_test_id("temporary-hint")).to_be_visible()
    upstream.script({"text": "Steak it is."}, {"text": "Tom sounds lovely."})
    chat(page, "Remember that I love steak")
    temporary = conversation_id(page)
    chat(page, "I have a cat named Tom and I work as a pilot")
    # Memory was neither read nor written: no block, no saving, no extraction.
    for request in turns(upstream):
        text = system_text(request)
        assert "<saved_memories>" not in text and "<memory_update>" not in text
        assert "vegetarian" not in text
    assert [m["text"] for m in memories(account, memory_server)] == ["I'm vegetarian."]
    # Not in the sidebar, the list or search.
    expect(
        page.locator(f"[data-testid=sidebar-item][data-conversation-id='{temporary}']")
    ).to_have_count(0)
    with account.api(memory_server) as client:
        listed = client.get("/api/conversations").json()["items"]
        assert temporary not in [c["id"] for c in listed]
        assert client.get("/api/search", params={"q": "steak"}).json()["items"] == []

    # Leaving it deletes it; a later ordinary turn shows no extraction ever ran.
    page.get_by_test_id("new-chat").click()

    def gone() -> bool:
        with account.api(memory_server) as client:
            return client.get(f"/api/conversations/{temporary}").status_code == 404

    eventually(gone, "the temporary chat to be deleted after leaving it")
    upstream.script({"text": "Paris."})
    chat(page, "What is the capital of France?")
    assert turns(upstream, MEMORY_MODEL) == []
    assert [m["text"] for m in memories(account, memory_server)] == ["I'm vegetarian."]
    expect(page.get_by_test_id("sidebar-item")).to_have_count(1)


def test_automatic_extraction_uses_the_memory_model_and_links_back(
    mpage: Page, upstream: Upstream, account: Account, memory_server: str
) -> None:
    page = mpage
    page.goto("/")
    upstream.script(
        {"text": "Exciting! Label everything and keep mornings calm."},
        {
            **extraction_reply(
                {
                    "action": "add",
                    "fact": "My daughter Lea starts school in September",
                    "memory": 0,
                },
                {"action": "add", "fact": "I live in Tokyo", "memory": 0},  # not said: dropped
            ),
            "delay": 1.5,  # the memory model thinks a while after the answer is done
        },
    )
    answer = chat(page, "My daughter Lea starts school in September, any tips?")
    # The answer is done and the composer free while extraction still runs...
    expect(page.get_by_test_id("composer")).to_be_editable()
    page.get_by_test_id("composer").fill("Thanks!")
    expect(page.get_by_test_id("send")).to_be_enabled()
    # ...then the learned memory's chip shows under it, live: no reload.
    chip = answer.get_by_test_id("memory-updated")
    expect(chip).to_be_visible()
    expect(chip.get_by_test_id("memory-updated-item")).to_have_text(
        ["My daughter Lea starts school in September. (saved)"]
    )
    expect(answer.get_by_test_id("memories-used")).to_have_count(0)
    expect(page.get_by_test_id("composer")).to_have_value("Thanks!")  # the draft is kept
    shot(page, "memory-chip-learned-live")
    source_conversation = conversation_id(page)
    [extraction] = eventually(lambda: turns(upstream, MEMORY_MODEL), "the extraction request")
    assert extraction["json"]["response_format"]["type"] == "json_schema"
    said = json.dumps(extraction["json"]["messages"])
    assert "Lea starts school in September" in said
    saved = eventually(lambda: memories(account, memory_server), "the extracted memory")
    assert [(m["text"], m["source"]) for m in saved] == [
        ("My daughter Lea starts school in September.", "auto")
    ]
    page.goto("/settings/memory")
    item = page.get_by_test_id("memory-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("learned")
    href = item.get_by_test_id("memory-source-link").get_attribute("href") or ""
    assert href.startswith(f"/c/{source_conversation}#m-")


def test_review_mode_shows_a_proposed_update_and_approving_replaces_the_memory(
    mpage: Page, upstream: Upstream, account: Account, memory_server: str
) -> None:
    page = mpage
    with account.api(memory_server) as client:
        nurse = client.post("/api/memories", json={"text": "I work as a nurse"}).json()
    page.goto("/settings/memory")
    page.get_by_test_id("memory-review").check()
    expect(page.get_by_test_id("memory-review")).to_be_checked()

    def review_saved() -> bool:
        with account.api(memory_server) as client:
            user = client.get("/api/auth/me").json()["user"]
            return bool(user["preferences"].get("memory_review"))

    eventually(review_saved, "review mode to be saved")
    page.get_by_test_id("new-chat").click()
    expect(page).to_have_url(re.compile(r"/$"))
    upstream.script(
        {"text": "Congratulations on the new job!"},
        extraction_reply({"action": "update", "fact": "I now work as a teacher", "memory": 1}),
    )
    proposed = chat(page, "I now work as a teacher at a primary school")
    expect(proposed.get_by_test_id("memory-updated-item")).to_have_text(
        ["I now work as a teacher. (waiting for your review)"]
    )
    eventually(lambda: memories(account, memory_server, "pending"), "the proposed update")
    page.goto("/settings/memory")
    waiting = page.get_by_test_id("memory-pending")
    expect(waiting).to_contain_text("I now work as a teacher.")
    expect(waiting.get_by_test_id("memory-replaces")).to_have_text("replaces: I work as a nurse.")
    # Until approved, the approved memory stays as it was.
    expect(page.get_by_test_id("memory-item")).to_have_text([re.compile("I work as a nurse")])
    waiting.get_by_test_id("memory-approve").click()
    expect(page.get_by_test_id("memory-pending")).to_have_count(0)
    expect(page.get_by_test_id("memory-item")).to_have_count(1)
    expect(page.get_by_test_id("memory-item")).to_contain_text("I now work as a teacher.")
    [only] = memories(account, memory_server)
    assert (only["id"], only["text"]) == (nurse["id"], "I now work as a teacher.")
