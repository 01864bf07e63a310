"""The web app's speech routes and Admin > Voice.

- ``GET /api/speech``: what works here (dictation, read aloud, the voices, limits),
  so the web app shows the microphone and speaker buttons only when they work.
- ``POST /api/speech/transcriptions``: dictation (a multipart ``file``); the text
  comes back for the composer, where the user edits it before sending.
- ``POST /api/speech/speech``: one sentence (or more) of an answer as WAV, for
  read aloud; the web app sends sentences one by one as the answer streams.
- ``GET/PUT/DELETE /api/admin/speech``: the providers, their voices and prices.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from parley.errors import Invalid
from parley.http.deps import DB, AdminUser, CurrentUser, SettingsDep, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.instance.values import get_value
from parley.speech.audio import BadAudio
from parley.speech.choice import ROW_KEY, SpeechChoice, load_choice, reset_choice, save_choice
from parley.speech.service import SpeechService, SpeechUnavailable

__all__ = ["AUDIO_FORM", "Speech", "problem_of", "read_audio_form", "router"]

router = APIRouter(route_class=GuardedRoute, tags=["speech"])
Speech = Annotated[SpeechService, Depends(service(SpeechService))]

AUDIO_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
AUDIO_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The speech, as WAV",
    }
}


def problem_of(exc: BadAudio | SpeechUnavailable) -> Problem:
    return Problem(exc.status, exc.message, exc.code)


async def read_audio_form(
    request: Request, max_bytes: int, fields: tuple[str, ...]
) -> tuple[bytes, str, dict[str, str]]:
    """The multipart ``file`` (read up to ``max_bytes`` + 1) and the plain fields."""
    form = await request.form(max_files=1, max_fields=len(fields) + 2)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise Invalid("Send the audio in the multipart field 'file'.", "file_missing")
        data = await file.read(max_bytes + 1)
        name = (file.filename or "audio").replace("/", "_")[:200]
        values: dict[str, str] = {}
        for key in fields:
            value = form.get(key)
            if value is not None and not isinstance(value, str):
                raise Invalid(f"'{key}' must be a plain form field, not a file.")
            if value:
                values[key] = value[:2000]
        return data, name, values
    finally:
        await form.close()


class SpeechStatus(BaseModel):
    transcription: bool = Field(description="Dictation and audio transcripts work here.")
    speech: bool = Field(description="Read aloud works here.")
    stt_provider: str
    tts_provider: str
    voices: list[str]
    max_seconds: float
    max_bytes: int
    max_chars: int


class TranscriptOut(BaseModel):
    text: str
    seconds: float = Field(description="Length of the recording.")


class SpeakIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    voice: str = Field(default="joe", max_length=100)


@router.get("/api/speech", response_model=SpeechStatus)
async def speech_status(speech: Speech, user: CurrentUser) -> SpeechStatus:
    return SpeechStatus.model_validate(await speech.status())


@router.post("/api/speech/transcriptions", response_model=TranscriptOut, openapi_extra=AUDIO_FORM)
async def dictate(request: Request, speech: Speech, user: CurrentUser) -> TranscriptOut:
    """Dictation: the recording's text, for the composer (nothing is stored)."""
    data, name, _ = await read_audio_form(request, speech.settings.speech_max_bytes, ())
    try:
        found = await speech.transcribe(user.id, data, name, endpoint="dictation")
    except (BadAudio, SpeechUnavailable) as exc:
        raise problem_of(exc) from exc
    return TranscriptOut(text=found.text, seconds=round(found.seconds, 2))


@router.post("/api/speech/speech", response_class=Response, responses=AUDIO_RESPONSE)
async def read_aloud(body: SpeakIn, speech: Speech, user: CurrentUser) -> Response:
    """Read aloud: ``text`` spoken as WAV."""
    try:
        spoken = await speech.speak(
            user.id, body.text, voice=body.voice, fmt="wav", endpoint="read_aloud"
        )
    except (BadAudio, SpeechUnavailable) as exc:
        raise problem_of(exc) from exc
    return Response(
        spoken.audio,
        media_type=spoken.media_type,
        headers={"X-Audio-Seconds": f"{spoken.seconds:.3f}"},
    )


# ------------------------------------------------------------------ admin

Provider = Literal["local", "openai", "none"]


class SpeechAdminView(BaseModel):
    stt_provider: Provider
    stt_base_url: str | None
    stt_key_hint: str | None = Field(description="The key's last four characters, if set.")
    stt_model: str
    stt_price_per_minute: float
    tts_provider: Provider
    tts_base_url: str | None
    tts_key_hint: str | None
    tts_model: str
    tts_voices: list[str]
    tts_price_per_minute: float
    saved: bool = Field(description="An admin's choice (false: the environment's).")
    local_recognizer: bool = Field(description="The offline recognizer is installed.")
    local_voices: list[str]


