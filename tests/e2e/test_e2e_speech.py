"""Speech in Chromium against a real server with the offline models: dictation from a
fake microphone fed a WAV that the Piper voice spoke, read aloud producing audio as
the answer streams, and a clear message when there is no microphone."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2ehelpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    Account,
    PageLog,
    Upstream,
    api_signup,
    last_assistant,
    new_context,
    send,
    sign_in,
    wait_done,
    watch,
)
from playwright.sync_api import Browser, Page, Playwright, expect

from parley.speech.audio import resample
from parley.speech.voices import PiperVoice

pytestmark = pytest.mark.e2e

SPOKEN = "Remind me to buy fresh bread and apples tomorrow morning."
LEAD_S, TAIL_S = 0.6, 2.0


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The sentence in the Piper voice, with silence around it, as the fake microphone's
    file (Chromium loops it: the silence keeps one pass from running into the next)."""
    made = PiperVoice().synthesize(SPOKEN)
    rate = 48_000
    voice = resample(made.samples, made.rate, rate)
    samples = np.concatenate(
        [np.zeros(int(LEAD_S * rate)), voice, np.zeros(int(TAIL_S * rate))]
    ).astype(np.float32)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    path.write_bytes(out.getvalue())
    return path, len(samples) / rate


@pytest.fixture(scope="module")
def mic_browser(playwright_driver: Playwright, mic_wav: tuple[Path, float]) -> Iterator[Browser]:
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav[0]}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def mic_page(mic_browser: Browser, server: str, admin: object) -> Iterator[Page]:
    ctx = new_context(mic_browser, server, permissions=["microphone"])
    ctx.set_default_timeout(TIMEOUT_MS)
    account: Account = api_signup(server)
    sign_in(ctx, account, server)
    page = ctx.new_page()
    log = PageLog()
    watch(page, log)
    try:
        yield page
        problems = log.problems()
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)
    finally:
        ctx.close()


def test_dictation_puts_what_was_said_in_the_composer(
    mic_page: Page, mic_wav: tuple[Path, float]
) -> None:
    page = mic_page
    page.goto("/")
    composer = page.get_by_test_id("composer")
    composer.fill("Note:")
    dictate = page.get_by_test_id("dictate")
    dictate.click()
    expect(dictate).to_have_attribute("data-state", "recording")
    expect(dictate).to_have_attribute("aria-pressed", "true")
    # one pass of the file: the speech and most of the silence after it
    page.wait_for_timeout(int((mic_wav[1] - 0.5) * 1000))
    dictate.click()
    expect(dictate).to_have_attribute("data-state", "idle", timeout=60_000)
    value = composer.input_value().lower()
    assert value.startswith("note:"), value  # added to the draft, not replacing it
    for word in ("bread", "apples", "tomorrow"):
        assert word in value, value
    expect(page.get_by_test_id("dictation-error")).to_have_count(0)
    # nothing was sent: the user edits, then sends
    expect(page.locator("[data-testid=message]")).to_have_count(0)


def test_read_aloud_speaks_the_answer_while_it_streams(mic_page: Page, upstream: Upstream) -> None:
    page = mic_page
    upstream.script(
        {
            "text": "The first sentence arrives quickly. Then a second one follows slowly, "
            "word by word, while the first is already being spoken. And a third.",
            "rate": 4,
        }
    )
    page.goto("/")
    page.evaluate(
        """() => { window.__spoken = 0; window.__spokenBeforeDone = 0;
          document.addEventListener('parley:speech-audio', () => {
            window.__spoken++;
            const sel = '[data-testid=message][data-role=assistant]';
            const last = [...document.querySelectorAll(sel)].pop();
            const streaming = last && last.getAttribute('data-status') === 'streaming';
            if (streaming) window.__spokenBeforeDone++;
          }); }"""
    )
    toggle = page.get_by_test_id("read-aloud-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    send(page, "Tell me three things")
    page.wait_for_function("() => window.__spoken >= 1", timeout=60_000)
    wait_done(page)
    page.wait_for_function("() => window.__spoken >= 3", timeout=60_000)
    assert page.evaluate("() => window.__spokenBeforeDone") >= 1  # audio began mid-answer
    # a finished answer can be read again, and stopped
    reply = last_assistant(page)
    button = reply.get_by_test_id("read-aloud")
    toggle.click()  # auto off
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "false")


def test_no_microphone_is_said_plainly(page: Page, user: Account) -> None:
    page.goto("/")
    page.get_by_test_id("dictate").click()
    error = page.get_by_test_id("dictation-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("microphone", ignore_case=True)
    expect(page.get_by_test_id("dictate")).to_have_attribute("data-state", "idle")
