"""Chat turns streamed as Server-Sent Events: send, regenerate, edit, stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from starlette.responses import StreamingResponse

from parley.api.schemas import EditIn, MessagePublic, RegenerateIn, SendIn
from parley.api.stream_events import REATTACH_RESPONSE, SSE_RESPONSE, TurnStart
from parley.api.turn_stream import done_payload, frame, sse_response, turn_stream
from parley.errors import Invalid
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
    *,
    content: str | None = None,
    parent_id: str | None = None,
    message_id: str | None = None,
    model_ref: str | None = None,
    web_search: bool | None = None,
) -> StreamingResponse:
    service = turns
    await sync.ensure_fresh(db)  # providers and the embedded model's file an admin changed
    preferred = await sync.default_model(db)
    await db.close()  # the turn uses its own sessions; loaded objects stay readable
    turn = await service.prepare(
        principal.user,
        conversation_id,
        kind=kind,
        preferred_default=preferred,
        api_key_id=principal.api_key_id,
        content=content,
        parent_id=parent_id,
        message_id=message_id,
        model_ref=model_ref,
        web_search=web_search,
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
        web_search=body.web_search,
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
        web_search=body.web_search,
    )


def _last_seen(header: str | None, query: int | None) -> int | None:
    """The id of the last event the reader has (header first, as ``EventSource``
    sends it on reconnecting), or None for a reader that has none."""
    if header is not None and header.strip():
        try:
            return max(0, int(header.strip()))
        except ValueError:
            raise Invalid(
                "Last-Event-ID must be an event id of this stream.", "bad_event_id"
            ) from None
    return None if query is None else max(0, query)


async def _one(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


@router.get(
    "/{conversation_id}/messages/{message_id}/events",
    responses=REATTACH_RESPONSE,
    response_class=StreamingResponse,
)
async def reattach(
    conversation_id: str,
    message_id: str,
    turns: Turns,
    user: CurrentUser,
    db: DB,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None,
        Query(alias="last_event_id", ge=0, description="For `EventSource`: the header's value."),
    ] = None,
) -> StreamingResponse:
    """Reattach to the answer ``message_id`` (status ``streaming``): the events after
    ``Last-Event-ID`` (header or query), then the live ones, ending like the stream
    that started the turn; a finished turn (or one on another worker) answers its
    stored message as one ``done``."""
    seen = _last_seen(last_event_id, after)
    found = await turns.reattach(message_id, seen or 0)  # on this worker or another
    if found is not None and (found.user_id, found.conversation_id) != (user.id, conversation_id):
        found = None  # not this reader's: answered below as any unknown message is

    async def stored() -> dict[str, Any] | None:
        async with turns.db.session() as session:
            mine = ConversationStore(session, user.id)
            row = await mine.get_message(message_id)
            if row is None:
                return None
            return done_payload(row, (await mine.siblings_map([row])).get(row.id), None)

    if found is not None and seen is not None:
        # The user's own live turn, and a reader that has its start: replay at once,
        # without reading the database first.
        await db.close()
        return sse_response(turn_stream(None, found.items, stored))
    store = ConversationStore(db, user.id)
    if await store.get(conversation_id) is None:
        raise not_found("conversation")
    message = await store.get_message(message_id)
    if message is None or message.conversation_id != conversation_id or message.role != "assistant":
        raise not_found("message")
    if found is None:
        siblings = (await store.siblings_map([message])).get(message.id)
        body = frame("done", done_payload(message, siblings, None))
        await db.close()
        return sse_response(_one(body))
    start = None
    if seen is None:  # a reader with nothing: `start` too, as the turn began
        question = await store.get_message(message.parent_id or "")
        if question is not None:
            both = await store.siblings_map([question, message])
            answer = MessagePublic.from_row(message, both.get(message.id))
            answer = answer.model_copy(update={"content": "", "reasoning": "", "steps": []})
            start = TurnStart(
                user_message=MessagePublic.from_row(question, both.get(question.id)),
                assistant_message=answer,
            ).model_dump(mode="json")
    await db.close()
    return sse_response(turn_stream(start, found.items, stored))


@router.post("/{conversation_id}/stop", status_code=204)
async def stop(conversation_id: str, turns: Turns, user: CurrentUser, db: DB) -> Response:
    if await ConversationStore(db, user.id).get(conversation_id) is None:
        raise not_found("conversation")
    await turns.control.stop(conversation_id)
    return Response(status_code=204)
