"""Audio in and out: sniffing, decoding to 16 kHz mono, limits, and encoding.

WAV (8/16/24/32-bit PCM, 32-bit float; any rate, any channels) is read here with
the standard library and numpy: it is what the web app's recorder sends and
what the offline voices make. Other containers (MP3, Ogg/Opus, WebM, M4A, FLAC)
are decoded by the ``ffmpeg`` program when it is installed: a separate process
(FFmpeg builds are often GPL), given the bytes on stdin and a time limit. No
decoder library is loaded into Parley's process.

Everything that can be wrong with an upload says so as ``BadAudio`` (a 4xx the
routes turn into a problem document): an unknown or mislabelled type, a header
that lies about its size, a truncated file, a recording over the duration limit
(checked from the header before decoding, and again on the decoded samples).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BadAudio",
    "Decoded",
    "audio_kind",
    "decode",
    "encode",
    "resample",
]

RATE = 16_000
FFMPEG_TIMEOUT_S = 60.0

# Magic bytes -> (kind, what a person calls it)
_CONTAINERS: list[tuple[int, bytes, str]] = [
    (0, b"ID3", "mp3"),
    (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (4, b"ftyp", "m4a"),
]


class BadAudio(Exception):
    """The audio cannot be used; ``message`` is for the person who sent it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(slots=True)
class Decoded:
    samples: np.ndarray  # float32 mono at 16 kHz
    seconds: float
    kind: str


