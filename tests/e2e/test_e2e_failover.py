"""Failover as an admin and a user see it: two providers added in Admin, the admin
gives the first model a fallback on Admin → Providers → Failover, the first model's
server fails before answering, and the answer comes from the fallback with the
notice under it; the breaker table shows the failing provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2ehelpers import chat, content, csrf, shot
from playwright.sync_api import Page, expect

from parley.providers.testing import ScriptedUpstream, UpstreamReply

pytestmark = pytest.mark.e2e

MODEL = "fo-model"


@pytest.fixture
def pair() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream]]:
    with (
        ScriptedUpstream(models=[MODEL], default_text="Primary answer.") as first,
        ScriptedUpstream(models=[MODEL], default_text="The fallback answered this.") as second,
    ):
        yield first, second


def test_admin_sets_a_fallback_and_a_failing_chat_shows_the_notice(
    admin_page: Page, server: str, pair: tuple[ScriptedUpstream, ScriptedUpstream]
) -> None:
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    headers = {"X-CSRF-Token": csrf(page)}
    first, second = pair
    for name, up in (("fo-a", first), ("fo-b", second)):
        added = page.request.post(
            "/api/admin/providers",
            data={"name": name, "kind": "openai", "base_url": up.base_url},
            headers=headers,
        )
        assert added.status == 201, added.text()
    try:
        _journey(page, first, second)
    finally:
        for name in ("fo-a", "fo-b"):
            page.request.delete(f"/api/admin/providers/{name}", headers=headers)
        page.request.post(
            "/api/admin/failover/breakers/reset", data={"provider": "fo-a"}, headers=headers
        )


def _journey(page: Page, first: ScriptedUpstream, second: ScriptedUpstream) -> None:
    # --- the admin gives fo-a's model a fallback on fo-b
    page.goto("/admin/providers")
    row = page.locator(f"[data-testid=fallback-row][data-model='fo-a/{MODEL}']")
    expect(row).to_contain_text("None")
    row.get_by_test_id("fallback-edit").click()
    row.get_by_test_id("fallback-add").select_option(f"fo-b/{MODEL}")
    expect(row).to_contain_text(f"fo-b/{MODEL}")
    row.get_by_test_id("fallback-save").click()
    expect(row).to_contain_text(f"fo-b/{MODEL}")
    expect(row).to_contain_text("Set here")
    expect(page.get_by_test_id("breakers-none")).to_be_visible()
    page.get_by_test_id("failover").scroll_into_view_if_needed()
    shot(page, "failover-admin-fallback")

    # --- fo-a is rate limited, then fails: the fallback answers, and says so
    first.enqueue(
        UpstreamReply(fail="429", retry_after="0"),
        UpstreamReply(fail="500"),
        UpstreamReply(fail="500"),
    )
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("model-picker").select_option(f"fo-a/{MODEL}")
    reply = chat(page, "Who answers this?")
    expect(content(reply)).to_have_text("The fallback answered this.")
    notice = reply.get_by_test_id("failover-notice")
    expect(notice).to_have_text(
        f"Answered by fo-b/{MODEL} after fo-a/{MODEL} (rate limited, unavailable) failed."
    )
    expect(reply.get_by_test_id("message-error")).to_have_count(0)
    shot(page, "failover-chat-notice")
    assert len([r for r in second.requests if r.path.endswith("/chat/completions")]) == 1

    # the notice stays after a reload (stored on the message)
    page.reload()
    expect(page.get_by_test_id("failover-notice").last).to_contain_text(f"fo-b/{MODEL}")

    # --- the admin sees fo-a's failures on its breaker
    page.goto("/admin/providers")
    breakers = page.get_by_test_id("breakers-table")
    expect(breakers.get_by_test_id("breaker-row").filter(has_text="fo-a")).to_contain_text("Closed")
    page.get_by_test_id("breakers-table").scroll_into_view_if_needed()
    shot(page, "failover-admin-breakers")
