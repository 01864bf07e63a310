"""HTTP API of the chat's "Forget these memories?" chip.

- ``GET  /api/memories/forget-requests/{id}`` -> ``ForgetRequestPublic`` (the chip reads
  it after a reload to show the request's state)
- ``POST /api/memories/forget-requests/{id}/approve`` -> deletes the memories (kept
  for ``undo_until``)
- ``POST /api/memories/forget-requests/{id}/cancel`` -> nothing deleted
- ``POST /api/memories/forget-requests/{id}/undo`` -> the memories come back and the
  request waits again; 409 ``undo_expired`` past the window

Every request is the signed-in user's own (another user's id answers 404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from parley.http.bodies import iso
from parley.http.deps import CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem, not_found
from parley.memory.forgetting import ForgetService
from parley.memory.tables import ForgetRequest

router = APIRouter(route_class=GuardedRoute, prefix="/forget-requests", tags=["memory"])
Forgets = Annotated[ForgetService, Depends(service(ForgetService))]


class ForgetMemory(BaseModel):
    id: str
    text: str


class ForgetRequestPublic(BaseModel):
    id: str
    phrase: str = Field(description="what the user asked to forget, in their words")
    status: Literal["pending", "approved", "cancelled", "undone"]
    memories: list[ForgetMemory] = Field(description="the memories it matched")
    undo_until: str | None = Field(description="approved: undo is possible until then")

    @classmethod
    def from_row(cls, row: ForgetRequest) -> ForgetRequestPublic:
        until = ForgetService.undo_until(row)
        return cls(
            id=row.id,
            phrase=row.phrase,
            status=row.status,  # type: ignore[arg-type]  # one of FORGET_STATUSES
            memories=[
                ForgetMemory(id=i, text=t) for i, t in zip(row.memory_ids, row.titles, strict=False)
            ],
            undo_until=iso(until) if until else None,
        )


async def _answer(
    action: Callable[[str, str], Awaitable[ForgetRequest | None]], user_id: str, request_id: str
) -> ForgetRequestPublic:
    row = await action(user_id, request_id)
    if row is None:
        raise not_found("forget request")
    return ForgetRequestPublic.from_row(row)


@router.get("/{request_id}")
async def get_forget_request(
    request_id: str, forgets: Forgets, user: CurrentUser
) -> ForgetRequestPublic:
    return await _answer(forgets.get, user.id, request_id)


@router.post("/{request_id}/approve")
async def approve_forget_request(
    request_id: str, forgets: Forgets, user: CurrentUser
) -> ForgetRequestPublic:
    """Delete the matched memories (a request already decided is answered as it is)."""
    return await _answer(forgets.approve, user.id, request_id)


@router.post("/{request_id}/cancel")
async def cancel_forget_request(
    request_id: str, forgets: Forgets, user: CurrentUser
) -> ForgetRequestPublic:
    return await _answer(forgets.cancel, user.id, request_id)


@router.post("/{request_id}/undo")
async def undo_forget_request(
    request_id: str, forgets: Forgets, user: CurrentUser
) -> ForgetRequestPublic:
    """Bring the forgotten memories back while the undo window lasts."""
    row = await forgets.undo(user.id, request_id)
    if row is None:
        raise not_found("forget request")
    if row.status == "approved":
        raise Problem(409, "It is too late to undo this.", "undo_expired")
    return ForgetRequestPublic.from_row(row)
