"""Stored chat completions (``store: true``), scoped to a user and an API key.

Every query filters on both owners: another user's id, or one made with another
key of the same user, is "not found", never told apart from an id that does not
exist. Paging is keyset on ``(created_at, id)``. The ``metadata`` filter is
applied in Python over batches (the JSON column is queried the same way on
SQLite and PostgreSQL), so a page stays ``limit`` long however few rows match.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.storage.tables import StoredCompletion

__all__ = ["CompletionStore"]

_BATCH = 200


class CompletionStore:
    def __init__(self, session: AsyncSession, user_id: str, api_key_id: str | None) -> None:
        self.session = session
        self.user_id = user_id
        self.api_key_id = api_key_id

    def _mine(self) -> Any:
        if self.api_key_id is None:  # no key: nothing stored is reachable
            return StoredCompletion.id.is_(None)
        return and_(
            StoredCompletion.user_id == self.user_id,
            StoredCompletion.api_key_id == self.api_key_id,
        )

    async def get(self, completion_id: str) -> StoredCompletion | None:
        return await self.session.scalar(
            select(StoredCompletion).where(StoredCompletion.id == completion_id, self._mine())
        )

    async def page(
        self,
        *,
        limit: int = 20,
        after: StoredCompletion | None = None,
        order: Literal["asc", "desc"] = "asc",
        model: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> tuple[list[StoredCompletion], bool]:
        """Up to ``limit`` rows after ``after`` in ``order``, and whether more match."""
        created, ident = StoredCompletion.created_at, StoredCompletion.id
        stmt = select(StoredCompletion).where(self._mine())
        if model:
            stmt = stmt.where(StoredCompletion.model == model)
        if order == "asc":
            stmt = stmt.order_by(created, ident)
        else:
            stmt = stmt.order_by(created.desc(), ident.desc())
        found: list[StoredCompletion] = []
        cursor = after
        while True:
            query = stmt
            if cursor is not None:
                if order == "asc":
                    query = query.where(
                        or_(
                            created > cursor.created_at,
                            and_(created == cursor.created_at, ident > cursor.id),
                        )
                    )
                else:
                    query = query.where(
                        or_(
                            created < cursor.created_at,
                            and_(created == cursor.created_at, ident < cursor.id),
                        )
                    )
            batch = list((await self.session.scalars(query.limit(_BATCH))).all())
            for row in batch:
                if metadata and not _matches(row.meta, metadata):
                    continue
                found.append(row)
                if len(found) > limit:
                    return found[:limit], True
            if len(batch) < _BATCH:
                return found, False
            cursor = batch[-1]

    async def set_metadata(
        self, row: StoredCompletion, metadata: dict[str, str] | None
    ) -> StoredCompletion:
        row.meta = dict(metadata) if metadata else None
        await self.session.flush()
        return row


def _matches(stored: dict[str, Any] | None, wanted: dict[str, str]) -> bool:
    have = stored or {}
    return all(have.get(key) == value for key, value in wanted.items())
