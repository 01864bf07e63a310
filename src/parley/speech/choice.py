"""Which recognizer and which voice this instance uses: Admin > Voice.

The environment (``PARLEY_SPEECH_*``) gives the start values; once an admin
saves, the ``speech`` row of the instance settings (``app_settings``, shared by
every worker) overrides them until the admin resets it. Read per request (one
primary-key read), so a change applies on every worker at once. API keys are
write-only: stored and used, shown only as their last four characters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import Settings
from parley.instance.values import clear_value, get_value, set_value

__all__ = ["ROW_KEY", "SpeechChoice", "load_choice", "reset_choice", "save_choice"]

ROW_KEY = "speech"
ProviderKind = Literal["local", "openai", "none"]


@dataclass(frozen=True, slots=True)
class SpeechChoice:
    stt_provider: ProviderKind = "local"
    stt_base_url: str | None = None
    stt_api_key: str | None = None
    stt_model: str = "whisper-1"
    stt_price_per_minute: float = 0.0
    tts_provider: ProviderKind = "local"
    tts_base_url: str | None = None
    tts_api_key: str | None = None
    tts_model: str = "tts-1"
    tts_voices: tuple[str, ...] = field(
        default=("alloy", "echo", "fable", "onyx", "nova", "shimmer")
    )
    tts_price_per_minute: float = 0.0
    saved: bool = False  # an admin's choice (else the environment's)

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechChoice:
        return cls(
            stt_provider=settings.speech_stt_provider,
            stt_base_url=settings.speech_stt_base_url,
            stt_api_key=settings.speech_stt_api_key,
            stt_model=settings.speech_stt_model,
            tts_provider=settings.speech_tts_provider,
            tts_base_url=settings.speech_tts_base_url,
            tts_api_key=settings.speech_tts_api_key,
            tts_model=settings.speech_tts_model,
        )

    def stored(self) -> dict[str, Any]:
        value = asdict(self)
        value["tts_voices"] = list(self.tts_voices)
        value.pop("saved")
        return value


_FIELDS = set(SpeechChoice.__dataclass_fields__) - {"saved"}


async def load_choice(db: AsyncSession, settings: Settings) -> SpeechChoice:
    base = SpeechChoice.from_settings(settings)
    row = await get_value(db, ROW_KEY)
    if not isinstance(row, dict):
        return base
    values = {k: v for k, v in row.items() if k in _FIELDS}
    if "tts_voices" in values:
        voices = values["tts_voices"]
        values["tts_voices"] = tuple(str(v) for v in voices) if isinstance(voices, list) else ()
    try:
        return replace(base, **values, saved=True)
    except TypeError:
        return base  # a row from another version: the environment's values


async def save_choice(db: AsyncSession, choice: SpeechChoice) -> None:
    await set_value(db, ROW_KEY, choice.stored())


async def reset_choice(db: AsyncSession) -> None:
    await clear_value(db, ROW_KEY)
