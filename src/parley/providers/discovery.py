"""Which models an HTTP provider has, and what each one's settings are.

Split from ``openai_compat.py`` because the bookkeeping is shared by every
HTTP provider (``anthropic.py`` subclasses ``DiscoveringProvider`` too): the
configured models plus, when ``discover_models`` is on, those the server lists
(cached, one request shared by concurrent callers, a failure logged and
answered from the last list), and each model's settings merged from its config
entry, what the endpoint said about it, and the known-model table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from parley.config import ModelConfig, ProviderConfig
from parley.errors import ModelNotFound, ProviderError
from parley.providers.base import ModelInfo, ProviderKind
from parley.providers.failures import transport_error
from parley.providers.known_models import known_model

__all__ = [
    "DISCOVERY_TIMEOUT_S",
    "DISCOVERY_TTL_S",
    "DiscoveringProvider",
    "info_from_config",
    "known_fields",
    "listed_meta",
    "ollama_meta",
]

log = logging.getLogger(__name__)

DISCOVERY_TTL_S = 60.0
DISCOVERY_TIMEOUT_S = 10.0


def info_from_config(
    provider: str, model: ModelConfig, base: dict[str, Any] | None = None
) -> ModelInfo:
    """``model``'s settings over ``base`` (what the endpoint and the known-model table
    say): a field the config left out takes ``base``'s value, then the default."""
    values = model.model_dump()
    if base:
        explicit = model.model_fields_set
        values.update({k: v for k, v in base.items() if k not in explicit and k in values})
    visible = values["visible_to"]
    return ModelInfo(
        provider=provider,
        name=model.name,
        context_window=values["context_window"],
        max_output_tokens=values["max_output_tokens"],
        supports_tools=values["supports_tools"],
        supports_vision=values["supports_vision"],
        supports_reasoning=values["supports_reasoning"],
        input_price=values["input_price"],
        cached_input_price=values["cached_input_price"],
        output_price=values["output_price"],
        display_name=values["display_name"],
        enabled=values["enabled"],
        visible_to=None if visible is None else tuple(visible),
    )


def known_fields(name: str) -> dict[str, Any]:
    """The known-model table's fields for ``name`` (empty when it is not in the table)."""
    entry = known_model(name)
    return entry.fields() if entry is not None else {}


def listed_meta(extra: dict[str, Any]) -> dict[str, Any]:
    """Model settings an entry of ``GET /models`` carries beyond its id: vLLM's
    ``max_model_len``, OpenRouter's ``context_length`` and input modalities."""
    meta: dict[str, Any] = {}
    for key in ("max_model_len", "context_length", "context_window"):
        value = extra.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            meta["context_window"] = value
            break
    architecture = extra.get("architecture")
    if isinstance(architecture, dict):
        modalities = architecture.get("input_modalities")
        if isinstance(modalities, list):
            meta["supports_vision"] = "image" in modalities
    return meta


def ollama_meta(answer: Any) -> dict[str, Any]:
    """Context length and capabilities from Ollama's ``/api/show`` answer."""
    meta: dict[str, Any] = {}
    if not isinstance(answer, dict):
        return meta
    info = answer.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if key.endswith(".context_length") and isinstance(value, int) and value > 0:
                meta["context_window"] = value
                break
    capabilities = answer.get("capabilities")
    if isinstance(capabilities, list):
        meta["supports_vision"] = "vision" in capabilities
        meta["supports_tools"] = "tools" in capabilities
        meta["supports_reasoning"] = "thinking" in capabilities
    return meta


class DiscoveringProvider:
    """Shared model bookkeeping for HTTP providers: configured models plus,
    when ``discover_models`` is on, those the server lists (cached for
    ``DISCOVERY_TTL_S``; a failed discovery is logged and falls back).

    A model's settings are, highest first: what its config entry sets (the admin's
    per-model settings for providers added in the web app), what the endpoint
    said about it (``self.endpoint_meta``, filled by discovery), the known-model
    table (``parley.providers.known_models``), the defaults."""

    kind: ProviderKind

    def __init__(self, config: ProviderConfig, base_url: str) -> None:
        self.name = config.name
        self.config = config
        self.base_url = base_url
        self.has_key = bool(config.resolved_api_key())
        self._configs = {m.name: m for m in config.models}
        self.endpoint_meta: dict[str, dict[str, Any]] = {}
        self._discovered: list[str] | None = None
        self._discovered_at = 0.0
        self._discovery: asyncio.Task[list[str]] | None = None

    async def discover_model_names(self) -> list[str]:
        """Ask the server for its models now, raising ``ProviderError`` on failure."""
        raise NotImplementedError

    def map_transport(self, exc: BaseException, *, started: bool) -> ProviderError:
        return transport_error(
            self.name, exc, base_url=self.base_url, timeout=self.config.timeout_s, started=started
        )

    async def _discover_cached(self) -> list[str]:
        """Concurrent callers share one in-flight request."""
        if (
            self._discovered is not None
            and time.monotonic() - self._discovered_at < DISCOVERY_TTL_S
        ):
            return self._discovered
        loop = asyncio.get_running_loop()
        task = self._discovery
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._discovery = loop.create_task(self._refresh())
        return await asyncio.shield(task)

    async def _refresh(self) -> list[str]:
        try:
            names = await self.discover_model_names()
        except ProviderError as exc:
            log.warning("model discovery for provider %r failed: %s", self.name, exc.message)
            names = self._discovered or []
        self._discovered = names
        self._discovered_at = time.monotonic()
        return names

    def _info(self, name: str) -> ModelInfo:
        base = known_fields(name)
        base.update(self.endpoint_meta.get(name, {}))
        config = self._configs.get(name) or ModelConfig(name=name)
        return info_from_config(self.name, config, base)

    async def list_models(self) -> list[ModelInfo]:
        """The enabled models (the admin's per-model switch)."""
        if self.config.discover_models:
            await self._discover_cached()
        return [info for info in self.model_infos() if info.enabled]

    def model_infos(self) -> list[ModelInfo]:
        """Every model known so far, turned off ones included (the admin page)."""
        return [self._info(name) for name in self.model_names()]

    def model_info(self, name: str) -> ModelInfo:
        """Configured info, or what is known of a discovered (or not yet discovered) model."""
        if name not in self._configs:
            known = self._discovered
            if not self.config.discover_models or (known and name not in known):
                raise ModelNotFound(
                    f"The provider '{self.name}' has no model '{name}'; "
                    f"available: {', '.join(self.model_names()) or 'none'}."
                )
        info = self._info(name)
        if not info.enabled:
            raise ModelNotFound(
                f"The model '{self.name}/{name}' is turned off; an admin can turn it on "
                "in Admin > Providers."
            )
        return info

    def model_names(self) -> list[str]:
        names = list(self._configs)
        if self.config.discover_models:
            names += [n for n in self._discovered or [] if n not in self._configs]
        return names
