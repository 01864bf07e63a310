"""The known-model table: ids as endpoints spell them find their family."""

from __future__ import annotations

import pytest

from parley.config import ModelConfig
from parley.providers.discovery import info_from_config, known_fields
from parley.providers.known_models import KNOWN_MODELS, TABLE_DATE, known_model


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4.1", "gpt-4-1"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
        ("models/gemini-2.5-flash-lite", "gemini-2-5-flash-lite"),
        ("mistral-small3.2:24b", "mistral-small"),
        ("llama3.2:3b", "llama-?3-2"),
        ("meta-llama/Llama-3.2-11B-Vision-Instruct", r"llama-?3-2-(?:\d+b-)?vision"),
        ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen-?2-5-?vl"),
        ("qwen3:8b", "qwen-?3"),
        ("gemma3:1b", "gemma-?3[-:]1b"),
    ],
)
def test_names_find_their_family(name: str, pattern: str) -> None:
    found = known_model(name)
    assert found is not None and found.pattern == pattern


@pytest.mark.parametrize("name", ["codellama:7b", "scripted-model", "my-finetune", "ollama"])
def test_unknown_names_are_not_guessed(name: str) -> None:
    assert known_model(name) is None


def test_the_table_is_sane() -> None:
    assert TABLE_DATE
    for entry in KNOWN_MODELS:
        assert entry.context_window >= entry.max_output_tokens > 0 or entry.context_window > 0
        assert entry.cached_input_price <= entry.input_price


def test_config_fields_left_out_take_the_table_values() -> None:
    # a config-file entry that only names the model and its price
    config = ModelConfig.model_validate({"name": "gpt-4o-mini", "input_price": 9.0})
    info = info_from_config("p", config, known_fields("gpt-4o-mini"))
    assert info.context_window == 128_000 and info.supports_vision
    assert info.input_price == 9.0  # what the config says wins
