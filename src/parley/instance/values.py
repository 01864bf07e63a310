"""Instance-wide settings an admin changes at run time (sign-up mode, default model).

Stored in the database, not in process memory, so every worker sees the same
values; each falls back to the file/environment setting of the same name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import Settings
from parley.storage.tables import AppSetting


async def get_value(db: AsyncSession, key: str, default: Any = None) -> Any:
    row = await db.get(AppSetting, key)
    return default if row is None else row.value


async def set_value(db: AsyncSession, key: str, value: Any) -> None:
    row = await db.get(AppSetting, key)
    if row is None:
        db.add(AppSetting(key=key, value=value))
    else:
        row.value = value


async def clear_value(db: AsyncSession, key: str) -> None:
    """Forget the stored value: the file/environment setting applies again."""
    row = await db.get(AppSetting, key)
    if row is not None:
        await db.delete(row)


async def signup_mode(db: AsyncSession, settings: Settings) -> str:
    value = await get_value(db, "signup", settings.signup)
    return str(value)


async def default_model(db: AsyncSession, settings: Settings) -> str | None:
    value = await get_value(db, "default_model", settings.default_model)
    return str(value) if value else None
