"""``ModelRegistry``: every provider Parley knows, and how a model ref resolves.

Providers come from four places, in this order (which is also the order the
default model is picked in): the config file and environment, the database
(added by an admin in the web app; a name already taken is refused), extra
providers handed in by code (tests inject scripted ones), and the built-in
local model. One provider failing never breaks the model list; API keys never
leave this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from parley.config import ProviderConfig, Settings
from parley.errors import ModelNotFound, NoModelAvailable, ProviderError
from parley.providers.base import ChatModel, ModelInfo, Provider
from parley.providers.known_models import known_model
from parley.providers.local import LocalProvider

log = logging.getLogger(__name__)

LIST_TIMEOUT_S = 15.0
TEST_TIMEOUT_S = 10.0


def build_provider(config: ProviderConfig) -> Provider:
    """The adapter for a provider config (SDKs are imported here, not earlier)."""
    if config.kind == "openai":
        from parley.providers.openai_compat import OpenAIProvider

        return OpenAIProvider(config)
    if config.kind == "anthropic":
        from parley.providers.anthropic import AnthropicProvider

        return AnthropicProvider(config)
    raise ValueError(
        f"Provider '{config.name}' has kind '{config.kind}', which cannot be declared as a "
        "provider; the local model is configured with PARLEY_LOCAL_MODEL instead."
    )


class ModelRegistry:
    """Builds providers and resolves ``"provider/model"`` refs to ``ChatModel``s."""

    def __init__(
        self,
        settings: Settings,
        db_providers: Iterable[ProviderConfig] = (),
        extra_providers: Iterable[Provider] = (),
    ) -> None:
        self.settings = settings
        self._config: dict[str, Provider] = {}
        self._database: dict[str, Provider] = {}
        self._extra: dict[str, Provider] = {}
        self._sources: dict[str, str] = {}
        self._known_models: dict[str, list[str]] = {}
        self._local: LocalProvider | None = None
        if settings.local_model_enabled:
            self._local = LocalProvider(settings)
        for config in settings.providers:
            if self._taken(config.name):
                log.warning("ignoring provider %r: the name is already taken", config.name)
                continue
            try:
                self._config[config.name] = build_provider(config)
            except ValueError as exc:
                log.warning("%s", exc)
                continue
            source = config.source if config.source in ("config", "environment") else "config"
            self._sources[config.name] = source
        for provider in extra_providers:
            if self._taken(provider.name):
                raise ValueError(f"A provider named '{provider.name}' already exists.")
            self._extra[provider.name] = provider
            self._sources[provider.name] = "builtin"
        self._database = self._build_database(db_providers)

    # bookkeeping --------------------------------------------------------------

    def _taken(self, name: str, *, ignore_database: bool = False) -> bool:
        if self._local is not None and name == self._local.name:
            return True
        if name in self._config or name in self._extra:
            return True
        return not ignore_database and name in self._database

    def _build_database(self, configs: Iterable[ProviderConfig]) -> dict[str, Provider]:
        built: dict[str, Provider] = {}
        for config in configs:
            if self._taken(config.name, ignore_database=True) or config.name in built:
                log.warning(
                    "ignoring database provider %r: the name is taken by a configured one",
                    config.name,
                )
                continue
            try:
                built[config.name] = build_provider(
                    config.model_copy(update={"source": "database"})
                )
            except ValueError as exc:
                log.warning("%s", exc)
        return built

    @property
    def providers(self) -> list[Provider]:
        """All providers in priority order (config/env, database, extra, local)."""
        found: list[Provider] = [*self._config.values(), *self._database.values()]
        found += self._extra.values()
        if self._local is not None:
            found.append(self._local)
        return found

    def get(self, name: str) -> Provider | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None

    @property
    def local(self) -> LocalProvider | None:
        return self._local

    def use_local_model(
        self, path: Path | None, *, display_name: str | None = None, tool_use: bool | None = None
    ) -> LocalProvider:
        """Serve the GGUF at ``path`` as the embedded model from now on (``None``: the
        configured one again). The old model finishes what it is generating and is
        unloaded; the new one loads on its first message."""
        if self._local is None:
            raise ValueError("The embedded model is turned off (local_model_enabled).")
        settings = self.settings
        if path is not None:
            settings = settings.model_copy(update={"local_model": str(path)})
        old = self._local
        self._local = LocalProvider(
            settings, name=old.name, display_name=display_name, tool_use=tool_use
        )
        old.retire()
        return self._local

    def source(self, name: str) -> str:
        if self._local is not None and name == self._local.name:
            return "builtin"
        if name in self._database:
            return "database"
        return self._sources.get(name, "config")

    def check_database_provider(self, config: ProviderConfig) -> None:
        """Raise ``ValueError`` if an admin may not add ``config`` (name taken, bad kind)."""
        if self._taken(config.name, ignore_database=True):
            raise ValueError(
                f"The name '{config.name}' is already used by a provider from the config "
                "file or environment; choose another name."
            )
        if config.kind not in ("openai", "anthropic"):
            raise ValueError("Only providers of kind 'openai' or 'anthropic' can be added.")

    async def reload_database_providers(self, configs: Iterable[ProviderConfig]) -> None:
        """Replace the database providers (after an admin added or removed one)."""
        old, self._database = self._database, self._build_database(configs)
        for name, provider in old.items():
            self._known_models.pop(name, None)
            if self._database.get(name) is not provider:
                await _close_quietly(provider)

    # models -----------------------------------------------------------------

    async def _models_of(self, provider: Provider) -> list[ModelInfo]:
        try:
            models = await asyncio.wait_for(provider.list_models(), LIST_TIMEOUT_S)
        except Exception as exc:  # one broken provider must not break the list
            log.warning("listing models of provider %r failed: %s", provider.name, exc)
            return []
        self._known_models[provider.name] = [m.name for m in models]
        return models

    async def models_of(self, name: str) -> list[ModelInfo]:
        """One provider's models (discovering them now if needed); [] for an unknown name."""
        provider = self.get(name)
        return [] if provider is None else await self._models_of(provider)

    async def list_models(self) -> list[ModelInfo]:
        """Every model of every provider, in provider priority order."""
        results = await asyncio.gather(*(self._models_of(p) for p in self.providers))
        return [model for models in results for model in models]

    async def ref_for(
        self, name: str, preferred: str | None = None, user_id: str | None = None
    ) -> str:
        """The ref an API caller means: ``parley``/``default`` (the default model),
        a ref, or a bare model name when exactly one provider has it; only models
        offered to ``user_id``. Raises ``ModelNotFound`` (naming the choices when the
        name is ambiguous) or ``NoModelAvailable``."""
        if name in ("parley", "default", ""):
            ref = await self.default_ref(preferred, user_id)
            if ref is None:
                raise NoModelAvailable("No model is configured on this Parley server.")
            return ref
        mine = [m for m in await self.list_models() if m.offered_to(user_id)]
        matches = [m for m in mine if m.ref == name] or [m for m in mine if m.name == name]
        if len(matches) == 1:
            return matches[0].ref
        if len(matches) > 1:
            refs = ", ".join(m.ref for m in matches)
            raise ModelNotFound(f"Model {name!r} is ambiguous; use one of: {refs}.")
        raise ModelNotFound(f"Unknown model {name!r}; GET /v1/models lists them.")

    async def default_ref(
        self, preferred: str | None = None, user_id: str | None = None
    ) -> str | None:
        """``preferred`` (the admin setting) if it exists, else ``settings.default_model``,
        else the automatic choice: the first model of the config-file and environment
        providers (and those handed in by code), else the local model, else the first
        model of the providers added in Admin (oldest first). With ``user_id``, only
        models offered to that user count (an admin may show a model to some only).

        Providers added in Admin come after the local model on purpose: adding one
        must not change everyone's default behind the admin's back (they pick it
        under Admin > Providers > Default model)."""
        models = [m for m in await self.list_models() if m.offered_to(user_id)]
        refs = {m.ref for m in models}
        for candidate in (preferred, self.settings.default_model):
            if candidate and candidate in refs:
                return candidate
            if candidate:
                log.info("default model %r is not available; falling back", candidate)
        fixed = set(self._config) | set(self._extra)
        for model in models:
            if model.provider in fixed:
                return model.ref
        if self._local is not None and self._local.status != "disabled":
            return self._local.info.ref
        for model in models:
            if model.provider in self._database:
                return model.ref
        return None

    async def resolve(self, ref: str | None) -> ChatModel:
        """The model for ``"provider/model"`` (None: the default); raises ``ModelNotFound``."""
        if not ref:
            ref = await self.default_ref()
            if ref is None:
                raise ModelNotFound(
                    "No model is available: add a provider (config file, environment or "
                    "Admin > Providers) or enable the local model."
                )
        provider_name, slash, model_name = ref.partition("/")
        if not slash:
            matches = [m for m in await self.list_models() if m.name == ref]
            if len(matches) != 1:
                raise ModelNotFound(
                    f"Model '{ref}' is {'ambiguous' if matches else 'unknown'}; name it as "
                    f"'provider/model', one of: {await self._examples()}."
                )
            provider_name, model_name = matches[0].provider, matches[0].name
        provider = self.get(provider_name)
        if provider is None:
            names = ", ".join(p.name for p in self.providers) or "none"
            raise ModelNotFound(
                f"Model '{ref}' names an unknown provider '{provider_name}'; "
                f"available providers: {names}."
            )
        await self._models_of(provider)  # warms discovery so unknown names are caught
        try:
            return provider.model(model_name)
        except ModelNotFound:
            raise ModelNotFound(
                f"Model '{ref}' does not exist; available models: {await self._examples()}."
            ) from None

    async def _examples(self, limit: int = 10) -> str:
        refs = [m.ref for m in await self.list_models()]
        more = f" (and {len(refs) - limit} more)" if len(refs) > limit else ""
        return (", ".join(refs[:limit]) or "none") + more

    # admin ---------------------------------------------------------------------

    def providers_info(self) -> list[dict[str, Any]]:
        """Provider descriptions for the admin page; never includes keys or header values."""
        info: list[dict[str, Any]] = []
        for provider in self.providers:
            source = self.source(provider.name)
            infos = getattr(provider, "model_infos", None)
            details: list[ModelInfo]
            if callable(infos):
                details = infos()
            elif self._local is not None and provider is self._local:
                details = [self._local.info]
            else:
                details = [
                    ModelInfo(provider=provider.name, name=n)
                    for n in self._known_models.get(provider.name, [])
                ]
            config = getattr(provider, "config", None)
            headers = config.headers if isinstance(config, ProviderConfig) else {}
            info.append(
                {
                    "name": provider.name,
                    "kind": provider.kind,
                    "base_url": getattr(provider, "base_url", None),
                    "source": source,
                    "has_key": bool(getattr(provider, "has_key", False)),
                    "editable": source == "database",
                    "models": [m.name for m in details],
                    "model_settings": [model_settings(provider, m) for m in details],
                    "header_names": sorted(headers),
                }
            )
        return info

    async def test_connection(
        self,
        kind: str,
        base_url: str | None,
        api_key: str | None,
        headers: dict[str, str] | None = None,
        *,
        name: str = "connection-test",
        source: str = "database",
    ) -> tuple[bool, list[str], str | None]:
        """Try listing the models of an endpoint: ``(ok, model names, error message)``;
        ``name`` and ``source`` only word the error (the provider it is about, and
        where its key is set)."""
        from parley.providers.discovery import DiscoveringProvider

        if kind not in ("openai", "anthropic"):
            return False, [], f"Providers of kind '{kind}' cannot be tested."
        config = ProviderConfig(
            name=name,
            kind="openai" if kind == "openai" else "anthropic",
            base_url=base_url or None,
            api_key=api_key or None,
            headers=headers or {},
            timeout_s=TEST_TIMEOUT_S,
            source=source,
        )
        provider = build_provider(config)
        assert isinstance(provider, DiscoveringProvider)
        try:
            _ = getattr(provider, "shards", None)  # a lazily imported SDK loads outside the limit
            names = await asyncio.wait_for(provider.discover_model_names(), TEST_TIMEOUT_S + 1)
        except ProviderError as exc:
            return False, [], exc.message
        except TimeoutError:
            return False, [], f"No answer from {base_url} within {TEST_TIMEOUT_S:g}s."
        except Exception as exc:  # a test reports what went wrong; it never fails itself
            log.warning("testing a %s endpoint failed", kind, exc_info=True)
            return (
                False,
                [],
                f"The endpoint's answer could not be understood ({type(exc).__name__}).",
            )
        finally:
            await _close_quietly(provider)
        return True, names, None

    async def aclose(self) -> None:
        await asyncio.gather(*(_close_quietly(p) for p in self.providers))


def model_settings(provider: Provider, info: ModelInfo) -> dict[str, Any]:
    """One model's effective settings for the admin page, and whether the admin
    saved them (``customized``) or they come from the endpoint and the table."""
    configs = getattr(provider, "_configs", {})
    return {
        "name": info.name,
        "display_name": info.display_name,
        "context_window": info.context_window,
        "max_output_tokens": info.max_output_tokens,
        "supports_vision": info.supports_vision,
        "supports_tools": info.supports_tools,
        "supports_reasoning": info.supports_reasoning,
        "input_price": info.input_price,
        "cached_input_price": info.cached_input_price,
        "output_price": info.output_price,
        "enabled": info.enabled,
        "visible_to": None if info.visible_to is None else list(info.visible_to),
        "customized": info.name in configs,
        "known": known_model(info.name) is not None,
    }


async def _close_quietly(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception as exc:
        log.warning("closing provider %r failed: %s", provider.name, exc)
