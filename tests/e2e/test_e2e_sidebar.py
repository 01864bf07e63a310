"""The sidebar: search with highlighted matches, rename and delete a conversation."""

from __future__ import annotations

import re

import pytest
from e2ehelpers import Account, api_chat, content, messages, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_search_highlights_matches(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        target = api_chat(api, "Tell me about the xylophone tuning of marimbas")
        api_chat(api, "Unrelated question about gardening")
    page.goto("/")
    expect(page.get_by_test_id("sidebar-item")).to_have_count(2)

    search = page.get_by_test_id("search-input")
    search.fill("xylophone")
    hits = page.get_by_test_id("search-hit")
    expect(hits).to_have_count(1)
    mark = hits.first.locator("mark")
    expect(mark.first).to_have_text(re.compile(r"^xylophone$", re.I))
    expect(hits.first).to_contain_text("marimbas")
    shot(page, "sidebar-search")

    hits.first.click()
    expect(page).to_have_url(re.compile(rf"/c/{target}$"))
    expect(content(messages(page, "user").first)).to_contain_text("xylophone")

    search.fill("zzzqqq-nothing-matches")
    expect(page.get_by_test_id("search-results")).to_contain_text("No matches")
    expect(hits).to_have_count(0)
    # Clearing the search brings the conversation list back.
    search.fill("")
    expect(page.get_by_test_id("sidebar-item")).to_have_count(2)


def test_search_is_scoped_to_the_user(page: Page, user: Account, server: str) -> None:
    other = Account(user.email, user.password, user.name)
    from e2ehelpers import api_signup

    stranger = api_signup(server, name="Stranger")
    with stranger.api(server) as api:
        api_chat(api, "The stranger talks about quokkas privately")
    with other.api(server) as api:
        api_chat(api, "I like kangaroos")
    page.goto("/")
    page.get_by_test_id("search-input").fill("quokkas")
    expect(page.get_by_test_id("search-results")).to_contain_text("No matches")


def test_rename_and_delete_conversation(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        keep = api_chat(api, "Conversation to keep")
        doomed = api_chat(api, "Conversation to rename then delete")
    page.goto(f"/c/{doomed}")
    item = page.locator(f"[data-testid=sidebar-item][data-conversation-id='{doomed}']")
    expect(item).to_contain_text("Conversation to rename then delete")

    item.get_by_test_id("sidebar-item-menu").click()
    page.get_by_test_id("menu-rename").click()
    rename = item.get_by_test_id("rename-input")
    expect(rename).to_be_focused()
    rename.fill("Renamed by the e2e test")
    rename.press("Enter")
    expect(item).to_contain_text("Renamed by the e2e test")
    expect(page.get_by_test_id("page-title")).to_have_text("Renamed by the e2e test")
    page.reload()
    expect(item).to_contain_text("Renamed by the e2e test")

    # Escape cancels a rename.
    item.get_by_test_id("sidebar-item-menu").click()
    page.get_by_test_id("menu-rename").click()
    item.get_by_test_id("rename-input").fill("Not this title")
    item.get_by_test_id("rename-input").press("Escape")
    expect(item).to_contain_text("Renamed by the e2e test")

    item.get_by_test_id("sidebar-item-menu").click()
    page.get_by_test_id("menu-delete").click()
    dialog = page.get_by_test_id("confirm-dialog").filter(visible=True)
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("confirm-ok").click()
    expect(item).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("sidebar-item")).to_have_count(1)
    page.reload()
    expect(page.get_by_test_id("sidebar-item")).to_have_count(1)
    expect(page.locator(f"[data-conversation-id='{keep}']")).to_be_visible()
    with user.api(server) as api:
        assert api.get(f"/api/conversations/{doomed}").status_code == 404
    page.goto(f"/c/{doomed}")
    expect(page.get_by_text("does not exist or was deleted")).to_be_visible()
