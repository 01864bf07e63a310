"""Settings of the files-and-knowledge feature, read like every other setting.

Precedence, highest first: ``PARLEY_*`` environment variables, top-level keys of
the same TOML file as the core settings, defaults. They live here (not in
``parley.config``) so the feature stays one package; the README lists them.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from parley.config import Settings

__all__ = ["KnowledgeSettings", "knowledge_settings"]

MiB = 1024 * 1024


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore")

    files_max_bytes: int = 50 * MiB
    files_max_pages: int = 2000
    files_max_unzipped_bytes: int = 300 * MiB
    files_max_zip_ratio: int = 200
    embedding_provider: Literal["local", "openai", "none"] = "local"
    embedding_model: str | None = None  # default: all-MiniLM-L6-v2 / text-embedding-3-small
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_batch: int = 32
    knowledge_wait_s: float = 3.0
    knowledge_top_k: int = 8
    chunk_chars: int = 1200


def knowledge_settings(settings: Settings, **overrides: Any) -> KnowledgeSettings:
    """Knowledge settings for a core ``Settings`` (its TOML file, then the environment)."""
    path = settings.config_file or settings.data_dir / "parley.toml"
    values: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as fh:
            values = tomllib.load(fh)
    fields = KnowledgeSettings.model_fields
    env_keys = {name for name in fields if f"PARLEY_{name.upper()}" in os.environ}
    merged = {k: v for k, v in values.items() if k in fields and k not in env_keys}
    merged.update(overrides)
    return KnowledgeSettings(**merged)
