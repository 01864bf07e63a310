"""Auto as an admin and a user see it: the admin writes two routing rules on Admin →
Providers → Routing (an image goes to a vision model, a light question to a light
one), the user picks Auto, asks a short question and then sends a picture, sees the
routed model and the reason under each answer, overrides Auto with a model of their
own, and after a reload everything is still there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2ehelpers import chat, content, csrf, shot
from playwright.sync_api import Page, expect

from parley.providers.testing import ScriptedUpstream

pytestmark = pytest.mark.e2e

EYES = "gpt-4o-mini"  # the known-model table: sees images
LIGHT = "gpt-3.5-turbo"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def pair() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream]]:
    with (
        ScriptedUpstream(models=[EYES], default_text="A single dot.") as eyes,
        ScriptedUpstream(models=[LIGHT], default_text="Lima.") as light,
    ):
        yield eyes, light


def test_auto_routes_each_question_and_the_user_overrides_it(
    admin_page: Page, server: str, pair: tuple[ScriptedUpstream, ScriptedUpstream]
) -> None:
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    headers = {"X-CSRF-Token": csrf(page)}
    eyes, light = pair
    for name, up in (("rt-eyes", eyes), ("rt-light", light)):
        added = page.request.post(
            "/api/admin/providers",
            data={"name": name, "kind": "openai", "base_url": up.base_url},
            headers=headers,
        )
        assert added.status == 201, added.text()
    try:
        _journey(page, eyes, light)
    finally:
        page.request.put("/api/admin/routing", data={"rules": []}, headers=headers)
        for name in ("rt-eyes", "rt-light"):
            page.request.delete(f"/api/admin/providers/{name}", headers=headers)


def _journey(page: Page, eyes: ScriptedUpstream, light: ScriptedUpstream) -> None:
    # --- the admin writes the rules
    page.goto("/admin/providers")
    card = page.get_by_test_id("routing")
    policy = card.locator("[data-testid=routing-policy][data-scope=instance]")
    policy.get_by_test_id("routing-edit").click()
    for kind, model in (("vision", f"rt-eyes/{EYES}"), ("light", f"rt-light/{LIGHT}")):
        policy.get_by_test_id("routing-kind").select_option(kind)
        policy.get_by_test_id("routing-model").select_option(model)
        policy.get_by_test_id("routing-add").click()
    policy.get_by_test_id("routing-default").select_option(f"rt-light/{LIGHT}")
    expect(policy.get_by_test_id("routing-rule")).to_have_count(2)
    card.scroll_into_view_if_needed()
    shot(page, "routing-admin-rules")
    policy.get_by_test_id("routing-save").click()
    expect(policy).to_contain_text(f"Images attached → rt-eyes/{EYES}")
    expect(policy).to_contain_text(f"A light question → rt-light/{LIGHT}")

    # --- the user picks Auto: a short question goes to the light model
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("model-picker").select_option("auto")
    first = chat(page, "What is the capital of Peru?")
    expect(content(first)).to_have_text("Lima.")
    expect(first.get_by_test_id("route-notice")).to_have_text(
        f"Auto → rt-light/{LIGHT}: short question"
    )

    # --- a picture goes to the vision model, which gets the image
    page.get_by_test_id("attach").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-upload").click()
    chooser.value.set_files([{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("[data-testid=attachment][data-status=ready]")).to_have_count(1)
    second = chat(page, "What is in this picture?")
    expect(content(second)).to_have_text("A single dot.")
    expect(second.get_by_test_id("route-notice")).to_have_text(
        f"Auto → rt-eyes/{EYES}: image attached"
    )
    sent = [r for r in eyes.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == 1
    parts = [
        p for m in sent[0].json["messages"] if isinstance(m["content"], list) for p in m["content"]
    ]
    assert any(p.get("type") == "image_url" for p in parts)
    shot(page, "routing-chat-notices")

    # --- the user overrides Auto for this chat
    page.get_by_test_id("model-picker").select_option(f"rt-light/{LIGHT}")
    third = chat(page, "And the capital of Chile?")
    expect(content(third)).to_have_text("Lima.")
    expect(third.get_by_test_id("route-notice")).to_have_count(0)

    # --- after a reload: both notices, and the chat keeps the user's model
    page.reload()
    notices = page.get_by_test_id("route-notice")
    expect(notices).to_have_count(2)
    expect(notices.nth(0)).to_contain_text("short question")
    expect(notices.nth(1)).to_contain_text("image attached")
    expect(page.get_by_test_id("model-picker")).to_have_value(f"rt-light/{LIGHT}")
