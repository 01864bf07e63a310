"""``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech``: OpenAI's audio
API, served by the instance's speech providers (offline by default).

Authorised by API keys like the rest of ``/v1`` (endpoint group ``audio``).
What OpenAI accepts and Parley cannot do is refused with a 400 that says so
(timestamped ``srt``/``vtt`` transcripts, compressed output without ffmpeg);
the model name is recorded but any name works: the server has one recognizer
and its voices (``whisper-1`` and ``tts-1`` as clients send them).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from parley.http.deps import AudioKey
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.speech.audio import BadAudio
from parley.speech.router import Speech, problem_of, read_audio_form
from parley.speech.service import SpeechUnavailable

__all__ = ["router"]

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["openai-compatible"])

_TRANSCRIBE_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string"},
                        "language": {"type": "string"},
                        "prompt": {"type": "string"},
                        "response_format": {
                            "type": "string",
                            "enum": ["json", "text", "verbose_json"],
                        },
                        "temperature": {"type": "number"},
                    },
                }
            }
        },
    }
}


class Transcription(BaseModel):
    text: str


class VerboseTranscription(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    language: str
    duration: float
    text: str


class SpeechIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(max_length=200)
    input: str = Field(description="The text to speak.")
    voice: str = Field(max_length=100)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(default=None, max_length=4096)


@router.post(
    "/audio/transcriptions",
    response_model=Transcription,
    responses={200: {"model": Transcription | VerboseTranscription}},
    openapi_extra=_TRANSCRIBE_FORM,
)
async def create_transcription(request: Request, principal: AudioKey, speech: Speech) -> Any:
    data, name, fields = await read_audio_form(
        request,
        speech.settings.speech_max_bytes,
        ("model", "language", "prompt", "response_format", "temperature"),
    )
    fmt = fields.get("response_format", "json")
    if fmt in ("srt", "vtt"):
        raise Problem(
            400,
            f"response_format '{fmt}' needs timestamps, which this server does not make; "
            "ask for 'json', 'text' or 'verbose_json'.",
            "unsupported_format",
            param="response_format",
        )
    if fmt not in ("json", "text", "verbose_json"):
        raise Problem(
            400,
            f"Unknown response_format {fmt!r}: use 'json', 'text' or 'verbose_json'.",
            "invalid_request",
            param="response_format",
        )
    if not fields.get("model"):
        raise Problem(
            400, "'model' is required (for example 'whisper-1').", "invalid_request", param="model"
        )
    language = fields.get("language", "en")
    try:
        found = await speech.transcribe(
            principal.user.id,
            data,
            name,
            endpoint="audio.transcriptions",
            api_key_id=principal.api_key_id,
            prompt=fields.get("prompt"),
        )
    except (BadAudio, SpeechUnavailable) as exc:
        raise problem_of(exc) from exc
    if fmt == "text":
        return PlainTextResponse(found.text + "\n")
    if fmt == "verbose_json":
        return JSONResponse(
            {
                "task": "transcribe",
                "language": language,
                "duration": round(found.seconds, 3),
                "text": found.text,
            }
        )
    return JSONResponse({"text": found.text})


@router.post(
    "/audio/speech",
    response_class=Response,
    responses={
        200: {
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The speech in response_format",
        }
    },
)
async def create_speech(body: SpeechIn, principal: AudioKey, speech: Speech) -> Response:
    try:
        spoken = await speech.speak(
            principal.user.id,
            body.input,
            voice=body.voice,
            fmt=body.response_format,
            endpoint="audio.speech",
            api_key_id=principal.api_key_id,
            speed=body.speed,
        )
    except (BadAudio, SpeechUnavailable) as exc:
        raise problem_of(exc) from exc
    return Response(spoken.audio, media_type=spoken.media_type)
