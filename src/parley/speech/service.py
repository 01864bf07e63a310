"""``SpeechService``: transcribe and speak for a user, through the chosen provider,
within the limits, recorded in the usage ledger.

Every route (the web app's dictation and read-aloud, ``/v1/audio/*``, and audio
files attached to a chat) comes here, so limits, prices and the ledger row are
the same whichever way audio arrives. The offline engines are CPU-bound and
blocking: they run in worker threads, at most ``LOCAL_AT_ONCE`` at a time (the
machine's cores are shared with the server and the chat model), and load on
first use, never at start.

A row of the ledger per call: ``endpoint`` says which way it came
(``audio.transcriptions``, ``audio.speech``, ``dictation``, ``read_aloud``,
``file_transcript``), ``audio_seconds`` the audio heard or made, ``cost`` the
provider's price per minute from Admin > Voice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from parley.config import Settings
from parley.speech.audio import BadAudio, decode, encode
from parley.speech.choice import SpeechChoice, load_choice
from parley.speech.voices import (
    EspeakVoice,
    PiperVoice,
    SpeechFailed,
    Synthesized,
    espeak_available,
    sentences,
)
from parley.speech.whisper import Whisper
from parley.storage.db import Database
from parley.usage.ledger import UsageLedger

__all__ = ["LOCAL_VOICES", "SpeechService", "SpeechUnavailable", "Spoken", "Transcript"]

log = logging.getLogger(__name__)

LOCAL_AT_ONCE = 2
LOCAL_STT_MODEL = "whisper-tiny.en"
# The offline voices; OpenAI's voice names are accepted and spoken by the Piper voice,
# so clients written for OpenAI work unchanged.
LOCAL_VOICES = ("joe", "espeak")
OPENAI_VOICE_NAMES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}
)
REMOTE_TIMEOUT_S = 120.0


class SpeechUnavailable(Exception):
    """Speech is off, or its provider failed; ``message`` is safe to show a user."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(slots=True)
class Transcript:
    text: str
    seconds: float
    model: str


@dataclass(slots=True)
class Spoken:
    audio: bytes
    media_type: str
    seconds: float
    voice: str


