"""Which GGUF the embedded model runs: the configured one, or a file an admin
downloaded in Admin > Models.

The choice is an instance setting in the database (``local_model_file``), so it
survives a restart and reaches every worker: ``RegistrySync`` notices it moved
and swaps the embedded model, which loads on its next message. A default model
that named the old embedded model follows the switch, so chats keep working.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import NotFound, Refused
from parley.instance import values as instance
from parley.instance.model_downloads import ModelDownloads
from parley.instance.providers import LOCAL_MODEL_KEY, RegistrySync


async def chosen_file(db: AsyncSession) -> str | None:
    value = await instance.get_value(db, LOCAL_MODEL_KEY)
    return str(value) if value else None


async def use_local_model(
    db: AsyncSession, sync: RegistrySync, downloads: ModelDownloads, file: str | None
) -> str:
    """Make ``file`` (a finished download) the embedded model, or ``None`` for the
    configured one; returns the embedded model's new ref."""
    if file is not None:
        item = downloads.get(file)
        if item is None or item.status != "done":
            raise NotFound("model file", f"{file} is not downloaded (yet).")
    registry = await sync.ensure_fresh(db)
    if registry.local is None:
        raise Refused(
            "The embedded model is turned off on this server (PARLEY_LOCAL_MODEL_ENABLED=false).",
            code="local_model_disabled",
        )
    old_ref = registry.local.info.ref
    if file is None:
        await instance.clear_value(db, LOCAL_MODEL_KEY)
    else:
        await instance.set_value(db, LOCAL_MODEL_KEY, file)
    await db.commit()
    sync.invalidate()
    registry = await sync.ensure_fresh(db)
    assert registry.local is not None
    new_ref = registry.local.info.ref
    if new_ref != old_ref and await instance.get_value(db, "default_model") == old_ref:
        await instance.set_value(db, "default_model", new_ref)
        await db.commit()
        sync.invalidate()
    return new_ref


async def delete_download(db: AsyncSession, downloads: ModelDownloads, file: str) -> None:
    """Delete a downloaded file, unless the embedded model runs it."""
    if await chosen_file(db) == file:
        raise Refused(
            f"{file} is the embedded model now; choose another model before deleting it.",
            code="model_in_use",
        )
    downloads.delete(file)
