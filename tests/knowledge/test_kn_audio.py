"""Audio files attached to a chat are transcribed (the speech feature, through the
seam's ``AUDIO_TRANSCRIBER``) and their transcript is searched like any document;
without speech to text, or with a broken recording, the file fails with a reason."""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest
from knhelpers import Upload, wait_ready

from apihelpers import Client, last_turn_request, ledger_rows, signup
from parley.knowledge.feature import KnowledgeFeature
from parley.providers.scripted import ScriptedModel
from parley.speech.audio import wav_bytes
from parley.speech.feature import speech_feature
from parley.speech.voices import PiperVoice

pytestmark = pytest.mark.slow

SAID = "The spare key is hidden under the blue flower pot by the kitchen door."


@pytest.fixture
def features() -> list[Any]:
    return [KnowledgeFeature, speech_feature]


def _recording() -> bytes:
    made = PiperVoice().synthesize(SAID)
    return wav_bytes(made.samples, made.rate)


async def test_an_attached_recording_is_transcribed_and_answers_questions(
    app: Any, client: Client, upload: Upload, scripted: ScriptedModel
) -> None:
    await signup(client)
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    sent = await upload("voice-note.wav", _recording(), conversation_id=conv["id"])
    assert sent.status_code == 201, sent.text
    assert sent.json()["kind"] == "audio"
    done = await wait_ready(client, sent.json()["id"])
    assert done["status"] == "ready", done
    await client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "Where is the spare key?"}
    )
    prompt = last_turn_request(scripted).messages[0].content.lower()
    assert "spare key" in prompt and "kitchen door" in prompt, prompt
    rows = [r for r in await ledger_rows(app) if r.endpoint == "file_transcript"]
    assert len(rows) == 1 and rows[0].audio_seconds > 2 and rows[0].conversation_id == conv["id"]


async def test_a_broken_recording_fails_with_a_reason(client: Client, upload: Upload) -> None:
    await signup(client)
    header_only = _recording()[:44]
    sent = await upload("cut.wav", header_only)
    done = await wait_ready(client, sent.json()["id"])
    assert done["status"] == "failed" and "no audio" in (done.get("error") or "").lower(), done
    wrong = await upload("song.mp3", b"%PDF-1.4 not audio at all")
    assert wrong.status_code in (415, 422) and "not" in wrong.json()["detail"]


@pytest.mark.parametrize("features", [[KnowledgeFeature]])
async def test_without_speech_to_text_an_audio_file_says_why(
    client: Client, upload: Upload
) -> None:
    await signup(client)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x10" * 16_000)
    sent = await upload("memo.wav", out.getvalue())
    done = await wait_ready(client, sent.json()["id"])
    assert done["status"] == "failed" and "speech to text" in (done.get("error") or ""), done
