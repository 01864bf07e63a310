"""What Parley knows about common models, for those an endpoint lists without details.

A discovered model (``GET /models``) usually comes with nothing but its id, so
Parley would treat every one as an 8,192-token text-only model that costs
nothing. This table fills the gaps: context window, longest answer, vision,
tool calling, reasoning, and list prices in USD per million tokens (input,
cached input, output). What the endpoint itself says (vLLM's ``max_model_len``,
OpenRouter's ``context_length``, Ollama's ``/api/show``) wins over the table,
and an admin's per-model settings (Admin > Providers > Edit) win over both.

Sources, read on 2025-11-20 (check them when updating the table):
OpenAI: platform.openai.com/docs/models and openai.com/api/pricing;
Anthropic: docs.anthropic.com/en/docs/about-claude/models/overview and
anthropic.com/pricing (cached input = cache reads);
Google: ai.google.dev/gemini-api/docs/models and ai.google.dev/gemini-api/docs/pricing
(prices for prompts up to 200k tokens);
Mistral: docs.mistral.ai/getting-started/models and mistral.ai/pricing;
Meta Llama, Qwen, Gemma: the model cards on huggingface.co (``max_position_embeddings``
and the cards' context lengths) and ollama.com/library (capabilities). Open-weight
models have no list price: self-hosted they cost what your hardware costs, so 0.

Matching: the name is lower-cased, anything up to the last ``/`` (OpenRouter's
``openai/``, Hugging Face's ``meta-llama/``) is dropped, ``.`` and ``_`` become
``-``, and the first pattern found at a word start, not followed by a letter,
wins; more specific patterns come first (``gpt-4o-mini`` before ``gpt-4o``).
Dated snapshots (``-2024-08-06``) and Ollama tags (``:8b``) match their family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KNOWN_MODELS", "TABLE_DATE", "KnownModel", "known_model"]

TABLE_DATE = "2025-11-20"


@dataclass(frozen=True, slots=True)
class KnownModel:
    pattern: str
    context_window: int
    max_output_tokens: int
    supports_vision: bool = False
    supports_tools: bool = True
    supports_reasoning: bool = False
    input_price: float = 0.0
    cached_input_price: float = 0.0
    output_price: float = 0.0

    def fields(self) -> dict[str, int | float | bool]:
        """The ``ModelConfig`` fields this entry fills."""
        return {
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "supports_vision": self.supports_vision,
            "supports_tools": self.supports_tools,
            "supports_reasoning": self.supports_reasoning,
            "input_price": self.input_price,
            "cached_input_price": self.cached_input_price,
            "output_price": self.output_price,
        }


K = KnownModel

# pattern, context window, max output, vision, tools, reasoning, input, cached input, output
KNOWN_MODELS: tuple[KnownModel, ...] = (
    # ---- OpenAI
    K("gpt-5-nano", 400_000, 128_000, True, True, True, 0.05, 0.005, 0.40),
    K("gpt-5-mini", 400_000, 128_000, True, True, True, 0.25, 0.025, 2.00),
    K("gpt-5", 400_000, 128_000, True, True, True, 1.25, 0.125, 10.00),
    K("gpt-4-1-nano", 1_047_576, 32_768, True, True, False, 0.10, 0.025, 0.40),
    K("gpt-4-1-mini", 1_047_576, 32_768, True, True, False, 0.40, 0.10, 1.60),
    K("gpt-4-1", 1_047_576, 32_768, True, True, False, 2.00, 0.50, 8.00),
    K("gpt-4o-mini", 128_000, 16_384, True, True, False, 0.15, 0.075, 0.60),
    K("gpt-4o", 128_000, 16_384, True, True, False, 2.50, 1.25, 10.00),
    K("gpt-4-turbo", 128_000, 4_096, True, True, False, 10.00, 0.0, 30.00),
    K("gpt-4", 8_192, 8_192, False, True, False, 30.00, 0.0, 60.00),
    K("gpt-3-5-turbo", 16_385, 4_096, False, True, False, 0.50, 0.0, 1.50),
    K("gpt-oss-120b", 131_072, 131_072, False, True, True),
    K("gpt-oss-20b", 131_072, 131_072, False, True, True),
    K("o4-mini", 200_000, 100_000, True, True, True, 1.10, 0.275, 4.40),
    K("o3-mini", 200_000, 100_000, False, True, True, 1.10, 0.55, 4.40),
    K("o3", 200_000, 100_000, True, True, True, 2.00, 0.50, 8.00),
    K("o1-mini", 128_000, 65_536, False, False, True, 1.10, 0.55, 4.40),
    K("o1", 200_000, 100_000, True, True, True, 15.00, 7.50, 60.00),
    # ---- Anthropic (both "claude-sonnet-4-5" and OpenRouter's "claude-3.5-sonnet" forms)
    K("claude-opus-4-5", 200_000, 64_000, True, True, True, 5.00, 0.50, 25.00),
    K("claude-opus-4-1", 200_000, 32_000, True, True, True, 15.00, 1.50, 75.00),
    K("claude-opus-4", 200_000, 32_000, True, True, True, 15.00, 1.50, 75.00),
    K("claude-sonnet-4-5", 200_000, 64_000, True, True, True, 3.00, 0.30, 15.00),
    K("claude-sonnet-4", 200_000, 64_000, True, True, True, 3.00, 0.30, 15.00),
    K("claude-haiku-4-5", 200_000, 64_000, True, True, True, 1.00, 0.10, 5.00),
    K("claude-3-7-sonnet", 200_000, 64_000, True, True, True, 3.00, 0.30, 15.00),
    K("claude-3-5-sonnet", 200_000, 8_192, True, True, False, 3.00, 0.30, 15.00),
    K("claude-3-5-haiku", 200_000, 8_192, True, True, False, 0.80, 0.08, 4.00),
    K("claude-3-opus", 200_000, 4_096, True, True, False, 15.00, 1.50, 75.00),
    K("claude-3-haiku", 200_000, 4_096, True, True, False, 0.25, 0.03, 1.25),
    # ---- Google
    K("gemini-2-5-pro", 1_048_576, 65_536, True, True, True, 1.25, 0.31, 10.00),
    K("gemini-2-5-flash-lite", 1_048_576, 65_536, True, True, True, 0.10, 0.025, 0.40),
    K("gemini-2-5-flash", 1_048_576, 65_536, True, True, True, 0.30, 0.075, 2.50),
    K("gemini-2-0-flash-lite", 1_048_576, 8_192, True, True, False, 0.075, 0.0, 0.30),
    K("gemini-2-0-flash", 1_048_576, 8_192, True, True, False, 0.10, 0.025, 0.40),
    K("gemini-1-5-pro", 2_097_152, 8_192, True, True, False, 1.25, 0.3125, 5.00),
    K("gemini-1-5-flash", 1_048_576, 8_192, True, True, False, 0.075, 0.01875, 0.30),
    K("gemma-?3n", 32_768, 8_192, True, False, False),
    K("gemma-?3[-:]1b", 32_768, 8_192, False, False, False),
    K("gemma-?3", 131_072, 8_192, True, False, False),
    K("gemma-?2", 8_192, 8_192, False, False, False),
    # ---- Mistral
    K("magistral-medium", 40_000, 40_000, False, True, True, 2.00, 0.0, 5.00),
    K("magistral-small", 40_000, 40_000, False, True, True, 0.50, 0.0, 1.50),
    K("pixtral-large", 131_072, 131_072, True, True, False, 2.00, 0.0, 6.00),
    K("pixtral-12b", 131_072, 131_072, True, True, False, 0.15, 0.0, 0.15),
    K("mistral-large", 131_072, 131_072, False, True, False, 2.00, 0.0, 6.00),
    K("mistral-medium", 131_072, 131_072, True, True, False, 0.40, 0.0, 2.00),
    K("mistral-small", 131_072, 131_072, True, True, False, 0.10, 0.0, 0.30),
    K("codestral", 256_000, 256_000, False, True, False, 0.30, 0.0, 0.90),
    K("ministral-8b", 131_072, 131_072, False, True, False, 0.10, 0.0, 0.10),
    K("ministral-3b", 131_072, 131_072, False, True, False, 0.04, 0.0, 0.04),
    K("(?:open-)?mistral-nemo", 131_072, 131_072, False, True, False, 0.15, 0.0, 0.15),
    K("mixtral-8x22b", 65_536, 65_536, False, True, False),
    K("mixtral(?:-8x7b)?", 32_768, 32_768, False, True, False),
    K("mistral(?:-7b)?", 32_768, 32_768, False, True, False),
    # ---- Meta Llama (open weights)
    K("llama-?4-scout", 10_485_760, 16_384, True, True, False),
    K("llama-?4-maverick", 1_048_576, 16_384, True, True, False),
    K("llama-?3-3", 131_072, 8_192, False, True, False),
    K(r"llama-?3-2-(?:\d+b-)?vision", 131_072, 8_192, True, False, False),
    K("llama-?3-2", 131_072, 8_192, False, True, False),
    K("llama-?3-1", 131_072, 8_192, False, True, False),
    K("llama-?3", 8_192, 8_192, False, False, False),
    K("llama-?2", 4_096, 4_096, False, False, False),
    # ---- Qwen (open weights)
    K("qwen-?3-vl", 262_144, 32_768, True, True, True),
    K("qwen-?3-coder", 262_144, 65_536, False, True, False),
    K("qwen-?3", 40_960, 32_768, False, True, True),
    K("qwq", 131_072, 32_768, False, True, True),
    K("qwen-?2-5-?vl", 128_000, 8_192, True, False, False),
    K("qwen-?2-5-coder", 32_768, 8_192, False, True, False),
    K("qwen-?2-5", 32_768, 8_192, False, True, False),
    K("qwen-?2-vl", 32_768, 8_192, True, False, False),
    K("qwen-?2", 32_768, 8_192, False, True, False),
)

_COMPILED = tuple(
    (re.compile(rf"(?<![a-z0-9])(?:{entry.pattern})(?![a-z])"), entry) for entry in KNOWN_MODELS
)


def normalize(name: str) -> str:
    base = name.strip().lower().rsplit("/", 1)[-1]
    return re.sub(r"[._\s]+", "-", base)


def known_model(name: str) -> KnownModel | None:
    """The table's entry for a model id, or ``None`` when the table does not know it."""
    key = normalize(name)
    for pattern, entry in _COMPILED:
        if pattern.search(key):
            return entry
    return None
