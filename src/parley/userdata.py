"""A user's data across Parley: export, import and account deletion.

The core owns the account, its conversations, settings and API key metadata;
each feature owns its share (memories, files and collections...) and registers
a ``UserData`` hook through the seam (``FeatureContext.add_user_data``). The
export and import services walk the core's stores and then every hook, so an
export is complete without the core knowing any feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["UserData", "UserDataHooks"]


class UserData(Protocol):
    """A feature's share of one user's data, for export, import and account deletion.

    ``export`` returns JSON-ready data under the feature's ``name``; ``import_data``
    takes what an export produced (validated by the feature) and adds it to the
    user's account; ``delete`` removes what database cascades do not (bytes on disk,
    rows in other stores). Each runs inside the caller's session and unit of work.
    """

    name: str

    async def export(self, session: AsyncSession, user_id: str) -> Any: ...

    async def import_data(self, session: AsyncSession, user_id: str, data: Any) -> int: ...

    async def delete(self, session: AsyncSession, user_id: str) -> None: ...


@dataclass(slots=True)
class UserDataHooks:
    """Every feature's ``UserData``, in start order (provided under its class)."""

    hooks: list[UserData] = field(default_factory=list)
