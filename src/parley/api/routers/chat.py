"""Chat turns streamed as Server-Sent Events: send, regenerate, edit, stop."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.responses import StreamingResponse

from parley.api.schemas import EditIn, MessagePublic, RegenerateIn, SendIn
from parley.api.stream_events import SSE_RESPONSE, TurnStart
from parley.api.turn_stream import sse_response, turn_stream
from parley.http.deps import DB, CurrentPrincipal, CurrentUser, Principal, Sync, Turns
from parley.http.guard import GuardedRoute
from parley.http.problems import not_found
from parley.instance.providers import RegistrySync
from parley.storage.conversations import ConversationStore
from parley.turns import TurnService
from parley.turns.runner import TurnKind

router = APIRouter(route_class=GuardedRoute, prefix="/api/conversations", tags=["chat"])


async def _start(
    turns: TurnService,
    sync: RegistrySync,
    db: DB,
    principal: Principal,
    conversation_id: str,
    kind: TurnKind,
    **kwargs: str | None,
) -> StreamingResponse:
    service = turns
    preferred = await sync.default_model(db)
    await db.close()  # the turn uses its own sessions; loaded objects stay readable
    turn = await service.prepare(
        principal.user,
        conversation_id,
        kind=kind,
        preferred_default=preferred,
        api_key_id=principal.api_key_id,
        **kwargs,
    )
    start = TurnStart(
        user_message=MessagePublic.from_row(
            turn.user_message, turn.siblings.get(turn.user_message.id)
        ),
        assistant_message=MessagePublic.from_row(
            turn.assistant_message, turn.siblings.get(turn.assistant_message.id)
        ),
    )
    return sse_response(turn_stream(start.model_dump(mode="json"), service.start(turn)))


@router.post(
    "/{conversation_id}/messages", responses=SSE_RESPONSE, response_class=StreamingResponse
)
async def send_message(
    conversation_id: str,
    body: SendIn,
    turns: Turns,
    sync: Sync,
    principal: CurrentPrincipal,
    db: DB,
) -> StreamingResponse:
    return await _start(
        turns,
        sync,
        db,
        principal,
        conversation_id,
        "send",
        content=body.content,
        parent_id=body.parent_id,
        model_ref=body.model,
    )


@router.post(
    "/{conversation_id}/messages/{message_id}/regenerate",
    responses=SSE_RESPONSE,
    response_class=StreamingResponse,
)
async def regenerate(
    conversation_id: str,
    message_id: str,
    turns: Turns,
    sync: Sync,
    principal: CurrentPrincipal,
    db: DB,
    body: RegenerateIn | None = None,
) -> StreamingResponse:
    return await _start(
        turns,
        sync,
        db,
        principal,
        conversation_id,
        "regenerate",
        message_id=message_id,
        model_ref=body.model if body else None,
    )


@router.post(
    "/{conversation_id}/messages/{message_id}/edit",
    responses=SSE_RESPONSE,
    response_class=StreamingResponse,
)
async def edit(
    conversation_id: str,
    message_id: str,
    body: EditIn,
    turns: Turns,
    sync: Sync,
    principal: CurrentPrincipal,
    db: DB,
) -> StreamingResponse:
    return await _start(
        turns,
        sync,
        db,
        principal,
        conversation_id,
        "edit",
        message_id=message_id,
        content=body.content,
        model_ref=body.model,
    )


@router.post("/{conversation_id}/stop", status_code=204)
async def stop(conversation_id: str, turns: Turns, user: CurrentUser, db: DB) -> Response:
    if await ConversationStore(db, user.id).get(conversation_id) is None:
        raise not_found("conversation")
    await turns.control.stop(conversation_id)
    return Response(status_code=204)
