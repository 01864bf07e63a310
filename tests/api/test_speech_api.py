"""The web app's speech routes (dictation, read aloud), Admin > Voice, an
OpenAI-compatible speech provider, and the usage ledger's audio seconds."""

from __future__ import annotations

import io
import socket
import threading
import time
import wave
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from apihelpers import Client, ledger_rows, make_client, signup
from parley.speech.feature import speech_feature

pytestmark = pytest.mark.slow


@pytest.fixture
def features() -> list[Any]:
    return [speech_feature]


def _tone_wav(seconds: float, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


async def test_read_aloud_then_dictation_round_trip_and_ledger(app: Any, client: Client) -> None:
    await signup(client)
    status = (await client.get("/api/speech")).json()
    assert status["transcription"] and status["speech"] and "joe" in status["voices"]
    spoken = await client.post(
        "/api/speech/speech", json={"text": "Turn off the lights in the garden.", "voice": "joe"}
    )
    assert spoken.status_code == 200 and spoken.headers["content-type"] == "audio/wav"
    seconds = float(spoken.headers["x-audio-seconds"])
    assert 1.0 < seconds < 6.0
    heard = await client.post(
        "/api/speech/transcriptions", files={"file": ("dictation.wav", spoken.content)}
    )
    assert heard.status_code == 200, heard.text
    assert "lights" in heard.json()["text"].lower() and "garden" in heard.json()["text"].lower()
    rows = [r for r in await ledger_rows(app) if r.provider == "speech-local"]
    assert [r.endpoint for r in rows] == ["read_aloud", "dictation"]
    assert rows[0].model == "voice/joe" and abs(rows[0].audio_seconds - seconds) < 0.01
    assert rows[1].model == "whisper-tiny.en" and abs(rows[1].audio_seconds - seconds) < 0.05
    assert all(r.cost == 0 for r in rows)  # offline: free until an admin sets a price


async def test_bad_dictation_keeps_the_user_informed(client: Client) -> None:
    await signup(client)
    empty = await client.post("/api/speech/transcriptions", files={"file": ("a.wav", b"")})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    text = await client.post("/api/speech/transcriptions", files={"file": ("a.wav", b"hello")})
    assert text.status_code == 415 and "not an audio file" in text.json()["detail"]
    webm = b"\x1a\x45\xdf\xa3" + b"\x00" * 64
    no_ffmpeg = await client.post("/api/speech/transcriptions", files={"file": ("a.webm", webm)})
    assert no_ffmpeg.status_code in (415, 422)
    missing = await client.post("/api/speech/transcriptions", data={"x": "1"})
    assert missing.status_code == 422 and "'file'" in missing.json()["detail"]
    silence = await client.post(
        "/api/speech/transcriptions", files={"file": ("quiet.wav", _tone_wav(1.0))}
    )
    assert silence.status_code == 200 and silence.json()["text"] == ""


async def test_speech_routes_need_a_session_and_admin_routes_an_admin(app: Any) -> None:
    async with make_client(app) as admin, make_client(app) as member, make_client(app) as anon:
        await signup(admin, "admin@example.com")
        await signup(member, "member@example.com")
        assert (await anon.get("/api/speech")).status_code == 401
        assert (await anon.post("/api/speech/speech", json={"text": "hi"})).status_code in (
            401,
            403,
        )
        assert (await member.get("/api/admin/speech")).status_code == 403
        assert (
            await member.put(
                "/api/admin/speech", json={"stt_provider": "none", "tts_provider": "none"}
            )
        ).status_code == 403
        assert (await admin.get("/api/admin/speech")).json()["local_recognizer"] is True


# ------------------------------------------------------------ a remote provider


def _upstream_app(calls: list[dict[str, Any]]) -> FastAPI:
    """A scripted OpenAI-compatible speech API (the model boundary)."""
    up = FastAPI()

    @up.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Any:
        form = await request.form()
        calls.append(
            {
                "path": "transcriptions",
                "model": form.get("model"),
                "auth": request.headers.get("authorization"),
            }
        )
        return JSONResponse(
            {
                "text": "scripted words from upstream",
                "duration": 2.5,
                "language": "en",
                "task": "transcribe",
            }
        )

    @up.post("/v1/audio/speech")
    async def speech(request: Request) -> Any:
        body = await request.json()
        calls.append({"path": "speech", **body})
        return Response(_tone_wav(3.0, 24_000), media_type="audio/wav")

    return up


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    calls: list[dict[str, Any]] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_upstream_app(calls), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", calls
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def test_an_openai_compatible_provider_chosen_in_admin(
    app: Any, client: Client, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    base, calls = upstream
    await signup(client)
    missing_url = await client.put(
        "/api/admin/speech", json={"stt_provider": "openai", "tts_provider": "local"}
    )
    assert missing_url.status_code == 422 and "base URL" in missing_url.json()["detail"]
    saved = await client.put(
        "/api/admin/speech",
        json={
            "stt_provider": "openai",
            "stt_base_url": base,
            "stt_api_key": "sk-upstream-secret-1234",
            "stt_model": "whisper-large",
            "stt_price_per_minute": 0.006,
            "tts_provider": "openai",
            "tts_base_url": base,
            "tts_model": "tts-hd",
            "tts_voices": ["nova", "onyx"],
            "tts_price_per_minute": 0.03,
        },
    )
    assert saved.status_code == 200, saved.text
    view = saved.json()
    assert view["stt_key_hint"] == "…1234" and "sk-upstream" not in saved.text
    assert (await client.get("/api/speech")).json()["voices"] == ["nova", "onyx"]

    heard = await client.post(
        "/api/speech/transcriptions", files={"file": ("a.wav", _tone_wav(4.0))}
    )
    assert heard.json() == {"text": "scripted words from upstream", "seconds": 4.0}
    spoken = await client.post("/api/speech/speech", json={"text": "Hello there.", "voice": "nova"})
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"
    wrong_voice = await client.post("/api/speech/speech", json={"text": "Hi.", "voice": "joe"})
    assert wrong_voice.status_code == 400 and "nova, onyx" in wrong_voice.json()["detail"]
    assert calls[0] == {
        "path": "transcriptions",
        "model": "whisper-large",
        "auth": "Bearer sk-upstream-secret-1234",
    }
    assert calls[1]["model"] == "tts-hd" and calls[1]["voice"] == "nova"

    rows = [r for r in await ledger_rows(app) if r.provider == "speech-openai"]
    assert [(r.endpoint, r.model) for r in rows] == [
        ("dictation", "whisper-large"),
        ("read_aloud", "tts-hd"),
    ]
    assert rows[0].audio_seconds == 4.0 and rows[0].cost == pytest.approx(0.006 * 4 / 60)
    assert rows[1].audio_seconds == 3.0 and rows[1].cost == pytest.approx(0.03 * 3 / 60)

    reset = await client.delete("/api/admin/speech")
    assert reset.json()["stt_provider"] == "local" and reset.json()["saved"] is False
