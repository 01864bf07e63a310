"""Knowledge in the chat, in the browser: a collection made on the Knowledge page is
added to a new chat from the paper clip ("Add from knowledge"), shows as a chip,
is cited in the answer and is still there after a reload; a library file is added
to another chat by typing ``#`` in the message (keyboard only), then removed.

The scripted upstream answers with a fixed citation number; the test checks that
the number points at the right file and that the prompt really carried its text.
"""

from __future__ import annotations

import re

import pytest
from e2ehelpers import Upstream, chat, content, shot, ui_signup, unique_email
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

INGEST_TIMEOUT_MS = 120_000  # the first file may also load the embedding model
KEEPERS = (
    b"# Keepers' log\n\nAt Skerryvore the keeper sounds the fog horn at 04:10 "
    b"and records it in the green ledger.\n"
)
TIDES = b"# Tide notes\n\nSpring tides at Oban reach 4.1 metres at the north pier.\n"


def _conversation_id(page: Page) -> str:
    found = re.search(r"/c/([0-9a-f]+)", page.url)
    assert found, page.url
    return found.group(1)


def _cited(page: Page) -> dict[int, str]:
    data = page.request.get(f"/api/conversations/{_conversation_id(page)}").json()
    return {
        s["ref"]: s["filename"]
        for s in data["messages"][-1]["sources"] or []
        if s.get("kind") == "file" and s.get("ref")
    }


def _upload(page: Page, name: str, data: bytes) -> None:
    page.get_by_test_id("knowledge-upload").set_input_files(
        [{"name": name, "mimeType": "text/markdown", "buffer": data}]
    )
    ready = page.locator("[data-testid=knowledge-file][data-status=ready]", has_text=name)
    expect(ready).to_be_visible(timeout=INGEST_TIMEOUT_MS)


