"""Sidebar items of issue 3 the other sidebar tests leave out: grouping by recency,
loading more as you scroll, pin and archive (with their undo: unpin, unarchive)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from e2ehelpers import Account
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e


def group(page: Page, name: str) -> Locator:
    """The sidebar section under the heading ``name``."""
    return page.get_by_test_id("conversation-list").locator(
        "section", has=page.get_by_role("heading", name=name, exact=True)
    )


def headings(page: Page) -> list[str]:
    return [
        t.strip()
        for t in page.get_by_test_id("conversation-list")
        .locator("section > h2")
        .all_text_contents()
    ]


def test_conversations_are_grouped_by_recency(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        r = api.post("/api/conversations", json={"title": "Grouped by day"})
        assert r.status_code == 201, r.text
        updated = datetime.fromisoformat(r.json()["updated_at"].replace("Z", "+00:00"))
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    page.goto("/")
    item = page.get_by_test_id("sidebar-item").filter(has_text="Grouped by day")
    expect(group(page, "Today").get_by_test_id("sidebar-item")).to_have_count(1)
    assert headings(page) == ["Today"]

    # The same conversation seen from later days (the browser's clock moved on).
    for days, name in ((1, "Yesterday"), (4, "Previous 7 days"), (40, "Older")):
        page.clock.set_fixed_time(updated + timedelta(days=days, minutes=1))
        page.reload()
        expect(group(page, name).get_by_test_id("sidebar-item")).to_have_count(1)
        expect(item).to_have_count(1)
        assert headings(page) == [name], (days, headings(page))


def test_sidebar_loads_more_when_scrolled(page: Page, user: Account, server: str) -> None:
    total = 57  # the app asks for 50 per page
    with user.api(server) as api:
        for i in range(total):
            r = api.post("/api/conversations", json={"title": f"Bulk chat {i:02d}"})
            assert r.status_code == 201, r.text
    cursors: list[str] = []
    page.on(
        "request",
        lambda req: (
            cursors.append(req.url)
            if "/api/conversations?" in req.url and "cursor=" in req.url
            else None
        ),
    )
    page.goto("/")
    items = page.get_by_test_id("sidebar-item")
    expect(items).to_have_count(50)
    expect(items.first).to_contain_text("Bulk chat 56")  # most recent first
    assert not cursors, "the second page was fetched before scrolling"

    # Scrolling to the end of the list fetches the next page.
    items.last.scroll_into_view_if_needed()
    expect(items).to_have_count(total)
    expect(items.last).to_contain_text("Bulk chat 00")
    assert cursors, "no request with a cursor"
    titles = [t.strip() for t in items.locator(".title").all_text_contents()]
    assert len(set(titles)) == total, "duplicates or gaps after loading more"


def test_pin_and_unpin(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        older = api.post("/api/conversations", json={"title": "Older but important"}).json()["id"]
        api.post("/api/conversations", json={"title": "Newer chatter"})
    page.goto("/")
    item = page.locator(f"[data-testid=sidebar-item][data-conversation-id='{older}']")
    expect(page.get_by_test_id("sidebar-item").first).to_contain_text("Newer chatter")

    item.get_by_test_id("sidebar-item-menu").click()
    expect(page.get_by_test_id("menu-pin")).to_have_text("Pin")
    page.get_by_test_id("menu-pin").click()
    pinned = group(page, "Pinned")
    expect(pinned.get_by_test_id("sidebar-item")).to_have_count(1)
    expect(pinned).to_contain_text("Older but important")
    assert headings(page)[0] == "Pinned"
    # Stored on the server: still pinned after a reload.
    page.reload()
    expect(group(page, "Pinned")).to_contain_text("Older but important")
    with user.api(server) as api:
        assert api.get(f"/api/conversations/{older}").json()["conversation"]["pinned"] is True

    item.get_by_test_id("sidebar-item-menu").click()
    expect(page.get_by_test_id("menu-pin")).to_have_text("Unpin")
    page.get_by_test_id("menu-pin").click()
    expect(group(page, "Pinned")).to_have_count(0)
    expect(group(page, "Today").get_by_test_id("sidebar-item")).to_have_count(2)
    page.reload()
    expect(group(page, "Pinned")).to_have_count(0)


def test_archive_then_restore(page: Page, user: Account, server: str) -> None:
    with user.api(server) as api:
        keep = api.post("/api/conversations", json={"title": "Stays in the list"}).json()["id"]
        shelf = api.post("/api/conversations", json={"title": "Goes to the archive"}).json()["id"]
    page.goto(f"/c/{shelf}")
    item = page.locator(f"[data-testid=sidebar-item][data-conversation-id='{shelf}']")
    expect(item).to_be_visible()

    item.get_by_test_id("sidebar-item-menu").click()
    page.get_by_test_id("menu-archive").click()
    expect(item).to_have_count(0)
    expect(page.get_by_text("Conversation archived.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/$"))  # it was open: back to a new chat
    expect(page.get_by_test_id("sidebar-item")).to_have_count(1)
    page.reload()
    expect(page.locator(f"[data-conversation-id='{keep}']")).to_be_visible()
    expect(item).to_have_count(0)
    with user.api(server) as api:
        assert api.get(f"/api/conversations/{shelf}").json()["conversation"]["archived"] is True

    # The archive view lists it; Unarchive puts it back.
    toggle = page.get_by_test_id("toggle-archived")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("sidebar-item")).to_have_count(1)
    expect(item).to_be_visible()
    item.get_by_test_id("sidebar-item-menu").click()
    expect(page.get_by_test_id("menu-archive")).to_have_text("Unarchive")
    page.get_by_test_id("menu-archive").click()
    expect(page.get_by_text("Conversation restored.")).to_be_visible()
    expect(item).to_have_count(0)
    toggle.click()
    expect(page.get_by_test_id("sidebar-item")).to_have_count(2)
    expect(item).to_be_visible()
    with user.api(server) as api:
        assert api.get(f"/api/conversations/{shelf}").json()["conversation"]["archived"] is False
