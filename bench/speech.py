"""``python -m bench speech``: the offline speech stack through a real server.

- Round trip: each of the sentences in ``bench/data/speech_sentences.txt`` (105,
  written for this benchmark, no digits) is spoken by ``/v1/audio/speech`` with the
  Piper voice and with espeak-ng, and the WAV is sent back to
  ``/v1/audio/transcriptions`` (Whisper tiny.en). Word error rate over all words
  (lower case, punctuation dropped); targets 10 % (Piper) and 15 % (espeak-ng).
- Real-time factor: the transcription request's wall time over the audio's length
  (HTTP and decoding included); target 0.3.
- Read aloud: the web app posts each sentence the moment it is complete; "first
  audio" is that request's time until the WAV is in hand (p50, target 400 ms). The
  baseline is what reading aloud would wait without sentence streaming: the whole
  three-sentence answer synthesized in one request, after the answer ended.

- Voice mode, end of the user's speech to the first audio of the answer, by stage
  (the offline cascade and a scripted model): detection (the browser's detector
  waits 0.8 s of quiet: a constant), transcription of the utterance, the model's
  first sentence (``/v1/chat/completions`` streaming from the scripted upstream),
  synthesis of that sentence; p50 of each and of their sum (target 1.5 s).

The machine is shared: the load average is printed beside the numbers.
"""

from __future__ import annotations

import io
import os
import re
import time
import wave
from pathlib import Path

import httpx
import openai

from bench.common import (
    PYTHON,
    Proc,
    Table,
    base_env,
    create_api_key,
    fmt,
    free_port,
    median,
    pct,
    spawn,
    start_parley,
    temp_dir,
    wait_http,
)