def test_add_a_collection_and_a_library_file_to_chats(
    page: Page, upstream: Upstream, admin: object
) -> None:
    ui_signup(page, "Cora Keeper", unique_email("collections"))

    # --- Knowledge: a collection with a document, and a file in the library
    page.get_by_test_id("nav-settings").click()
    page.get_by_role("link", name="Knowledge").click()
    expect(page.get_by_test_id("knowledge-page")).to_be_visible()
    page.fill("#collection-name", "Harbour manuals")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("button", name="Harbour manuals (0)")).to_be_visible()
    _upload(page, "keepers.md", KEEPERS)
    page.get_by_role("button", name="All files").click()
    _upload(page, "tides.md", TIDES)
    shot(page, "collections-knowledge-page")

    # --- a new chat: paper clip → Add from knowledge → the collection
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("attach").click()
    menu = page.get_by_test_id("attach-menu")
    expect(menu).to_contain_text("Upload a file")
    shot(page, "collections-paperclip-menu")
    page.get_by_test_id("attach-knowledge").click()
    picker = page.get_by_test_id("knowledge-picker")
    expect(picker.get_by_test_id("knowledge-option")).to_have_count(3)  # 1 collection, 2 files
    page.get_by_test_id("knowledge-search").fill("harb")
    options = picker.get_by_test_id("knowledge-option")
    expect(options).to_have_count(1)
    expect(options).to_contain_text("Collection · 1 file")
    shot(page, "collections-picker")
    options.click()
    expect(picker).to_be_hidden()
    chip = page.get_by_test_id("knowledge-chip")
    expect(chip).to_have_count(1)
    expect(chip).to_contain_text("Harbour manuals")

    upstream.script({"text": "The fog horn sounds at 04:10 [1]."})
    reply = chat(page, "When does the Skerryvore keeper sound the fog horn?")
    expect(content(reply)).to_contain_text("04:10")
    assert _cited(page) == {1: "keepers.md"}
    prompt = str(upstream.chat_requests()[-1]["json"]["messages"])
    assert "green ledger" in prompt and "keepers.md" in prompt
    cite = reply.locator("button.cite[data-ref='1']")
    expect(cite).to_be_visible()
    expect(reply.get_by_test_id("file-source").filter(has_text="[1]")).to_contain_text("keepers.md")
    shot(page, "collections-cited-answer")

    # --- the chip belongs to the conversation: still there after a reload
    page.reload()
    expect(page.get_by_test_id("knowledge-chip")).to_have_count(1)
    expect(page.get_by_test_id("knowledge-chip")).to_contain_text("Harbour manuals")
    first_chat = page.url

    # --- another chat: `#` searches, arrows and Enter pick, the #query goes away
    page.get_by_test_id("new-chat").click()
    expect(page.get_by_test_id("knowledge-chip")).to_have_count(0)
    composer = page.get_by_test_id("composer")
    composer.press_sequentially("How high are spring tides? #zz")
    search = page.get_by_test_id("hash-search")
    expect(search.get_by_test_id("knowledge-empty")).to_contain_text("Nothing named")
    composer.press("Escape")
    expect(search).to_be_hidden()
    for _ in range(3):
        composer.press("Backspace")
    composer.press_sequentially("#t")
    expect(search.get_by_test_id("knowledge-option")).to_have_count(1)
    composer.press_sequentially("id")
    option = search.get_by_test_id("knowledge-option")
    expect(option).to_contain_text("tides.md")
    shot(page, "collections-hash-search")
    composer.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    composer.press("Enter")
    expect(search).to_be_hidden()
    expect(composer).to_have_value("How high are spring tides?")
    chip = page.get_by_test_id("knowledge-chip")
    expect(chip).to_have_count(1)
    expect(chip).to_contain_text("tides.md")
    expect(page.locator("[data-testid=message]")).to_have_count(0)  # Enter picked, sent nothing
    # the new chat's pick survives a look at Settings and coming back
    page.get_by_test_id("nav-settings").click()
    expect(page.get_by_role("link", name="Knowledge")).to_be_visible()
    page.go_back()
    expect(page.get_by_test_id("knowledge-chip")).to_contain_text("tides.md")

    upstream.script({"text": "They reach 4.1 metres [1]."})
    reply = chat(page, "How high are spring tides?")
    expect(content(reply)).to_contain_text("4.1 metres")
    assert _cited(page) == {1: "tides.md"}
    conversation = _conversation_id(page)
    used = page.request.get(f"/api/conversations/{conversation}/knowledge").json()
    assert [f["filename"] for f in used["library_files"]] == ["tides.md"]
    assert used["files"] == []  # picked from the library, not uploaded into the chat

    # --- remove the chip: gone after a reload, the file stays in the library
    page.get_by_role("button", name="Remove tides.md from this chat").click()
    expect(page.get_by_test_id("knowledge-chip")).to_have_count(0)
    page.reload()
    expect(page.locator("[data-testid=message]")).to_have_count(2)
    expect(page.get_by_test_id("knowledge-chip")).to_have_count(0)
    used = page.request.get(f"/api/conversations/{conversation}/knowledge").json()
    assert used["library_files"] == [] and used["collections"] == []
    shot(page, "collections-chip-removed")
    library = page.request.get("/api/files").json()["items"]
    assert sorted(f["filename"] for f in library) == ["keepers.md", "tides.md"]
    # the first chat keeps its collection
    page.goto(first_chat)
    expect(page.get_by_test_id("knowledge-chip")).to_contain_text("Harbour manuals")

    # --- on a phone-sized screen the chips and the `#` list fit
    page.set_viewport_size({"width": 375, "height": 740})
    composer = page.get_by_test_id("composer")
    composer.press_sequentially("#")
    expect(page.get_by_test_id("hash-search").get_by_test_id("knowledge-option")).to_have_count(2)
    shot(page, "collections-hash-search-375")
    composer.press("Escape")
    expect(page.get_by_test_id("hash-search")).to_be_hidden()
