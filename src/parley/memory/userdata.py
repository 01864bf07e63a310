"""The memory feature's share of a user's export, import and account deletion.

Exported: every memory (active and pending, every scope) with where it came
from. Vectors are not exported: they belong to this server's embedding model,
and a memory without one is embedded again when it is next recalled. On import
each memory gets a new id; its conversation and message follow the ids the core
gave them (or become empty when that conversation was not in the export), and a
proposed update keeps pointing at the memory it would replace.

Account deletion removes every memory and, after the commit, the service's
in-process snapshot of them. As a ``ConversationData`` hook it handles a
deleted conversation: automatic proposals pending review drawn from it go,
saved memories stay (unlinked from it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import InvalidImport
from parley.memory.service import MemoryService
from parley.memory.store import MemoryStore, forget_conversations
from parley.memory.tables import Memory
from parley.storage.tables import new_id, utcnow
from parley.userdata import DeleteJob, ExportJob, ImportJob

__all__ = ["MemoryUserData"]


class _MemoryRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(max_length=64)
    text: str = Field(min_length=1, max_length=4000)
    source: Literal["explicit", "auto"] = "auto"
    status: Literal["active", "pending"] = "active"
    scope_type: Literal["project", "assistant"] | None = None
    scope_id: str | None = Field(default=None, max_length=32)
    replaces_id: str | None = Field(default=None, max_length=64)
    conversation_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _MemoryPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    memories: list[_MemoryRecord] = Field(default_factory=list, max_length=1_000_000)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class MemoryUserData:
    name = "memory"

    def __init__(self, service: MemoryService | None = None) -> None:
        """``service``: its in-process snapshots of a deleted user are dropped."""
        self.service = service

    async def export(self, session: AsyncSession, user_id: str, job: ExportJob) -> dict[str, Any]:
        rows = await session.scalars(
            select(Memory).where(Memory.user_id == user_id).order_by(Memory.created_at, Memory.id)
        )
        return {
            "memories": [
                {
                    "id": m.id,
                    "text": m.text,
                    "source": m.source,
                    "status": m.status,
                    "scope_type": m.scope_type,
                    "scope_id": m.scope_id,
                    "replaces_id": m.replaces_id,
                    "conversation_id": m.conversation_id,
                    "message_id": m.message_id,
                    "created_at": _iso(m.created_at),
                    "updated_at": _iso(m.updated_at),
                }
                for m in rows
            ]
        }

    async def import_data(
        self, session: AsyncSession, user_id: str, data: Any, job: ImportJob
    ) -> dict[str, int]:
        try:
            part = _MemoryPart.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidImport(
                f"The export's memories are not valid: {error['loc']}: {error['msg']}."
            ) from None
        ids = {m.id: new_id() for m in part.memories}
        now = utcnow()
        rows = []
        for m in part.memories:
            replaces = ids.get(m.replaces_id or "")
            if m.replaces_id and replaces is None:
                continue  # a proposal for a memory that is not in the export
            created = m.created_at or now
            rows.append(
                {
                    "id": ids[m.id],
                    "user_id": user_id,
                    "text": m.text,
                    "source": m.source,
                    "status": m.status,
                    "scope_type": m.scope_type,
                    "scope_id": m.scope_id if m.scope_type else None,
                    "replaces_id": replaces,
                    "conversation_id": job.conversations.get(m.conversation_id or ""),
                    "message_id": job.messages.get(m.message_id or ""),
                    "created_at": created,
                    "updated_at": m.updated_at or created,
                }
            )
        plain = [r for r in rows if r["replaces_id"] is None]
        proposals = [r for r in rows if r["replaces_id"] is not None]
        for batch in (plain, proposals):  # a proposal's memory exists before it
            if batch:
                await session.execute(insert(Memory), batch)
        return {"memories": len(rows)}

    async def delete(self, session: AsyncSession, user_id: str, job: DeleteJob) -> None:
        # The rows would go with the user (ON DELETE CASCADE); said here so the
        # feature's data is removed by the feature, whatever the schema does.
        await MemoryStore(session, user_id).delete_all()
        service = self.service
        if service is not None:

            async def forget() -> None:
                service.drop_snapshot(user_id)

            job.after_commit.append(forget)

    async def delete_conversations(
        self,
        session: AsyncSession,
        user_id: str,
        conversation_ids: Sequence[str],
        job: DeleteJob,
    ) -> None:
        """Pending automatic proposals drawn from these conversations go; saved
        memories stay without the link (``store.forget_conversations``)."""
        await forget_conversations(session, user_id, list(conversation_ids))
