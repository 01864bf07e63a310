"""The speech feature: speech to text and text to speech, offline by default.

Provides ``SpeechService`` (the routes' service) and ``AUDIO_TRANSCRIBER`` (the
knowledge feature transcribes audio files attached to a chat through it). Models
load on first use: a server that never hears or speaks never loads them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from parley.config import Settings
from parley.errors import Invalid
from parley.seam import AUDIO_TRANSCRIBER, FeatureContext
from parley.speech import openai_audio
from parley.speech import router as speech_router
from parley.speech.audio import BadAudio
from parley.speech.service import SpeechService, SpeechUnavailable
from parley.usage.ledger import UsageLedger

__all__ = ["SpeechFeature", "speech_feature"]

MULTIPART_OVERHEAD = 64 * 1024

router = APIRouter()
router.include_router(speech_router.router)
router.include_router(openai_audio.router)


class SpeechFeature:
    name = "speech"
    router: Any = router

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        limit = settings.speech_max_bytes + MULTIPART_OVERHEAD
        self.body_limits = {
            "/api/speech/transcriptions": limit,
            "/v1/audio/transcriptions": limit,
        }
        self._ctx: FeatureContext | None = None
        self._service: SpeechService | None = None

    @property
    def service(self) -> SpeechService:
        assert self._service is not None, "the speech feature was not started"
        return self._service

    async def start(self, ctx: FeatureContext) -> None:
        ledger = ctx.lookup(UsageLedger)()
        self._service = SpeechService(self.settings, ctx.db, ledger)
        ctx.provide(SpeechService, self._service)
        ctx.provide(AUDIO_TRANSCRIBER, self._transcribe_file)
        self._ctx = ctx

    async def _transcribe_file(
        self, user_id: str, path: Path, name: str, conversation_id: str | None
    ) -> str:
        """An attached audio file's transcript (``BadAudio``/``SpeechUnavailable``
        say why not)."""
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > self.settings.speech_max_bytes:
            raise Invalid(
                f"'{name}' is larger than the {self.settings.speech_max_bytes // 1_048_576} MiB "
                "of audio that can be transcribed.",
                "audio_too_large",
            )
        data = await asyncio.to_thread(path.read_bytes)
        try:
            found = await self.service.transcribe(
                user_id, data, name, endpoint="file_transcript", conversation_id=conversation_id
            )
        except (BadAudio, SpeechUnavailable) as exc:
            raise Invalid(exc.message, exc.code) from exc
        return found.text

    async def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.withdraw(SpeechService)
            self._ctx.withdraw(AUDIO_TRANSCRIBER)


def speech_feature(settings: Settings) -> SpeechFeature:
    return SpeechFeature(settings)
