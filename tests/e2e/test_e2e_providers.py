"""Admin → Providers, as an admin uses it: a wrong key is refused at save, the key is
rotated in the edit dialog, a model's context window and vision are edited, and an
image sent to that model really reaches it; delete and re-add shows a fresh row."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from e2ehelpers import chat, content, csrf, messages, shot
from playwright.sync_api import Page, expect

from parley.providers.testing import ScriptedUpstream

pytestmark = pytest.mark.e2e

NAME = "keyed"
MODEL = "house-model"  # unknown to the known-model table: 8192 tokens, no vision
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def keyed() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(models=[MODEL], api_key="sk-right-1", default_text="I see a dot.") as up:
        yield up


def _row(page: Page):  # type: ignore[no-untyped-def]
    return (
        page.get_by_test_id("providers-table").get_by_test_id("provider-row").filter(has_text=NAME)
    )


def test_admin_adds_edits_and_uses_a_provider(
    admin_page: Page, server: str, keyed: ScriptedUpstream
) -> None:
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/admin/providers")
    expect(page.get_by_test_id("providers-table")).to_be_visible()
    try:
        _journey(page, keyed)
    finally:
        page.request.delete(f"/api/admin/providers/{NAME}", headers={"X-CSRF-Token": csrf(page)})


def _journey(page: Page, keyed: ScriptedUpstream) -> None:
    # --- a wrong key is refused at save, and nothing is stored
    page.get_by_test_id("provider-kind").select_option("openai")
    page.get_by_test_id("provider-name").fill(NAME)
    page.get_by_test_id("provider-url").fill(keyed.base_url)
    page.get_by_test_id("provider-key").fill("sk-wrong")
    page.get_by_test_id("provider-save").click()
    failed = page.get_by_test_id("provider-save-failed")
    expect(failed).to_contain_text("rejected the API key")
    expect(failed.get_by_test_id("provider-save-anyway")).to_be_visible()
    expect(_row(page)).to_have_count(0)
    shot(page, "providers-wrong-key")

    page.get_by_test_id("provider-key").fill("sk-right-1")
    page.get_by_test_id("provider-save").click()
    expect(_row(page)).to_contain_text(MODEL)
    expect(page.get_by_test_id("provider-save-failed")).to_have_count(0)
    assert "sk-right-1" not in page.content()

    # --- the key is rotated upstream: the row's test fails, the edit dialog fixes it
    keyed.app.api_key = "sk-rotated-2"
    _row(page).get_by_role("button", name=f"Test connection to {NAME}").click()
    expect(_row(page)).to_contain_text("rejected the API key")
    _row(page).get_by_test_id("provider-edit").click()
    dialog = page.get_by_test_id("provider-edit-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("edit-url")).to_have_value(keyed.base_url)
    expect(dialog.get_by_test_id("edit-key")).to_have_attribute(
        "placeholder", "Saved: leave blank to keep it"
    )
    dialog.get_by_test_id("edit-key").fill("sk-also-wrong")
    dialog.get_by_test_id("edit-save").click()
    expect(dialog.get_by_test_id("edit-test-failed")).to_contain_text("rejected the API key")
    expect(dialog.get_by_test_id("edit-save-anyway")).to_be_visible()
    shot(page, "providers-edit-wrong-key")
    dialog.get_by_test_id("edit-key").fill("sk-rotated-2")
    dialog.get_by_test_id("edit-save").click()
    expect(dialog).to_be_hidden()
    expect(_row(page)).not_to_contain_text("rejected the API key")  # no stale error
    assert "sk-rotated-2" not in page.content()

    # --- per-model settings: context window and vision
    _row(page).get_by_test_id("provider-edit").click()
    expect(dialog).to_be_visible()
    model = dialog.locator(f"[data-testid=model-row][data-model='{MODEL}']")
    expect(model).to_contain_text("8k context")
    model.locator("summary").click()
    model.get_by_test_id("model-context").fill("64000")
    model.get_by_test_id("model-vision").check()
    expect(model).to_contain_text("64k context · vision")
    shot(page, "providers-edit-model")
    dialog.get_by_test_id("edit-save").click()
    expect(dialog).to_be_hidden()
    listed = page.request.get("/api/models").json()["items"]
    mine = next(m for m in listed if m["ref"] == f"{NAME}/{MODEL}")
    assert mine["context_window"] == 64000 and mine["supports_vision"] is True, mine
    shot(page, "providers-after-edit")

    # --- an image sent to the vision model reaches it
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("model-picker").select_option(f"{NAME}/{MODEL}")
    page.get_by_test_id("attach").click()  # the paper clip: upload or knowledge
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-upload").click()
    chooser.value.set_files([{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("[data-testid=attachment][data-status=ready]")).to_have_count(1)
    reply = chat(page, "What is in this picture?")
    expect(content(reply)).to_have_text("I see a dot.")
    expect(page.get_by_text("cannot see images")).to_have_count(0)
    sent = [r for r in keyed.requests if r.path.endswith("/chat/completions")]
    question = next(
        m
        for m in sent[0].json["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
    )
    assert any(p["type"] == "image_url" for p in question["content"]), question
    shot(page, "providers-vision-chat")

    # --- the dialog on a phone: everything reachable, nothing cut off
    page.goto("/admin/providers")
    page.set_viewport_size({"width": 390, "height": 844})
    _row(page).get_by_test_id("provider-edit").click()
    expect(dialog).to_be_visible()
    model.locator("summary").click()
    expect(model).to_contain_text("your settings")
    expect(model.get_by_test_id("model-context")).to_have_value("64000")
    shot(page, "providers-edit-mobile")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.set_viewport_size({"width": 1280, "height": 900})

    # --- delete and re-add: the new row starts fresh (no error from before)
    keyed.app.api_key = "sk-rotated-3"
    _row(page).get_by_role("button", name=f"Test connection to {NAME}").click()
    expect(_row(page)).to_contain_text("rejected the API key")
    _row(page).get_by_role("button", name=f"Delete provider {NAME}").click()
    page.get_by_test_id("confirm-ok").click()
    expect(_row(page)).to_have_count(0)
    page.get_by_test_id("provider-name").fill(NAME)
    page.get_by_test_id("provider-url").fill(keyed.base_url)
    page.get_by_test_id("provider-key").fill("sk-rotated-3")
    page.get_by_test_id("provider-save").click()
    expect(_row(page)).to_contain_text(MODEL)
    expect(_row(page)).not_to_contain_text("rejected")
    shot(page, "providers-readded")


# ---------------------------------------------------------------- known models

KNOWN = "known"
VISION_MODEL = "gpt-4o-mini"  # the known-model table: vision
BLIND_MODEL = "gpt-3.5-turbo"  # the known-model table: no vision


@pytest.fixture
def known_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(
        models=[VISION_MODEL, BLIND_MODEL], api_key="sk-known", default_text="A single dot."
    ) as up:
        yield up


def _send_picture(page: Page, model: str, question: str):  # type: ignore[no-untyped-def]
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("model-picker").select_option(f"{KNOWN}/{model}")
    page.get_by_test_id("attach").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-upload").click()
    chooser.value.set_files([{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("[data-testid=attachment][data-status=ready]")).to_have_count(1)
    return chat(page, question)


def _image_parts(up: ScriptedUpstream, model: str) -> list[dict[str, object]]:
    """The image parts of the user messages the upstream was sent for ``model``."""
    parts: list[dict[str, object]] = []
    for r in up.requests:
        if not r.path.endswith("/chat/completions") or r.json.get("model") != model:
            continue
        for m in r.json["messages"]:
            if m["role"] == "user" and isinstance(m["content"], list):
                parts += [p for p in m["content"] if p.get("type") == "image_url"]
    return parts


def test_a_known_vision_model_sees_an_image_without_any_per_model_setting(
    admin_page: Page, known_upstream: ScriptedUpstream
) -> None:
    """The admin adds a provider and saves; the known-model table says gpt-4o-mini sees
    images and gpt-3.5-turbo does not, so the picture reaches the first and the second
    answer says why it cannot look at it."""
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/admin/providers")
    expect(page.get_by_test_id("providers-table")).to_be_visible()
    try:
        page.get_by_test_id("provider-kind").select_option("openai")
        page.get_by_test_id("provider-name").fill(KNOWN)
        page.get_by_test_id("provider-url").fill(known_upstream.base_url)
        page.get_by_test_id("provider-key").fill("sk-known")
        page.get_by_test_id("provider-save").click()
        row = page.get_by_test_id("provider-row").filter(has_text=KNOWN)
        expect(row).to_contain_text(VISION_MODEL)
        expect(row).to_contain_text(BLIND_MODEL)
        listed = {m["ref"]: m for m in page.request.get("/api/models").json()["items"]}
        assert listed[f"{KNOWN}/{VISION_MODEL}"]["supports_vision"] is True, listed
        assert listed[f"{KNOWN}/{BLIND_MODEL}"]["supports_vision"] is False, listed
        shot(page, "providers-known-added")

        # --- the vision model gets the picture
        reply = _send_picture(page, VISION_MODEL, "What is in this picture?")
        expect(content(reply)).to_have_text("A single dot.")
        expect(page.get_by_text("cannot see images")).to_have_count(0)
        assert len(_image_parts(known_upstream, VISION_MODEL)) == 1
        shot(page, "providers-known-vision-chat")

        # --- the same picture to a model without vision: not sent, and the chat says so
        reply = _send_picture(page, BLIND_MODEL, "And what is in this one?")
        expect(content(reply)).to_have_text("A single dot.")
        expect(reply.get_by_text("cannot see images")).to_be_visible()
        assert _image_parts(known_upstream, BLIND_MODEL) == []
        sent = [r for r in known_upstream.requests if r.json and r.json.get("model") == BLIND_MODEL]
        assert sent and "cannot see images" in json.dumps(sent[-1].json["messages"]), sent
        shot(page, "providers-known-blind-chat")

        # --- a reload keeps the notice (it is stored with the answer)
        page.reload()
        expect(messages(page, "assistant").last.get_by_text("cannot see images")).to_be_visible()
    finally:
        page.request.delete(f"/api/admin/providers/{KNOWN}", headers={"X-CSRF-Token": csrf(page)})
