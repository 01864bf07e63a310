"""Memories of one user: every statement carries ``user_id`` (the authorization
layer, like ``ConversationStore``), so another user's id reads as missing.

Methods flush but never commit: the caller owns the unit of work.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parley.memory.tables import Memory, MemoryVersion
from parley.storage.tables import Conversation, new_id, utcnow

__all__ = [
    "EDITABLE",
    "MemoryStore",
    "Version",
    "expired_temporary_conversations",
    "forget_conversations",
]

EDITABLE = frozenset(
    {"text", "status", "embedding", "embedding_model", "scope_type", "scope_id", "attribute"}
)
Version = tuple[int, str]
_last_stamp = datetime.min.replace(tzinfo=UTC)


def _now() -> datetime:
    """Strictly increasing within the process, so a write always changes the version."""
    global _last_stamp
    now = utcnow()
    if now <= _last_stamp:
        now = _last_stamp + timedelta(microseconds=1)
    _last_stamp = now
    return now


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _encode_cursor(row: Memory) -> str:
    raw = json.dumps([_as_utc(row.updated_at).isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return _as_utc(datetime.fromisoformat(str(stamp))), str(row_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("invalid pagination cursor") from exc


class MemoryStore:
    def __init__(self, session: AsyncSession, user_id: str) -> None:
        self.session = session
        self.user_id = user_id

    async def get(self, memory_id: str) -> Memory | None:
        return await self.session.scalar(
            select(Memory).where(Memory.id == memory_id, Memory.user_id == self.user_id)
        )

    async def create(self, text: str, **fields: Any) -> Memory:
        now = _now()
        row = Memory(
            id=new_id(),
            user_id=self.user_id,
            text=text,
            created_at=now,
            updated_at=now,
            **{"source": "auto", "status": "active", **fields},
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def update(self, row: Memory, **fields: Any) -> Memory:
        unknown = set(fields) - EDITABLE
        if unknown or row.user_id != self.user_id:
            raise TypeError(f"fields that cannot be set: {', '.join(sorted(unknown))}")
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = _now()
        await self.session.flush()
        return row

    async def delete(self, memory_id: str) -> bool:
        """Delete a memory (and, ``ON DELETE CASCADE``, any update proposed for it)."""
        result = await self.session.execute(
            delete(Memory).where(Memory.id == memory_id, Memory.user_id == self.user_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def proposals(self, memory_ids: builtins.list[str]) -> builtins.list[Memory]:
        """Pending updates proposed for these memories (review mode)."""
        if not memory_ids:
            return []
        stmt = select(Memory).where(
            Memory.user_id == self.user_id, Memory.replaces_id.in_(memory_ids)
        )
        return builtins.list((await self.session.scalars(stmt)).all())

    async def delete_proposals(self, memory_id: str) -> None:
        await self.session.execute(
            delete(Memory).where(Memory.user_id == self.user_id, Memory.replaces_id == memory_id)
        )

    async def delete_all(self) -> int:
        result = await self.session.execute(delete(Memory).where(Memory.user_id == self.user_id))
        return int(getattr(result, "rowcount", 0))

    async def list(
        self,
        *,
        query: str = "",
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[builtins.list[Memory], str | None]:
        """A page, most recently changed first; ``query`` matches words in any order."""
        stmt = select(Memory).where(Memory.user_id == self.user_id)
        if status:
            stmt = stmt.where(Memory.status == status)
        for term in query.lower().split()[:8]:
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(func.lower(Memory.text).like(f"%{escaped}%", escape="\\"))
        if cursor:
            stamp, row_id = _decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Memory.updated_at < stamp,
                    and_(Memory.updated_at == stamp, Memory.id < row_id),
                )
            )
        stmt = stmt.order_by(Memory.updated_at.desc(), Memory.id.desc()).limit(limit + 1)
        rows = builtins.list((await self.session.scalars(stmt)).all())
        next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def counts(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(Memory.status, func.count())
            .where(Memory.user_id == self.user_id)
            .group_by(Memory.status)
        )
        return {str(status): int(count) for status, count in rows}

    async def version(self) -> Version:
        """Changes whenever an active memory is added, changed or removed."""
        count, newest = (
            await self.session.execute(
                select(func.count(), func.max(Memory.updated_at)).where(
                    Memory.user_id == self.user_id, Memory.status == "active"
                )
            )
        ).one()
        return int(count), str(newest)

    async def write_version(self) -> Version:
        """Changes whenever any of the user's memories (pending ones too) changes."""
        count, newest = (
            await self.session.execute(
                select(func.count(), func.max(Memory.updated_at)).where(
                    Memory.user_id == self.user_id
                )
            )
        ).one()
        return int(count), str(newest)

    async def everything(self) -> builtins.list[Memory]:
        """Every memory of the user (the write index is built from them)."""
        return builtins.list(
            (await self.session.scalars(select(Memory).where(Memory.user_id == self.user_id))).all()
        )

    async def get_many(self, memory_ids: builtins.list[str]) -> builtins.list[Memory]:
        if not memory_ids:
            return []
        stmt = select(Memory).where(Memory.user_id == self.user_id, Memory.id.in_(memory_ids))
        return builtins.list((await self.session.scalars(stmt)).all())

    # ------------------------------------------------------------ history

    async def keep_version(self, row: Memory, reason: str) -> MemoryVersion:
        """Keep ``row``'s current text before it is replaced."""
        version = MemoryVersion(
            id=new_id(),
            memory_id=row.id,
            user_id=self.user_id,
            text=row.text,
            reason=reason,
            replaced_at=_now(),
        )
        self.session.add(version)
        await self.session.flush()
        return version

    async def versions(self, memory_id: str) -> builtins.list[MemoryVersion]:
        """Earlier texts of a memory, newest first."""
        stmt = (
            select(MemoryVersion)
            .where(MemoryVersion.user_id == self.user_id, MemoryVersion.memory_id == memory_id)
            .order_by(MemoryVersion.replaced_at.desc(), MemoryVersion.id.desc())
        )
        return builtins.list((await self.session.scalars(stmt)).all())

    async def version_counts(self, memory_ids: builtins.list[str]) -> dict[str, int]:
        if not memory_ids:
            return {}
        rows = await self.session.execute(
            select(MemoryVersion.memory_id, func.count())
            .where(MemoryVersion.user_id == self.user_id, MemoryVersion.memory_id.in_(memory_ids))
            .group_by(MemoryVersion.memory_id)
        )
        return {str(memory_id): int(count) for memory_id, count in rows}

    async def active(self) -> builtins.list[Memory]:
        return builtins.list(
            (
                await self.session.scalars(
                    select(Memory).where(Memory.user_id == self.user_id, Memory.status == "active")
                )
            ).all()
        )

    async def set_embeddings(self, vectors: dict[str, tuple[bytes, str]]) -> None:
        """Store vectors computed later (no ``updated_at`` change: not an edit)."""
        for memory_id, (blob, model) in vectors.items():
            await self.session.execute(
                update(Memory)
                .where(Memory.id == memory_id, Memory.user_id == self.user_id)
                .values(embedding=blob, embedding_model=model)
            )