SENTENCES = Path(__file__).parent / "data" / "speech_sentences.txt"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("-", " "))


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def seconds_of(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as w:
        return w.getnframes() / w.getframerate()


ANSWER = (
    "Of course, I can help with that. Here is a short plan for your morning, with the "
    "most important things first. Start with the shopping, then the calls."
)


def _answering_upstream(workdir: Path) -> Proc:
    """The scripted model, answering every question with ``ANSWER`` (sentences, as a
    real model's answer has)."""
    port = free_port()
    cmd = [PYTHON, "-m", "parley.providers.testing", "--port", str(port)]
    cmd += ["--default-text", ANSWER, "--models", "scripted-model"]
    proc = spawn("upstream", cmd, base_env(), workdir)
    proc.url = f"http://127.0.0.1:{port}/v1"
    wait_http(proc, f"{proc.url}/models")
    return proc


def run(quick: bool) -> Table:
    sentences = [s for s in SENTENCES.read_text().splitlines() if s.strip()]
    if quick:
        sentences = sentences[:20]
    table = Table("speech", "Speech: offline round trip and read aloud", "whole answer")
    workdir = temp_dir("bench-speech")
    upstream = _answering_upstream(workdir)
    env = {
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_API_KEY": "sk-bench",
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        "PARLEY_TITLE_MODEL": "none",
    }
    server = start_parley(workdir, env=env)
    stages: dict[str, list[float]] = {"transcription": [], "model": [], "synthesis": []}
    try:
        key = create_api_key(server.url)
        sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, timeout=300, max_retries=0)
        sdk.audio.speech.create(model="tts-1", voice="joe", input="Warm up.", response_format="wav")
        warm = sdk.audio.speech.create(
            model="tts-1", voice="espeak", input="Warm up.", response_format="wav"
        )
        sdk.audio.transcriptions.create(model="whisper-1", file=("w.wav", warm.content))
        results: dict[str, dict[str, float]] = {}
        transcribe_s = audio_s = 0.0
        worst: list[tuple[float, str, str, str]] = []
        for voice in ("joe", "espeak"):
            errors = total = 0
            for sentence in sentences:
                wav = sdk.audio.speech.create(
                    model="tts-1", voice=voice, input=sentence, response_format="wav"
                ).content
                start = time.perf_counter()
                heard = sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", wav))
                transcribe_s += time.perf_counter() - start
                audio_s += seconds_of(wav)
                ref, hyp = words(sentence), words(heard.text)
                distance = edit_distance(ref, hyp)
                errors += distance
                total += len(ref)
                if distance:
                    worst.append((distance / len(ref), voice, sentence, heard.text))
            results[voice] = {"wer": errors / total, "words": total}
        rtf = transcribe_s / audio_s

        # read aloud: first sentence alone vs the whole answer
        first: list[float] = []
        whole: list[float] = []
        with httpx.Client(base_url=server.url, timeout=120) as web:
            body = {"email": "bench@example.com", "password": "bench-password-123"}
            web.post("/api/auth/login", json=body).raise_for_status()
            web.headers["X-CSRF-Token"] = web.cookies.get("parley_csrf") or ""
            count = 10 if quick else 30
            for i in range(count):
                answer = sentences[i % len(sentences) : i % len(sentences) + 3]
                start = time.perf_counter()
                r = web.post("/api/speech/speech", json={"text": answer[0], "voice": "joe"})
                r.raise_for_status()
                first.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                r = web.post("/api/speech/speech", json={"text": " ".join(answer), "voice": "joe"})
                r.raise_for_status()
                whole.append((time.perf_counter() - start) * 1000)

            # voice mode's cascade, stage by stage
            for i in range(5 if quick else 15):
                said = sentences[i % len(sentences)]
                wav = sdk.audio.speech.create(
                    model="tts-1", voice="joe", input=said, response_format="wav"
                ).content
                start = time.perf_counter()
                r = web.post("/api/speech/transcriptions", files={"file": ("u.wav", wav)})
                r.raise_for_status()
                stages["transcription"].append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                text = ""
                stream = sdk.chat.completions.create(
                    model="openai/scripted-model",
                    messages=[{"role": "user", "content": r.json()["text"]}],
                    stream=True,
                )
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        text += chunk.choices[0].delta.content
                        if re.search(r"[.!?]\s", text + " "):
                            break
                stream.close()
                stages["model"].append((time.perf_counter() - start) * 1000)
                first_sentence = re.split(r"(?<=[.!?])\s", text)[0]
                start = time.perf_counter()
                web.post(
                    "/api/speech/speech", json={"text": first_sentence, "voice": "joe"}
                ).raise_for_status()
                stages["synthesis"].append((time.perf_counter() - start) * 1000)
    finally:
        server.stop()
        upstream.stop()

    table.add(
        f"WER, Piper joe voice ({results['joe']['words']:.0f} words)",
        fmt(results["joe"]["wer"] * 100, " %"),
        "-",
        "<= 10 %",
        results["joe"]["wer"] <= 0.10,
    )
    table.add(
        "WER, espeak-ng voice",
        fmt(results["espeak"]["wer"] * 100, " %"),
        "-",
        "<= 15 %",
        results["espeak"]["wer"] <= 0.15,
    )
    table.add("real-time factor of transcription", fmt(rtf, "", 3), "-", "<= 0.3", rtf <= 0.3)
    table.add(
        "read aloud: first audio after the first sentence, p50",
        fmt(median(first), " ms", 0),
        fmt(median(whole), " ms", 0),
        "<= 400 ms",
        median(first) <= 400,
    )
    table.add(
        "read aloud: first audio, p90",
        fmt(pct(first, 90), " ms", 0),
        fmt(pct(whole, 90), " ms", 0),
    )
    detection = 800.0
    cascade = [
        detection + t + m + s
        for t, m, s in zip(
            stages["transcription"], stages["model"], stages["synthesis"], strict=True
        )
    ]
    table.add("voice mode: detection (quiet after speech)", fmt(detection, " ms", 0))
    for name in ("transcription", "model", "synthesis"):
        table.add(f"voice mode: {name}, p50", fmt(median(stages[name]), " ms", 0))
    table.add(
        "voice mode: end of speech to first audio, p50",
        fmt(median(cascade), " ms", 0),
        "-",
        "<= 1500 ms",
        median(cascade) <= 1500,
    )
    table.notes.append(f"{len(sentences)} sentences per voice; load average {os.getloadavg()}")
    table.notes.append(
        "baseline column: the whole three-sentence answer in one request, as reading "
        "aloud without sentence streaming would wait after the answer ended"
    )
    for rate, voice, sentence, heard in sorted(worst, reverse=True)[:5]:
        table.notes.append(f"{voice} {rate:.0%}: {sentence!r} -> {heard!r}")
    table.raw.update(
        {
            "results": results,
            "rtf": rtf,
            "first_ms": first,
            "whole_ms": whole,
            "stages_ms": stages,
        }
    )
    return table
