"""``/v1/audio/speech`` and ``/v1/audio/transcriptions`` with the official SDK,
served by the offline voices and recognizer: the round trip (a sentence spoken by
Piper and by espeak-ng comes back as its words), hostile audio, limits, scopes."""

from __future__ import annotations

import io
import re
import struct
import wave
from typing import Any

import openai
import pytest

from v1helpers import browser, make_key

pytestmark = pytest.mark.slow

SENTENCE = "Please water the plants in the kitchen before you leave for work."


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"speech_max_seconds": 20.0, "speech_max_bytes": 2_000_000, "speech_max_chars": 400}


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_errors(reference: str, heard: str) -> float:
    """Word error rate: edit distance over words / reference words."""
    ref, hyp = words(reference), words(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def _seconds(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as w:
        return w.getnframes() / w.getframerate()


@pytest.mark.parametrize("voice", ["joe", "espeak"])
def test_a_spoken_sentence_comes_back_as_its_words(live: tuple[str, str], voice: str) -> None:
    base, key = live
    client = _sdk(base, key)
    spoken = client.audio.speech.create(
        model="tts-1", voice=voice, input=SENTENCE, response_format="wav"
    )
    audio = spoken.content
    assert audio[:4] == b"RIFF" and 2.0 < _seconds(audio) < 10.0
    heard = client.audio.transcriptions.create(model="whisper-1", file=("s.wav", audio))
    assert word_errors(SENTENCE, heard.text) <= 0.2, heard.text
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("s.wav", audio), response_format="verbose_json"
    )
    assert abs(verbose.duration - _seconds(audio)) < 0.1
    text = client.audio.transcriptions.create(
        model="whisper-1", file=("s.wav", audio), response_format="text"
    )
    assert "plants" in str(text).lower()


def test_openai_voice_names_and_pcm_work(live: tuple[str, str]) -> None:
    base, key = live
    pcm = _sdk(base, key).audio.speech.create(
        model="tts-1", voice="alloy", input="Good morning.", response_format="pcm"
    )
    samples = len(pcm.content) // 2
    assert 0.4 < samples / 24_000 < 4.0  # OpenAI's pcm: 24 kHz, 16-bit mono
    client = _sdk(base, key)
    normal, fast = (
        client.audio.speech.create(
            model="tts-1", voice="joe", input=SENTENCE, response_format="wav", speed=speed
        ).content
        for speed in (1.0, 2.0)
    )
    # Piper's pauses do not all scale and its durations are drawn with noise: twice
    # as fast measured 0.63-0.73 of the normal length; ignoring speed gives about 1.0
    assert _seconds(fast) < 0.85 * _seconds(normal)


def _wav(seconds: float, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x01" * int(seconds * rate))
    return out.getvalue()


def test_hostile_and_oversized_audio_get_clear_errors(live: tuple[str, str]) -> None:
    base, key = live
    client = _sdk(base, key)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
    with pytest.raises(openai.APIStatusError) as wrong:
        client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", png))
    assert wrong.value.status_code == 415 and "not an audio file" in wrong.value.message
    header_only = _wav(1.0)[:44]
    with pytest.raises(openai.BadRequestError) as truncated:  # /v1 answers 422s as 400
        client.audio.transcriptions.create(model="whisper-1", file=("cut.wav", header_only))
    assert "no audio samples" in truncated.value.message
    lying = bytearray(_wav(0.5))
    lying[24:28] = struct.pack("<I", 3)  # 3 Hz: a header no recorder writes
    with pytest.raises(openai.BadRequestError) as impossible:
        client.audio.transcriptions.create(model="whisper-1", file=("odd.wav", bytes(lying)))
    assert "impossible header" in impossible.value.message
    with pytest.raises(openai.APIStatusError) as long:
        client.audio.transcriptions.create(model="whisper-1", file=("long.wav", _wav(30.0)))
    assert long.value.status_code == 413 and "at most 20 seconds" in long.value.message
    with pytest.raises(openai.APIStatusError) as big:
        client.audio.transcriptions.create(
            model="whisper-1", file=("big.wav", _wav(10.0, rate=192_000))
        )
    assert big.value.status_code == 413
    with pytest.raises(openai.BadRequestError) as srt:
        client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", _wav(1.0)), response_format="srt"
        )
    assert "timestamps" in srt.value.message
    with pytest.raises(openai.BadRequestError) as too_much:
        client.audio.speech.create(model="tts-1", voice="joe", input="word " * 100)
    assert "at most 400" in too_much.value.message
    with pytest.raises(openai.BadRequestError) as voice:
        client.audio.speech.create(model="tts-1", voice="zeus", input="hi", response_format="wav")
    assert "joe" in voice.value.message
    # the server still works after all that
    ok = client.audio.speech.create(
        model="tts-1", voice="espeak", input="Still here.", response_format="wav"
    )
    assert ok.content[:4] == b"RIFF"


def test_a_key_without_the_audio_scope_is_refused(live: tuple[str, str]) -> None:
    base, _ = live
    with browser(base) as web:
        chat_only = make_key(web, scopes={"endpoints": ["chat"]})["key"]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _sdk(base, chat_only).audio.speech.create(model="tts-1", voice="joe", input="hi")
    assert "audio" in refused.value.message
    with pytest.raises(openai.AuthenticationError):
        _sdk(base, "sk-not-a-key").audio.transcriptions.create(
            model="whisper-1", file=("a.wav", _wav(1.0))
        )


def test_short_clips_are_decoded_from_a_15_second_window() -> None:
    """Shorter than 15 s the decoder loops; longer clips keep their own length."""
    from parley.speech.whisper import FRAMES, MIN_FRAMES, RATE, frames_for

    assert frames_for(3 * RATE) == MIN_FRAMES == 1500
    assert frames_for(20 * RATE) == 2200  # the speech and a second of quiet, whole seconds
    assert frames_for(29 * RATE + 1) == FRAMES == 3000
    assert frames_for(60 * RATE) == FRAMES
