"""Keep each worker's model registry in step with providers stored in the database.

An admin's change bumps ``providers_version`` in ``app_settings``; every worker
compares it (one primary-key read) before using its registry and reloads when
it moved, so no worker needs to be told in memory.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import ModelConfig, ProviderConfig, Settings
from parley.instance import values as instance
from parley.instance.model_catalog import curated_for
from parley.providers.registry import ModelRegistry
from parley.storage.tables import AppSetting, ProviderRecord, new_id

log = logging.getLogger(__name__)
VERSION_KEY = "providers_version"
LOCAL_MODEL_KEY = "local_model_file"  # a file in <data dir>/models chosen in Admin > Models


def record_to_config(row: ProviderRecord) -> ProviderConfig:
    return ProviderConfig(
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]
        base_url=row.base_url,
        api_key=row.api_key,
        headers=dict(row.headers or {}),
        models=[ModelConfig(**m) for m in row.models or []],
        source="database",
    )


async def database_providers(db: AsyncSession) -> list[ProviderConfig]:
    rows = await db.scalars(
        select(ProviderRecord)
        .where(ProviderRecord.enabled.is_(True))
        .order_by(ProviderRecord.created_at, ProviderRecord.name)
    )
    return [record_to_config(r) for r in rows]


class RegistrySync:
    """Instance settings and stored providers, re-read at most once a second.

    Hot paths (every chat request) then cost no query; an admin's change reaches
    this worker at once and the others within ``REFRESH_S``.
    """

    REFRESH_S = 1.0

    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.version: Any = None
        self._values: dict[str, Any] = {}
        self._read_at = -1e9
        self.local_choice: str | None = None  # the configured model until the admin picks one

    async def values(self, db: AsyncSession) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._read_at >= self.REFRESH_S:
            rows = await db.execute(select(AppSetting.key, AppSetting.value))
            self._values = {key: value for key, value in rows.all()}
            self._read_at = now
        return self._values

    async def default_model(self, db: AsyncSession) -> str | None:
        value = (await self.values(db)).get("default_model") or self.settings.default_model
        return str(value) if value else None

    async def ensure_fresh(self, db: AsyncSession) -> ModelRegistry:
        version = (await self.values(db)).get(VERSION_KEY)
        if version != self.version:
            await self.registry.reload_database_providers(await database_providers(db))
            self.version = version
        choice = (await self.values(db)).get(LOCAL_MODEL_KEY)
        if choice != self.local_choice and self.registry.local is not None:
            self._use_local(str(choice) if choice else None)
            self.local_choice = choice
        return self.registry

    def _use_local(self, file: str | None) -> None:
        """Swap the embedded model for the chosen file (on every worker, as each
        notices the setting moved); the next message loads it."""
        if file is None:
            self.registry.use_local_model(None)
            return
        entry = curated_for(file)
        self.registry.use_local_model(
            self.settings.data_dir / "models" / file,
            display_name=entry.name if entry else None,
            tool_use=entry.tools if entry else None,
        )
        log.info("the embedded model is now %s", file)

    def invalidate(self) -> None:
        self._read_at = -1e9

    async def bump(self, db: AsyncSession) -> None:
        await instance.set_value(db, VERSION_KEY, new_id())
        self.invalidate()