class SpeechService:
    def __init__(self, settings: Settings, db: Database, ledger: UsageLedger | None) -> None:
        self.settings = settings
        self.db = db
        self.ledger = ledger
        self.whisper = Whisper(threads=settings.speech_threads)
        self.piper = PiperVoice(threads=settings.speech_threads)
        self.espeak = EspeakVoice()
        self._local = asyncio.Semaphore(LOCAL_AT_ONCE)

    async def choice(self) -> SpeechChoice:
        async with self.db.session() as session:
            return await load_choice(session, self.settings)

    # ----------------------------------------------------------- what works

    def local_voices(self) -> list[str]:
        voices = []
        if self.piper.available:
            voices.append("joe")
        if espeak_available():
            voices.append("espeak")
        return voices

    async def status(self) -> dict[str, Any]:
        choice = await self.choice()
        stt = choice.stt_provider != "none" and (
            choice.stt_provider == "openai" or self.whisper.available
        )
        voices = (
            list(choice.tts_voices)
            if choice.tts_provider == "openai"
            else self.local_voices()
            if choice.tts_provider == "local"
            else []
        )
        return {
            "transcription": stt,
            "speech": bool(voices),
            "stt_provider": choice.stt_provider,
            "tts_provider": choice.tts_provider,
            "voices": voices,
            "max_seconds": self.settings.speech_max_seconds,
            "max_bytes": self.settings.speech_max_bytes,
            "max_chars": self.settings.speech_max_chars,
        }

    # ---------------------------------------------------------- transcribe

    async def transcribe(
        self,
        user_id: str,
        data: bytes,
        filename: str,
        *,
        endpoint: str,
        api_key_id: str | None = None,
        conversation_id: str | None = None,
        prompt: str | None = None,
    ) -> Transcript:
        """The text of an audio file (``BadAudio`` for a bad file, ``SpeechUnavailable``
        when transcription is off or its provider failed)."""
        choice = await self.choice()
        if choice.stt_provider == "none":
            raise SpeechUnavailable(
                503, "speech_off", "Speech to text is turned off on this server."
            )
        if len(data) > self.settings.speech_max_bytes:
            raise BadAudio(
                413,
                "audio_too_large",
                f"'{filename}' is {len(data) / 1_048_576:,.1f} MiB; at most "
                f"{self.settings.speech_max_bytes / 1_048_576:,.0f} MiB of audio are accepted.",
            )
        started = time.monotonic()
        if choice.stt_provider == "openai":
            provider, model = "speech-openai", choice.stt_model
            seconds, text = await self._remote_transcribe(choice, data, filename, prompt)
        else:
            provider, model = "speech-local", LOCAL_STT_MODEL
            if not self.whisper.available:
                raise SpeechUnavailable(
                    503,
                    "speech_unavailable",
                    "Speech to text is not available on this server; ask your administrator.",
                )
            decoded = await asyncio.to_thread(
                decode, data, filename, self.settings.speech_max_seconds
            )
            async with self._local:
                result = await asyncio.to_thread(self.whisper.transcribe, decoded.samples)
            seconds, text = decoded.seconds, result.text
        self._record(
            user_id,
            endpoint,
            provider,
            model,
            seconds,
            choice.stt_price_per_minute,
            started,
            api_key_id,
            conversation_id,
        )
        return Transcript(text, seconds, model)

    async def _remote_transcribe(
        self, choice: SpeechChoice, data: bytes, filename: str, prompt: str | None
    ) -> tuple[float, str]:
        seconds: float | None = None
        try:  # the duration, for limits and prices, when the bytes can be read here
            decoded = await asyncio.to_thread(
                decode, data, filename, self.settings.speech_max_seconds
            )
            seconds = decoded.seconds
        except BadAudio as exc:
            if exc.code != "unsupported_audio":
                raise
        client = self._client(choice.stt_base_url, choice.stt_api_key)
        import openai

        try:
            extra: dict[str, Any] = {"prompt": prompt} if prompt else {}
            reply = await client.audio.transcriptions.create(
                model=choice.stt_model,
                file=(filename, data),
                response_format="verbose_json",
                **extra,
            )
        except openai.APIError as exc:
            log.warning("speech provider failed to transcribe: %s", exc)
            raise SpeechUnavailable(
                502, "speech_provider_failed", "The speech provider failed; try again later."
            ) from exc
        finally:
            await client.close()
        text = str(getattr(reply, "text", "") or "")
        if seconds is None:
            seconds = float(getattr(reply, "duration", 0.0) or 0.0)
        return seconds, text.strip()

    @staticmethod
    def _client(base_url: str | None, api_key: str | None) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=base_url or None,
            api_key=api_key or "none",
            timeout=REMOTE_TIMEOUT_S,
            max_retries=1,
        )

    # --------------------------------------------------------------- speak

    async def speak(
        self,
        user_id: str,
        text: str,
        *,
        voice: str,
        fmt: str,
        endpoint: str,
        api_key_id: str | None = None,
        conversation_id: str | None = None,
        speed: float = 1.0,
    ) -> Spoken:
        """``text`` spoken in ``voice`` as ``fmt`` audio (``wav``, ``pcm``; others with
        ffmpeg or a provider that makes them)."""
        choice = await self.choice()
        if choice.tts_provider == "none":
            raise SpeechUnavailable(
                503, "speech_off", "Text to speech is turned off on this server."
            )
        if not text.strip():
            raise BadAudio(400, "empty_input", "'input' is empty: send the text to speak.")
        if len(text) > self.settings.speech_max_chars:
            raise BadAudio(
                400,
                "input_too_long",
                f"'input' is {len(text):,} characters; at most "
                f"{self.settings.speech_max_chars:,} are spoken in one call. Split the text.",
            )
        started = time.monotonic()
        if choice.tts_provider == "openai":
            spoken = await self._remote_speak(choice, text, voice, fmt, speed)
            provider, model = "speech-openai", choice.tts_model
        else:
            spoken = await self._local_speak(text, voice, fmt, speed)
            provider, model = "speech-local", f"voice/{spoken.voice}"
        self._record(
            user_id,
            endpoint,
            provider,
            model,
            spoken.seconds,
            choice.tts_price_per_minute,
            started,
            api_key_id,
            conversation_id,
        )
        return spoken

    def _local_voice(self, voice: str) -> Any:
        name = voice.lower()
        if name == "espeak":
            if not self.espeak.available:
                raise SpeechUnavailable(
                    503, "speech_unavailable", "The espeak voice is not installed."
                )
            return self.espeak
        if name not in ("joe", "default", "parley") and name not in OPENAI_VOICE_NAMES:
            raise BadAudio(
                400,
                "unknown_voice",
                f"Unknown voice {voice!r}; this server speaks with: "
                f"{', '.join(self.local_voices()) or 'no voice'}.",
            )
        if self.piper.available:
            return self.piper
        if self.espeak.available:
            return self.espeak  # the always-available fallback
        raise SpeechUnavailable(
            503, "speech_unavailable", "Text to speech is not available on this server."
        )

    async def _local_speak(self, text: str, voice: str, fmt: str, speed: float) -> Spoken:
        engine = self._local_voice(voice)
        parts = sentences(text) or [text.strip()]

        def run() -> Synthesized:
            made = [engine.synthesize(part, speed) for part in parts]
            rate = made[0].rate
            gap = np.zeros(int(rate * 0.25), dtype=np.float32)
            pieces: list[np.ndarray] = []
            for piece in made:
                pieces += [piece.samples, gap]
            return Synthesized(np.concatenate(pieces[:-1]) if pieces else gap, rate)

        async with self._local:
            try:
                out = await asyncio.to_thread(run)
            except SpeechFailed as exc:
                log.warning("offline voice failed: %s", exc)
                raise SpeechUnavailable(
                    503, "speech_failed", "The voice failed to speak; try again later."
                ) from exc
        audio = await asyncio.to_thread(encode, out.samples, out.rate, fmt)
        media = "audio/wav" if fmt == "wav" else "audio/pcm" if fmt == "pcm" else f"audio/{fmt}"
        return Spoken(audio, media, len(out.samples) / out.rate, engine.name)

    async def _remote_speak(
        self, choice: SpeechChoice, text: str, voice: str, fmt: str, speed: float
    ) -> Spoken:
        import openai

        if choice.tts_voices and voice not in choice.tts_voices:
            raise BadAudio(
                400,
                "unknown_voice",
                f"Unknown voice {voice!r}; this server speaks with: "
                f"{', '.join(choice.tts_voices)}.",
            )
        client = self._client(choice.tts_base_url, choice.tts_api_key)
        try:
            reply = await client.audio.speech.create(
                model=choice.tts_model,
                voice=voice,
                input=text,
                response_format=fmt,
                speed=speed,
            )
            audio = reply.content
        except openai.APIError as exc:
            log.warning("speech provider failed to speak: %s", exc)
            raise SpeechUnavailable(
                502, "speech_provider_failed", "The speech provider failed; try again later."
            ) from exc
        finally:
            await client.close()
        seconds = _wav_seconds(audio) if fmt == "wav" else None
        if seconds is None:
            seconds = len(text) / 15.0  # about 15 characters a second of speech
        media = "audio/wav" if fmt == "wav" else "audio/mpeg" if fmt == "mp3" else f"audio/{fmt}"
        return Spoken(audio, media, seconds, voice)

    # --------------------------------------------------------------- ledger

    def _record(
        self,
        user_id: str,
        endpoint: str,
        provider: str,
        model: str,
        seconds: float,
        price_per_minute: float,
        started: float,
        api_key_id: str | None,
        conversation_id: str | None,
    ) -> None:
        if self.ledger is None:
            return
        self.ledger.record_soon(
            user_id=user_id,
            api_key_id=api_key_id,
            conversation_id=conversation_id,
            endpoint=endpoint,
            provider=provider,
            model=model,
            audio_seconds=round(seconds, 3),
            cost=price_per_minute * seconds / 60.0,
            latency_ms=(time.monotonic() - started) * 1000,
            outcome="ok",
        )


def _wav_seconds(data: bytes) -> float | None:
    try:
        return decode(data, "speech.wav", 24 * 3600).seconds
    except BadAudio:
        return None
