"""Providers an admin adds, edits, tests and deletes in the web app.

Only providers stored in the database change here; those from the config file,
the environment and the embedded model are read-only (they can be tested).
Every change bumps the providers version (``RegistrySync.bump``) in the same
transaction, so each worker reloads its registry before its next request. A
provider's key is write-only: it is stored, used for requests and tests, and
never returned.

Each function is one unit of work and commits it (the admin routes only
translate HTTP to these calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import ProviderConfig
from parley.errors import ProviderExists, ProviderNotStored
from parley.instance.providers import RegistrySync
from parley.storage.tables import ProviderRecord

__all__ = [
    "ConnectionTest",
    "add_provider",
    "delete_provider",
    "provider_info",
    "test_endpoint",
    "test_provider",
    "update_provider",
]

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    """What trying an endpoint's model list found."""

    ok: bool
    models: list[str]
    error: str | None


async def provider_info(db: AsyncSession, sync: RegistrySync, name: str) -> dict[str, Any]:
    """The admin page's description of one provider (never its key)."""
    registry = await sync.ensure_fresh(db)
    for info in registry.providers_info():
        if info["name"] == name:
            return info
    raise ProviderNotStored(f"No provider named {name!r}.")


async def add_provider(
    db: AsyncSession,
    sync: RegistrySync,
    *,
    name: str,
    kind: str,
    base_url: str | None,
    api_key: str | None,
    models: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    registry = await sync.ensure_fresh(db)
    if any(p["name"] == name for p in registry.providers_info()):
        raise ProviderExists(f"A provider named {name!r} already exists.")
    db.add(
        ProviderRecord(
            name=name, kind=kind, base_url=base_url, api_key=api_key, models=list(models)
        )
    )
    await sync.bump(db)
    await db.commit()
    return await provider_info(db, sync, name)


async def _stored(db: AsyncSession, name: str) -> ProviderRecord:
    row = await db.scalar(select(ProviderRecord).where(ProviderRecord.name == name))
    if row is None:
        raise ProviderNotStored(
            "No provider with that name was added here (config-file providers are read-only)."
        )
    return row


async def update_provider(
    db: AsyncSession,
    sync: RegistrySync,
    name: str,
    *,
    kind: str | None = None,
    base_url: str | None = _UNSET,
    api_key: str | None = _UNSET,
    models: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Change a stored provider; a field left out keeps its value (``api_key=None``
    removes the key, ``base_url=None`` goes back to the kind's default endpoint)."""
    row = await _stored(db, name)
    if kind is not None:
        row.kind = kind
    if base_url is not _UNSET:
        row.base_url = base_url
    if api_key is not _UNSET:
        row.api_key = api_key
    if models is not None:
        row.models = list(models)
    await sync.bump(db)
    await db.commit()
    return await provider_info(db, sync, name)


async def delete_provider(db: AsyncSession, sync: RegistrySync, name: str) -> None:
    await db.delete(await _stored(db, name))
    await sync.bump(db)
    await db.commit()


async def test_endpoint(
    sync: RegistrySync, kind: str, base_url: str | None, api_key: str | None
) -> ConnectionTest:
    """Try an endpoint the admin is about to add (nothing is stored)."""
    ok, models, error = await sync.registry.test_connection(kind, base_url, api_key)
    return ConnectionTest(ok, models, error)


async def test_provider(db: AsyncSession, sync: RegistrySync, name: str) -> ConnectionTest:
    """Test a provider added here or one from the config file or environment (the
    admin page offers Test on every row); the key stays on the server either way.
    Raises ``ProviderNotStored`` when there is no provider of that name at all."""
    row = await db.scalar(select(ProviderRecord).where(ProviderRecord.name == name))
    if row is not None:
        return await test_endpoint(sync, row.kind, row.base_url, row.api_key)
    provider = (await sync.ensure_fresh(db)).get(name)
    if provider is None:
        raise ProviderNotStored(f"No provider named {name!r}.")
    config = getattr(provider, "config", None)
    if not isinstance(config, ProviderConfig):
        kind = str(getattr(provider, "kind", "?"))
        return ConnectionTest(False, [], f"Providers of kind '{kind}' cannot be tested.")
    base_url = getattr(provider, "base_url", None) or config.base_url
    return await test_endpoint(sync, config.kind, base_url, config.resolved_api_key())