async def expired_temporary_conversations(
    session: AsyncSession, older_than: timedelta
) -> dict[str, builtins.list[str]]:
    """Temporary chats idle for longer than ``older_than``, by user (all users; the
    feature deletes them through ``parley.userdata.conversations``, so their
    attachments, outputs and kernels go with them)."""
    cutoff = utcnow() - older_than
    rows = await session.execute(
        select(Conversation.user_id, Conversation.id).where(
            Conversation.temporary.is_(True), Conversation.updated_at < cutoff
        )
    )
    stale: dict[str, builtins.list[str]] = {}
    for user_id, conversation_id in rows.all():
        stale.setdefault(user_id, []).append(conversation_id)
    return stale


async def forget_conversations(
    session: AsyncSession, user_id: str, conversation_ids: builtins.list[str]
) -> None:
    """Before these conversations are deleted: automatic proposals still pending
    review that were drawn from them go (the user never accepted them); saved
    memories stay (they are managed on their own page), no longer pointing at a
    conversation or message that is gone."""
    if not conversation_ids:
        return
    scope = and_(Memory.user_id == user_id, Memory.conversation_id.in_(conversation_ids))
    await session.execute(
        delete(Memory).where(scope, Memory.status == "pending", Memory.source == "auto")
    )
    await session.execute(update(Memory).where(scope).values(conversation_id=None, message_id=None))
