"""HTTP API of the memory page (every query scoped to the signed-in user).

- ``GET    /api/memories?q=&status=&limit=&cursor=`` -> ``{items, next_cursor, counts,
  settings: {enabled, review}}`` (newest change first; ``q`` matches words)
- ``POST   /api/memories {text}`` -> 201 memory (added by hand: source ``explicit``)
- ``PATCH  /api/memories/{id} {text}`` -> memory
- ``DELETE /api/memories/{id}`` -> 204; ``DELETE /api/memories`` -> ``{deleted}``
- ``POST   /api/memories/{id}/approve`` -> memory; ``.../reject`` -> 204 (review mode;
  approving a proposed update, ``replaces: {id, text}``, rewrites that memory)

Memory on/off and review mode are ``preferences.memory`` / ``preferences.memory_review``
(``PATCH /api/me``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from parley.http.bodies import Body, iso
from parley.http.deps import DB, CurrentUser, service
from parley.http.problems import Problem, not_found
from parley.memory.service import MemoryService, memory_enabled, review_enabled
from parley.memory.store import MemoryStore
from parley.memory.tables import Memory
from parley.memory.text import clean_fact

router = APIRouter(prefix="/api/memories", tags=["memory"])


class MemoryIn(Body):
    text: str = Field(min_length=1, max_length=500)


Memories = Annotated[MemoryService, Depends(service(MemoryService))]


def memory_out(row: Memory, replaced: Memory | None = None) -> dict[str, Any]:
    """The API shape; a proposed update (review mode) shows the memory it would
    replace as ``replaces: {id, text}`` (its scope is that memory's)."""
    replaces = None
    if row.replaces_id is not None:
        replaces = {"id": row.replaces_id, "text": replaced.text if replaced else None}
    return {
        "id": row.id,
        "text": row.text,
        "source": row.source,
        "status": row.status,
        "scope_type": row.scope_type,
        "scope_id": row.scope_id,
        "replaces": replaces,
        "conversation_id": row.conversation_id,
        "message_id": row.message_id,
        "url": f"/c/{row.conversation_id}" if row.conversation_id else None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _out(store: MemoryStore, rows: list[Memory]) -> list[dict[str, Any]]:
    ids = {r.replaces_id for r in rows if r.replaces_id}
    replaced = {m.id: m for m in [await store.get(i) for i in ids] if m is not None}
    return [memory_out(r, replaced.get(r.replaces_id or "")) for r in rows]


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
) -> dict[str, Any]:
    store = MemoryStore(db, user.id)
    try:
        items, next_cursor = await store.list(query=q, status=status, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise Problem(422, "Invalid pagination cursor.", "invalid_cursor") from exc
    return {
        "items": await _out(store, items),
        "next_cursor": next_cursor,
        "counts": await store.counts(),
        "settings": {
            "enabled": memory_enabled(user.preferences),
            "review": review_enabled(user.preferences),
        },
    }


@router.post("", status_code=201)
async def add_memory(body: MemoryIn, memories: Memories, user: CurrentUser) -> dict[str, Any]:
    result = await memories.remember(user.id, _text(body), source="explicit")
    return memory_out(result.memory)


@router.delete("")
async def delete_all_memories(user: CurrentUser, db: DB) -> dict[str, int]:
    deleted = await MemoryStore(db, user.id).delete_all()
    await db.commit()
    return {"deleted": deleted}


@router.patch("/{memory_id}")
async def edit_memory(
    memory_id: str, body: MemoryIn, memories: Memories, user: CurrentUser, db: DB
) -> dict[str, Any]:
    store = MemoryStore(db, user.id)
    row = await store.get(memory_id)
    if row is None:
        raise not_found("memory")
    text = _text(body)
    found = await memories.embed([text])
    await store.update(
        row,
        text=text,
        embedding=None if found is None else found[0].tobytes(),
        embedding_model=None if found is None else memories.model_name,
    )
    await db.commit()
    return (await _out(store, [row]))[0]


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(memory_id: str, user: CurrentUser, db: DB) -> Response:
    if not await MemoryStore(db, user.id).delete(memory_id):
        raise not_found("memory")
    await db.commit()
    return Response(status_code=204)


@router.post("/{memory_id}/approve")
async def approve_memory(memory_id: str, memories: Memories, user: CurrentUser) -> dict[str, Any]:
    """Activate a pending memory; a proposed update rewrites the memory it names
    and the answer is that memory."""
    row = await memories.approve(user.id, memory_id)
    if row is None:
        raise not_found("memory")
    return memory_out(row)


@router.post("/{memory_id}/reject", status_code=204)
async def reject_memory(memory_id: str, user: CurrentUser, db: DB) -> Response:
    store = MemoryStore(db, user.id)
    row = await store.get(memory_id)
    if row is None or row.status != "pending":
        raise not_found("pending memory")
    await store.delete(memory_id)
    await db.commit()
    return Response(status_code=204)
