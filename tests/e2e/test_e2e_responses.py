"""The API journey: a newcomer makes a key in Settings, follows the "Try it"
hint with the official SDK (Responses API), finds the chat in the sidebar,
continues it in the browser, and continues it again over the API."""

from __future__ import annotations

import openai
import pytest
from e2ehelpers import Account, Upstream, chat, content, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_a_key_the_sdk_and_the_same_chat_in_the_browser(
    page: Page, user: Account, server: str, upstream: Upstream
) -> None:
    page.goto("/settings/keys")
    page.get_by_test_id("key-name").fill("my script")
    page.get_by_test_id("create-key").click()
    expect(page.get_by_test_id("created-key")).to_be_visible()
    key = page.locator("#new-key").input_value()
    hint = page.get_by_test_id("try-it")
    expect(hint).to_contain_text(f"{server}/v1/responses")
    expect(hint).to_contain_text(f"Bearer {key}")
    shot(page, "api-key-try-it")

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0)
    upstream.script({"text": "Tuesday works for the review."})
    first = client.responses.create(
        model="openai/scripted-model", input="Which day suits the design review?"
    )
    assert first.output_text == "Tuesday works for the review."

    # the chat is the user's like any other: in the sidebar after a reload
    page.goto("/")
    entry = page.get_by_test_id("sidebar-item").filter(has_text="Which day suits the design")
    expect(entry).to_be_visible()
    entry.click()
    expect(content(page.locator("[data-testid=message][data-role=assistant]"))).to_contain_text(
        "Tuesday works for the review."
    )
    upstream.script({"text": "Then book room 4."})
    chat(page, "Book a room too.")
    shot(page, "api-chat-continued-in-browser")
    conversation = page.url.rsplit("/c/", 1)[1].split("#")[0]

    # and over the API again, by the id in the address: it sees the browser's turn
    upstream.reset()
    upstream.script({"text": "Room 4 on Tuesday, noted."})
    again = client.responses.create(
        model="openai/scripted-model", input="Summarize the plan.", conversation=conversation
    )
    assert again.output_text == "Room 4 on Tuesday, noted."
    sent = upstream.chat_requests()[-1]["json"]["messages"]
    said = [str(m.get("content")) for m in sent if m.get("role") in ("user", "assistant")]
    assert said[-3:] == ["Book a room too.", "Then book room 4.", "Summarize the plan."], said
    items = client.conversations.items.list(conversation, order="asc")
    assert [i.role for i in items.data] == ["user", "assistant"] * 3
    page.reload()
    expect(page.locator("[data-testid=message][data-role=assistant]").last).to_contain_text(
        "Room 4 on Tuesday, noted."
    )