def audio_kind(head: bytes) -> str | None:
    """``wav``, ``mp3``, ``ogg``, ``flac``, ``webm``, ``m4a``, or None (not audio)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    for offset, magic, kind in _CONTAINERS:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"  # an MPEG audio frame without an ID3 tag
    return None


def resample(samples: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    """Linear-interpolation resampling (speech only needs the band below 4 kHz,
    and every offline voice already makes 16-22 kHz)."""
    if rate == target or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    count = max(1, round(len(samples) * target / rate))
    positions = np.linspace(0, len(samples) - 1, count)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def _read_wav(data: bytes, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    """PCM or float WAV -> (mono float32, rate); the standard ``wave`` module does
    not read float WAVs, so chunks are walked here."""
    pos, fmt, rate, channels, bits = 12, 0, 0, 0, 0
    body: bytes | None = None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(chunk) < 16:
                break
            fmt = int.from_bytes(chunk[0:2], "little")
            channels = int.from_bytes(chunk[2:4], "little")
            rate = int.from_bytes(chunk[4:8], "little")
            bits = int.from_bytes(chunk[14:16], "little")
            if fmt == 0xFFFE and len(chunk) >= 26:  # WAVE_FORMAT_EXTENSIBLE
                fmt = int.from_bytes(chunk[24:26], "little")
        elif cid == b"data":
            body = chunk  # a size past the end (a streamed WAV) reads what is there
            break
        pos += 8 + size + (size & 1)
    if body is None or not rate or not channels or not bits:
        raise BadAudio(422, "truncated_audio", f"'{name}' is a WAV file with no audio in it.")
    if fmt not in (1, 3) or (fmt == 1 and bits not in (8, 16, 24, 32)) or (fmt == 3 and bits != 32):
        raise BadAudio(
            415,
            "unsupported_audio",
            f"'{name}' is a WAV encoding Parley cannot read; send PCM or float WAV.",
        )
    if not 4_000 <= rate <= 192_000 or channels > 16:
        raise BadAudio(422, "bad_audio", f"'{name}' has an impossible header ({rate} Hz).")
    width = bits // 8
    frames = len(body) // (width * channels)
    if frames == 0:
        raise BadAudio(422, "truncated_audio", f"'{name}' has no audio samples.")
    if frames / rate > max_seconds:
        raise too_long(name, frames / rate, max_seconds)
    body = body[: frames * width * channels]
    if fmt == 3:
        pcm = np.frombuffer(body, dtype="<f4").astype(np.float32)
    elif bits == 8:
        pcm = (np.frombuffer(body, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        pcm = np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0
    elif bits == 24:
        raw = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        pcm = value.astype(np.float32) / float(1 << 23)
    else:
        pcm = np.frombuffer(body, dtype="<i4").astype(np.float32) / float(1 << 31)
    mono = pcm.reshape(-1, channels).mean(axis=1)
    mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(mono, -1.0, 1.0).astype(np.float32), rate


def too_long(name: str, seconds: float, max_seconds: float) -> BadAudio:
    return BadAudio(
        413,
        "audio_too_long",
        f"'{name}' is {seconds:,.0f} seconds long; at most {max_seconds:,.0f} seconds are "
        "accepted. Split it into shorter recordings.",
    )


def _ffmpeg_decode(data: bytes, name: str, kind: str, max_seconds: float) -> np.ndarray:
    program = shutil.which("ffmpeg")
    if program is None:
        raise BadAudio(
            415,
            "unsupported_audio",
            f"'{name}' is {kind.upper()} audio, which this server cannot decode (it reads "
            "WAV; an administrator can install ffmpeg for MP3, Ogg, WebM, M4A and FLAC).",
        )
    try:
        done = subprocess.run(  # noqa: S603 (a fixed program; the audio goes on stdin)
            [
                program,
                *("-nostdin", "-hide_banner", "-loglevel", "error", "-i", "pipe:0"),
                *("-t", str(max_seconds + 1), "-ac", "1", "-ar", str(RATE)),
                *("-f", "s16le", "pipe:1"),
            ],
            input=data,
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BadAudio(422, "bad_audio", f"'{name}' took too long to decode.") from exc
    if done.returncode != 0 or not done.stdout:
        raise BadAudio(
            422, "truncated_audio", f"'{name}' could not be decoded: it is damaged or truncated."
        )
    pcm = np.frombuffer(done.stdout[: len(done.stdout) // 2 * 2], dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def decode(data: bytes, name: str, max_seconds: float) -> Decoded:
    """The upload as 16 kHz mono float32, or ``BadAudio`` saying what is wrong."""
    if not data:
        raise BadAudio(422, "empty_file", f"'{name}' is empty (0 bytes).")
    kind = audio_kind(data[:64])
    if kind is None:
        raise BadAudio(
            415,
            "unsupported_audio",
            f"'{name}' is not an audio file Parley knows (WAV, MP3, Ogg, WebM, M4A, FLAC).",
        )
    if kind == "wav":
        pcm, rate = _read_wav(data, name, max_seconds)
        samples = resample(pcm, rate)
    else:
        samples = _ffmpeg_decode(data, name, kind, max_seconds)
    seconds = len(samples) / RATE
    if seconds > max_seconds:
        raise too_long(name, seconds, max_seconds)
    return Decoded(samples, seconds, kind)


FORMATS = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit mono WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """``wav`` and ``pcm`` (OpenAI's: 24 kHz 16-bit little-endian mono) here; the
    compressed formats through the ffmpeg program when installed."""
    if fmt == "wav":
        return wav_bytes(samples, rate)
    if fmt == "pcm":
        return (np.clip(resample(samples, rate, 24_000), -1, 1) * 32767.0).astype("<i2").tobytes()
    program = shutil.which("ffmpeg")
    if program is None:
        raise BadAudio(
            400,
            "unsupported_format",
            f"This server makes 'wav' and 'pcm' audio; '{fmt}' needs ffmpeg, which is not "
            "installed. Ask for response_format 'wav'.",
        )
    codec = {
        "mp3": ("-f", "mp3"),
        "opus": ("-c:a", "libopus", "-f", "ogg"),
        "aac": ("-c:a", "aac", "-f", "adts"),
        "flac": ("-f", "flac"),
    }[fmt]
    done = subprocess.run(  # noqa: S603 (a fixed program; the audio goes on stdin)
        [program, "-nostdin", "-loglevel", "error", "-f", "wav", "-i", "pipe:0", *codec, "pipe:1"],
        input=wav_bytes(samples, rate),
        capture_output=True,
        timeout=FFMPEG_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise BadAudio(500, "encode_failed", f"Could not make {fmt} audio.")
    return done.stdout
