"""The embedded model (llama.cpp + the bundled SmolLM2) answers in the browser:
a separate ``parley serve`` with no provider configured but the local model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    PASSWORD,
    PageLog,
    content,
    last_assistant,
    messages,
    new_context,
    send,
    start_parley,
    unique_email,
    wait_done,
    watch,
)
from playwright.sync_api import Browser, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANSWER_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def local_server(e2e_tmp: Path) -> Iterator[str]:
    env = {
        "PARLEY_LOCAL_MODEL_ENABLED": "true",
        "PARLEY_LOCAL_CONTEXT_WINDOW": "2048",
        "PARLEY_MEMORY_AUTO": "false",  # no second model call after the turn
    }
    proc, base = start_parley("parley-local", e2e_tmp / "data-local", env, e2e_tmp)
    try:
        yield base
    finally:
        proc.stop()


def test_embedded_model_streams_and_persists(browser: Browser, local_server: str) -> None:
    log = PageLog()
    ctx = new_context(browser, local_server)
    try:
        page = ctx.new_page()
        watch(page, log)
        page.goto("/signup")  # the first account: an admin with only the demo model
        page.fill("#auth-name", "Local Lou")
        page.get_by_test_id("auth-email").fill(unique_email("local"))
        page.get_by_test_id("auth-password").fill(PASSWORD)
        page.get_by_test_id("auth-submit").click()
        page.get_by_test_id("setup-close").click()  # the first-run setup: not now
        expect(page.get_by_test_id("starter-notice")).to_be_visible()
        models = page.request.get("/api/models").json()
        refs = [m["ref"] for m in models["items"]]
        assert refs and all(not r.startswith("openai/") for r in refs), refs
        assert models["default"] in refs, models
        assert models["local"]["status"] != "disabled", models["local"]

        send(page, "Say hello")
        reply = last_assistant(page)
        expect(content(reply)).to_contain_text(re.compile(r"\w"), timeout=ANSWER_TIMEOUT_MS)
        wait_done(page, timeout=ANSWER_TIMEOUT_MS)
        expect(reply).to_have_attribute("data-status", "complete")
        text = (content(reply).text_content() or "").strip()
        assert text, "the embedded model gave an empty answer"

        page.reload()
        expect(messages(page)).to_have_count(2)
        expect(content(messages(page, "user").first)).to_have_text("Say hello")
        expect(content(last_assistant(page))).to_have_text(text)
        expect(last_assistant(page)).to_have_attribute("data-status", "complete")
        assert page.request.get("/api/models").json()["local"]["status"] == "ready"
    finally:
        ctx.close()
    assert not log.problems(), log.problems()
