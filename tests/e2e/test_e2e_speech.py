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
    shot,
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


def _speech_file(folder: Path, tail_s: float) -> tuple[Path, float]:
    """The sentence in the Piper voice, with silence around it, as the fake microphone's
    file (Chromium loops it: the silence keeps one pass from running into the next)."""
    made = PiperVoice().synthesize(SPOKEN)
    rate = 48_000
    voice = resample(made.samples, made.rate, rate)
    samples = np.concatenate(
        [np.zeros(int(LEAD_S * rate)), voice, np.zeros(int(tail_s * rate))]
    ).astype(np.float32)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    path = folder / f"speech-{tail_s:g}.wav"
    path.write_bytes(out.getvalue())
    return path, len(samples) / rate


def _mic_browser(playwright_driver: Playwright, wav: Path) -> Browser:
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    return playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    return _speech_file(tmp_path_factory.mktemp("mic"), TAIL_S)


@pytest.fixture(scope="module")
def mic_browser(playwright_driver: Playwright, mic_wav: tuple[Path, float]) -> Iterator[Browser]:
    browser = _mic_browser(playwright_driver, mic_wav[0])
    try:
        yield browser
    finally:
        browser.close()


def _signed_in_page(browser: Browser, server: str) -> Iterator[Page]:
    ctx = new_context(browser, server, permissions=["microphone"])
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


@pytest.fixture
def mic_page(mic_browser: Browser, server: str, admin: object) -> Iterator[Page]:
    yield from _signed_in_page(mic_browser, server)


@pytest.fixture(scope="module")
def voice_browser(
    playwright_driver: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    """A microphone that says the sentence, then is quiet for 10 s (the answer is
    spoken meanwhile), then says it again (over the answer still being written)."""
    wav, _ = _speech_file(tmp_path_factory.mktemp("voice"), 10.0)
    browser = _mic_browser(playwright_driver, wav)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def voice_page(voice_browser: Browser, server: str, admin: object) -> Iterator[Page]:
    yield from _signed_in_page(voice_browser, server)


def test_voice_mode_hears_answers_aloud_and_stops_when_interrupted(
    voice_page: Page, upstream: Upstream
) -> None:
    page = voice_page
    words = " ".join(f"item{i}" for i in range(80))
    upstream.script(
        {"text": f"Here is your list. {words}.", "rate": 3},
        {"text": "Sure, I stopped. What next?"},
    )
    page.goto("/")
    page.evaluate(
        """() => { window.__spoken = 0; window.__bargeIns = 0;
          document.addEventListener('parley:speech-audio', () => { window.__spoken++; });
          document.addEventListener('parley:barge-in', () => { window.__bargeIns++; }); }"""
    )
    page.get_by_test_id("voice-mode").click()
    panel = page.get_by_test_id("voice-panel")
    expect(panel).to_be_visible()
    # the utterance becomes a normal message, and its answer is spoken
    first = page.locator("[data-testid=message][data-role=user]").first
    expect(first).to_contain_text("bread", ignore_case=True, timeout=60_000)
    page.wait_for_function("() => window.__spoken >= 1", timeout=60_000)
    # the second pass of the sentence talks over the answer: playback and the answer stop
    page.wait_for_function("() => window.__bargeIns >= 1", timeout=60_000)
    answer = page.locator("[data-testid=message][data-role=assistant]").first
    expect(answer).to_have_attribute("data-status", "cancelled", timeout=30_000)
    # ...and what was said is the next message, answered as usual
    expect(page.locator("[data-testid=message][data-role=user]")).to_have_count(2, timeout=60_000)
    wait_done(page, timeout=60_000)
    shot(page, "voice-mode")
    page.get_by_test_id("voice-end").click()
    expect(panel).to_have_count(0)
    expect(page.get_by_test_id("voice-error")).to_have_count(0)


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
