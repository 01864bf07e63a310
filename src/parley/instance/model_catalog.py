"""The curated list of GGUF models Admin > Models offers to download.

A short, maintained table of small instruct models that run on a CPU and are a
real step up from the bundled 135M starter. Sizes are what the Q4_K_M files
weighed when the table was written, for the list only: a download checks the
real size (the server's ``Content-Length``) against the free disk space, and
the checksum comes from Hugging Face at download time (never hard-coded here,
so a re-uploaded file cannot be refused for a stale hash).

Any other repo id and file name can be downloaded too; this table only saves
the admin from hunting for a good one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CuratedModel:
    """One entry of the list: where the file lives and what it is for."""

    name: str
    repo: str
    file: str
    approx_bytes: int
    licence: str
    good_for: str
    tools: bool  # follows a tool schema well enough to be offered tools


CURATED: tuple[CuratedModel, ...] = (
    CuratedModel(
        name="Qwen2.5 0.5B Instruct",
        repo="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        file="qwen2.5-0.5b-instruct-q4_k_m.gguf",
        approx_bytes=491_400_000,
        licence="Apache-2.0",
        good_for="The smallest useful upgrade: quick answers and short summaries on any CPU.",
        tools=False,
    ),
    CuratedModel(
        name="Llama 3.2 1B Instruct",
        repo="bartowski/Llama-3.2-1B-Instruct-GGUF",
        file="Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        approx_bytes=807_700_000,
        licence="Llama 3.2 Community License",
        good_for="Fast everyday chat and rewriting; weak at arithmetic.",
        tools=False,
    ),
    CuratedModel(
        name="Qwen2.5 1.5B Instruct",
        repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        file="qwen2.5-1.5b-instruct-q4_k_m.gguf",
        approx_bytes=1_117_000_000,
        licence="Apache-2.0",
        good_for="The best balance on a laptop: chat, questions about files, simple tool use.",
        tools=True,
    ),
    CuratedModel(
        name="Gemma 2 2B Instruct",
        repo="bartowski/gemma-2-2b-it-GGUF",
        file="gemma-2-2b-it-Q4_K_M.gguf",
        approx_bytes=1_709_000_000,
        licence="Gemma Terms of Use",
        good_for="Well-written prose and summaries; no system prompt of its own.",
        tools=False,
    ),
    CuratedModel(
        name="Llama 3.2 3B Instruct",
        repo="bartowski/Llama-3.2-3B-Instruct-GGUF",
        file="Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        approx_bytes=2_019_000_000,
        licence="Llama 3.2 Community License",
        good_for="Stronger reasoning and instructions; about half the speed of the 1B.",
        tools=True,
    ),
    CuratedModel(
        name="Qwen2.5 3B Instruct",
        repo="Qwen/Qwen2.5-3B-Instruct-GGUF",
        file="qwen2.5-3b-instruct-q4_k_m.gguf",
        approx_bytes=2_104_000_000,
        licence="Qwen Research License (non-commercial)",
        good_for="The strongest here at maths, code and tool calls; research use only.",
        tools=True,
    ),
)


def curated_for(file: str) -> CuratedModel | None:
    """The curated entry whose file this is, if any."""
    for entry in CURATED:
        if entry.file == file:
            return entry
    return None