class SpeechAdminIn(BaseModel):
    stt_provider: Provider
    stt_base_url: str | None = Field(default=None, max_length=500)
    stt_api_key: str | None = Field(
        default=None, max_length=500, description="Leave out to keep the stored key."
    )
    stt_model: str = Field(default="whisper-1", min_length=1, max_length=200)
    stt_price_per_minute: float = Field(default=0.0, ge=0, le=1000)
    tts_provider: Provider
    tts_base_url: str | None = Field(default=None, max_length=500)
    tts_api_key: str | None = Field(default=None, max_length=500)
    tts_model: str = Field(default="tts-1", min_length=1, max_length=200)
    tts_voices: list[str] = Field(default_factory=list, max_length=50)
    tts_price_per_minute: float = Field(default=0.0, ge=0, le=1000)


def _hint(key: str | None) -> str | None:
    if not key:
        return None
    return "…" + key[-4:] if len(key) >= 12 else "…"


def _view(choice: SpeechChoice, speech: SpeechService) -> SpeechAdminView:
    return SpeechAdminView(
        stt_provider=choice.stt_provider,
        stt_base_url=choice.stt_base_url,
        stt_key_hint=_hint(choice.stt_api_key),
        stt_model=choice.stt_model,
        stt_price_per_minute=choice.stt_price_per_minute,
        tts_provider=choice.tts_provider,
        tts_base_url=choice.tts_base_url,
        tts_key_hint=_hint(choice.tts_api_key),
        tts_model=choice.tts_model,
        tts_voices=list(choice.tts_voices),
        tts_price_per_minute=choice.tts_price_per_minute,
        saved=choice.saved,
        local_recognizer=speech.whisper.available,
        local_voices=speech.local_voices(),
    )


def _url(value: str | None, field: str, needed: bool) -> str | None:
    value = (value or "").strip() or None
    if value is None:
        if needed:
            raise Invalid(
                f"'{field}' is needed for an OpenAI-compatible provider "
                "(its base URL, ending in /v1).",
                "base_url_missing",
            )
        return None
    if not value.startswith(("http://", "https://")):
        raise Invalid(f"'{field}' must start with http:// or https://.", "bad_url")
    return value.rstrip("/")


@router.get("/api/admin/speech", response_model=SpeechAdminView, tags=["admin"])
async def get_speech_admin(
    db: DB, settings: SettingsDep, speech: Speech, user: AdminUser
) -> SpeechAdminView:
    return _view(await load_choice(db, settings), speech)


@router.put("/api/admin/speech", response_model=SpeechAdminView, tags=["admin"])
async def put_speech_admin(
    body: SpeechAdminIn, db: DB, settings: SettingsDep, speech: Speech, user: AdminUser
) -> SpeechAdminView:
    """Save the providers; a key left out keeps the stored one (keys are write-only)."""
    current = await load_choice(db, settings)
    stored = await get_value(db, ROW_KEY)
    voices = tuple(dict.fromkeys(v.strip() for v in body.tts_voices if v.strip()))
    choice = SpeechChoice(
        stt_provider=body.stt_provider,
        stt_base_url=_url(body.stt_base_url, "stt_base_url", body.stt_provider == "openai"),
        stt_api_key=body.stt_api_key if body.stt_api_key is not None else current.stt_api_key,
        stt_model=body.stt_model.strip(),
        stt_price_per_minute=body.stt_price_per_minute,
        tts_provider=body.tts_provider,
        tts_base_url=_url(body.tts_base_url, "tts_base_url", body.tts_provider == "openai"),
        tts_api_key=body.tts_api_key if body.tts_api_key is not None else current.tts_api_key,
        tts_model=body.tts_model.strip(),
        tts_voices=voices or (current.tts_voices if stored else SpeechChoice().tts_voices),
        tts_price_per_minute=body.tts_price_per_minute,
    )
    await save_choice(db, choice)
    await db.commit()
    return _view(await load_choice(db, settings), speech)


@router.delete("/api/admin/speech", response_model=SpeechAdminView, tags=["admin"])
async def reset_speech_admin(
    db: DB, settings: SettingsDep, speech: Speech, user: AdminUser
) -> SpeechAdminView:
    """Forget the saved choice: the environment's settings apply again."""
    await reset_choice(db)
    await db.commit()
    return _view(await load_choice(db, settings), speech)
