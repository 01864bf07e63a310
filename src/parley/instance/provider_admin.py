"""Providers an admin adds, edits, tests and deletes in the web app.

Only providers stored in the database change here; those from the config file,
the environment and the embedded model are read-only (they can be tested).
Every change bumps the providers version (``RegistrySync.bump``) in the same
transaction, so each worker reloads its registry before its next request. A
provider's key is write-only: it is stored, used for requests and tests, and
never returned.

Saving tests the connection first (the model list, with the key and headers
being saved): a failure refuses the save with ``provider_test_failed`` and the
endpoint's message, unless the admin saves anyway (``force``). An edit tests only
when the endpoint, kind, key or headers change.

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
from parley.errors import Invalid, ProviderExists, ProviderNotStored
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
    await registry.models_of(name)  # discovered now, so the answer lists them
    for info in registry.providers_info():
        if info["name"] == name:
            return info
    raise ProviderNotStored(f"No provider named {name!r}.")


async def _check_connection(
    sync: RegistrySync,
    name: str,
    kind: str,
    base_url: str | None,
    api_key: str | None,
    headers: dict[str, str],
) -> None:
    ok, _models, error = await sync.registry.test_connection(
        kind, base_url, api_key, headers, name=name
    )
    if not ok:
        raise Invalid(
            f"The connection test failed: {error} Fix the URL or key, or save anyway.",
            code="provider_test_failed",
        )


async def add_provider(
    db: AsyncSession,
    sync: RegistrySync,
    *,
    name: str,
    kind: str,
    base_url: str | None,
    api_key: str | None,
    models: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    registry = await sync.ensure_fresh(db)
    if any(p["name"] == name for p in registry.providers_info()):
        raise ProviderExists(f"A provider named {name!r} already exists.")
    if not force:
        await _check_connection(sync, name, kind, base_url, api_key, headers or {})
    db.add(
        ProviderRecord(
            name=name,
            kind=kind,
            base_url=base_url,
            api_key=api_key,
            models=list(models),
            headers=dict(headers or {}),
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


def merge_headers(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """``new`` replaces the headers; an empty value keeps a stored header's value
    (values are write-only, so the edit dialog sends names with blank values)."""
    merged: dict[str, str] = {}
    for key, value in new.items():
        if value:
            merged[key] = value
        elif key in old:
            merged[key] = old[key]
    return merged


async def update_provider(
    db: AsyncSession,
    sync: RegistrySync,
    name: str,
    *,
    kind: str | None = None,
    base_url: str | None = _UNSET,
    api_key: str | None = _UNSET,
    models: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Change a stored provider; a field left out keeps its value (``api_key=None``
    removes the key, ``base_url=None`` goes back to the kind's default endpoint)."""
    row = await _stored(db, name)
    new_kind = row.kind if kind is None else kind
    new_url = row.base_url if base_url is _UNSET else base_url
    new_key = row.api_key if api_key is _UNSET else api_key
    old_headers = dict(row.headers or {})
    new_headers = old_headers if headers is None else merge_headers(old_headers, headers)
    reaches = (new_kind, new_url, new_key, new_headers)
    if reaches != (row.kind, row.base_url, row.api_key, old_headers) and not force:
        await _check_connection(sync, name, new_kind, new_url, new_key, new_headers)
    row.kind, row.base_url, row.api_key, row.headers = reaches
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
    sync: RegistrySync,
    kind: str,
    base_url: str | None,
    api_key: str | None,
    headers: dict[str, str] | None = None,
    *,
    name: str = "new",
    source: str = "database",
) -> ConnectionTest:
    """Try an endpoint the admin is about to add (nothing is stored)."""
    ok, models, error = await sync.registry.test_connection(
        kind, base_url, api_key, headers, name=name, source=source
    )
    return ConnectionTest(ok, models, error)


async def test_provider(db: AsyncSession, sync: RegistrySync, name: str) -> ConnectionTest:
    """Test a provider added here or one from the config file or environment (the
    admin page offers Test on every row); the key stays on the server either way.
    Raises ``ProviderNotStored`` when there is no provider of that name at all."""
    row = await db.scalar(select(ProviderRecord).where(ProviderRecord.name == name))
    if row is not None:
        return await test_endpoint(
            sync, row.kind, row.base_url, row.api_key, row.headers, name=name
        )
    provider = (await sync.ensure_fresh(db)).get(name)
    if provider is None:
        raise ProviderNotStored(f"No provider named {name!r}.")
    config = getattr(provider, "config", None)
    if not isinstance(config, ProviderConfig):
        kind = str(getattr(provider, "kind", "?"))
        return ConnectionTest(False, [], f"Providers of kind '{kind}' cannot be tested.")
    base_url = getattr(provider, "base_url", None) or config.base_url
    return await test_endpoint(
        sync,
        config.kind,
        base_url,
        config.resolved_api_key(),
        config.headers,
        name=name,
        source=config.source,
    )
