"""HTTP API of the memory page (every query scoped to the signed-in user).

- ``GET    /api/memories?q=&status=&limit=&cursor=`` -> ``{items, next_cursor, counts,
  settings: {enabled, review}}`` (newest change first; ``q`` matches words)
- ``POST   /api/memories {text}`` -> 201 memory (added by hand: source ``explicit``)
- ``PATCH  /api/memories/{id} {text}`` -> memory
- ``DELETE /api/memories/{id}`` -> 204; ``DELETE /api/memories`` -> ``{deleted}``
- ``POST   /api/memories/{id}/approve`` -> memory; ``.../reject`` -> 204 (review mode;
  approving a proposed update, ``replaces: {id, text}``, rewrites that memory)
- ``GET    /api/memories/{id}/history`` -> ``{items: [{id, text, reason, replaced_at}]}``;
  ``POST /api/memories/{id}/history/{version_id}/restore`` -> memory
- forget requests (the chat's confirmation chip): ``forget_router.py``

Memory on/off and review mode are ``preferences.memory`` / ``preferences.memory_review``
(``PATCH /api/me``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from parley.http.bodies import Body, iso
from parley.http.deps import DB, CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem, not_found
from parley.memory.forget_router import router as forget_router
from parley.memory.service import MemoryService, memory_enabled, review_enabled
from parley.memory.store import MemoryStore
from parley.memory.tables import Memory
from parley.memory.text import clean_fact

router = APIRouter(route_class=GuardedRoute, prefix="/api/memories", tags=["memory"])


class MemoryIn(Body):
    text: str = Field(min_length=1, max_length=500)


Memories = Annotated[MemoryService, Depends(service(MemoryService))]


# ------------------------------------------------------------------ responses


def _stamp(moment: datetime) -> str:
    stamp = iso(moment)
    assert stamp is not None
    return stamp


class MemoryReplaces(BaseModel):
    """The active memory a proposed update would rewrite (``text`` is null if it is gone)."""

    id: str
    text: str | None


class MemoryPublic(BaseModel):
    id: str
    text: str
    source: str = Field(description="'explicit' (asked for or added by hand) or 'auto'")
    status: Literal["active", "pending"]
    scope_type: str | None = Field(description="'project', 'assistant', or null (global)")
    scope_id: str | None
    replaces: MemoryReplaces | None
    conversation_id: str | None
    message_id: str | None
    url: str | None = Field(description="the conversation it came from (/c/<id>)")
    history_count: int = Field(0, description="earlier texts kept (GET .../history)")
    created_at: str
    updated_at: str

    @classmethod
    def from_row(
        cls, row: Memory, replaced: Memory | None = None, history_count: int = 0
    ) -> MemoryPublic:
        """A proposed update (review mode) shows the memory it would replace as
        ``replaces: {id, text}`` (its scope is that memory's)."""
        replaces = None
        if row.replaces_id is not None:
            replaces = MemoryReplaces(id=row.replaces_id, text=replaced.text if replaced else None)
        return cls(
            id=row.id,
            text=row.text,
            source=row.source,
            status=row.status,  # type: ignore[arg-type]  # validated: active | pending
            scope_type=row.scope_type,
            scope_id=row.scope_id,
            replaces=replaces,
            conversation_id=row.conversation_id,
            message_id=row.message_id,
            url=f"/c/{row.conversation_id}" if row.conversation_id else None,
            history_count=history_count,
            created_at=_stamp(row.created_at),
            updated_at=_stamp(row.updated_at),
        )


class MemorySettings(BaseModel):
    enabled: bool
    review: bool


class MemoryList(BaseModel):
    items: list[MemoryPublic]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="memories per status ('active', 'pending')")
    settings: MemorySettings


class MemoriesDeleted(BaseModel):
    deleted: int


async def _public(store: MemoryStore, rows: list[Memory]) -> list[MemoryPublic]:
    ids = {r.replaces_id for r in rows if r.replaces_id}
    replaced = {m.id: m for m in [await store.get(i) for i in ids] if m is not None}
    counts = await store.version_counts([r.id for r in rows])
    return [
        MemoryPublic.from_row(r, replaced.get(r.replaces_id or ""), counts.get(r.id, 0))
        for r in rows
    ]


# ------------------------------------------------------------------ routes


def _text(body: MemoryIn) -> str:
    text = clean_fact(body.text)
    if not text:
        raise Problem(422, "Write the fact to remember.", "empty_memory")
    return text


@router.get("")
async def list_memories(
    user: CurrentUser,
    db: DB,
    q: str = Query("", max_length=200),
    status: Literal["active", "pending"] | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200),
) -> MemoryList:
    store = MemoryStore(db, user.id)
    try:
        items, next_cursor = await store.list(query=q, status=status, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise Problem(422, "Invalid pagination cursor.", "invalid_cursor") from exc
    return MemoryList(
        items=await _public(store, items),
        next_cursor=next_cursor,
        counts=await store.counts(),
        settings=MemorySettings(
            enabled=memory_enabled(user.preferences), review=review_enabled(user.preferences)
        ),
    )


@router.post("", status_code=201)
async def add_memory(body: MemoryIn, memories: Memories, user: CurrentUser) -> MemoryPublic:
    result = await memories.remember(user.id, _text(body), source="explicit")
    return MemoryPublic.from_row(result.memory)


@router.delete("")
async def delete_all_memories(user: CurrentUser, db: DB) -> MemoriesDeleted:
    deleted = await MemoryStore(db, user.id).delete_all()
    await db.commit()
    return MemoriesDeleted(deleted=deleted)


@router.patch("/{memory_id}")
async def edit_memory(
    memory_id: str, body: MemoryIn, memories: Memories, user: CurrentUser, db: DB
) -> MemoryPublic:
    row = await memories.edit(user.id, memory_id, _text(body))
    if row is None:
        raise not_found("memory")
    return (await _public(MemoryStore(db, user.id), [row]))[0]


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(memory_id: str, user: CurrentUser, db: DB) -> Response:
    if not await MemoryStore(db, user.id).delete(memory_id):
        raise not_found("memory")
    await db.commit()
    return Response(status_code=204)


@router.post("/{memory_id}/approve")
async def approve_memory(
    memory_id: str, memories: Memories, user: CurrentUser, db: DB
) -> MemoryPublic:
    """Activate a pending memory; a proposed update rewrites the memory it names
    and the answer is that memory."""
    row = await memories.approve(user.id, memory_id)
    if row is None:
        raise not_found("memory")
    return (await _public(MemoryStore(db, user.id), [row]))[0]


@router.post("/{memory_id}/reject", status_code=204)
async def reject_memory(memory_id: str, user: CurrentUser, db: DB) -> Response:
    store = MemoryStore(db, user.id)
    row = await store.get(memory_id)
    if row is None or row.status != "pending":
        raise not_found("pending memory")
    await store.delete(memory_id)
    await db.commit()
    return Response(status_code=204)


# ------------------------------------------------------------------ history


class MemoryVersionPublic(BaseModel):
    id: str
    text: str
    reason: str = Field(description="why it was replaced: updated, approved, edited, restored")
    replaced_at: str


class MemoryHistory(BaseModel):
    items: list[MemoryVersionPublic] = Field(description="earlier texts, newest first")


@router.get("/{memory_id}/history")
async def memory_history(memory_id: str, memories: Memories, user: CurrentUser) -> MemoryHistory:
    versions = await memories.history(user.id, memory_id)
    if versions is None:
        raise not_found("memory")
    return MemoryHistory(
        items=[
            MemoryVersionPublic(
                id=v.id, text=v.text, reason=v.reason, replaced_at=_stamp(v.replaced_at)
            )
            for v in versions
        ]
    )


@router.post("/{memory_id}/history/{version_id}/restore")
async def restore_memory(
    memory_id: str, version_id: str, memories: Memories, user: CurrentUser, db: DB
) -> MemoryPublic:
    """Give the memory an earlier text back (its current text joins the history)."""
    row = await memories.restore(user.id, memory_id, version_id)
    if row is None:
        raise not_found("memory version")
    return (await _public(MemoryStore(db, user.id), [row]))[0]


router.include_router(forget_router)
