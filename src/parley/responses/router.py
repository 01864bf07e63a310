"""``/v1/responses`` and ``/v1/conversations``: thin HTTP over the services.

Authenticated by Parley API keys, like the rest of ``/v1``; every id is the
caller's or answers 404 (the services scope every query by user).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse

from parley import loopshare
from parley.http.deps import DB, ConversationsKey, ResponsesKey, ServicesDep, service
from parley.http.guard import GuardedRoute
from parley.responses.conversations import ConversationsService
from parley.responses.service import ResponsesService, Running
from parley.responses.socket import serve_socket
from parley.responses.wire import (
    CompactIn,
    CompactObject,
    ConversationDeleted,
    ConversationItem,
    ConversationItemsCreate,
    ConversationObject,
    InputTokens,
    InputTokensIn,
    ItemList,
    OpenAIConversationCreate,
    OpenAIConversationUpdate,
    ResponseCreate,
    ResponseDeleted,
    ResponseObject,
)
from parley.turns.picks import allows, pickable

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["openai-compatible"])

Responses = Annotated[ResponsesService, Depends(service(ResponsesService))]
Conversations = Annotated[ConversationsService, Depends(service(ConversationsService))]

_CREATE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ResponseObject,
        "content": {"text/event-stream": {}},
        "description": "The response, or with `stream: true` the specification's "
        "server-sent events (`response.created` ... `response.completed`).",
    }
}


async def _frames(running: Running) -> AsyncIterator[bytes]:
    assert running.frames is not None
    while (chunk := await running.frames.get()) is not None:
        yield chunk


@router.post("/responses", response_model=None, responses=_CREATE_DOC)
async def create_response(
    body: ResponseCreate, principal: ResponsesKey, responses: Responses, db: DB
) -> Response:
    await loopshare.take_slice(start=True)  # admitting a turn is heavy: wait for a slice
    await db.close()  # the key's lookup is done: its connection goes back to the pool
    running = await responses.create(
        principal.user,
        principal.api_key_id,
        body,
        stream=body.stream,
        may_use_assistant=principal.scopes.allows_assistant,
        project=principal.project_id,
    )
    if body.stream:
        return StreamingResponse(_frames(running), media_type="text/event-stream")
    if body.background:
        return JSONResponse(await responses.snapshot(running))
    return JSONResponse(await responses.wait(running))


@router.websocket("/responses")
async def responses_socket(websocket: WebSocket) -> None:
    """WebSocket mode: ``response.create`` messages in, the stream's events out."""
    await serve_socket(websocket)


@router.get("/responses/{response_id}", response_model=ResponseObject)
async def get_response(
    response_id: str, principal: ResponsesKey, responses: Responses
) -> dict[str, Any]:
    return await responses.get(principal.user.id, response_id, principal.project_id)


@router.delete("/responses/{response_id}", response_model=ResponseDeleted)
async def delete_response(
    response_id: str, principal: ResponsesKey, responses: Responses
) -> ResponseDeleted:
    return ResponseDeleted(
        id=await responses.delete(principal.user.id, response_id, principal.project_id)
    )


@router.post("/responses/{response_id}/cancel", response_model=ResponseObject)
async def cancel_response(
    response_id: str, principal: ResponsesKey, responses: Responses
) -> dict[str, Any]:
    return await responses.cancel(principal.user.id, response_id, principal.project_id)


@router.get("/responses/{response_id}/input_items", response_model=ItemList)
async def input_items(
    response_id: str,
    principal: ResponsesKey,
    responses: Responses,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> ItemList:
    items = await responses.input_items(principal.user.id, response_id, principal.project_id)
    return _page(items, limit, order, after)


@router.post("/responses/input_tokens", response_model=InputTokens)
async def count_input_tokens(
    body: InputTokensIn, principal: ResponsesKey, conversations: Conversations
) -> InputTokens:
    return InputTokens(
        input_tokens=await conversations.input_tokens(principal.user, body, principal.project_id)
    )


@router.post("/responses/compact", response_model=CompactObject)
async def compact_response(
    body: CompactIn, principal: ResponsesKey, conversations: Conversations, services: ServicesDep
) -> CompactObject:
    """A long history as a summary (a ``compaction`` item) and the newest question."""
    picks = await pickable(services, principal.user)  # the user's groups' models
    return await conversations.compact(
        principal.user,
        body,
        principal.api_key_id,
        principal.project_id,
        lambda ref: principal.may_use_model(ref) and allows(picks, ref),
    )


# ---------------------------------------------------------------- conversations


@router.post("/conversations", response_model=ConversationObject)
async def create_conversation(
    body: OpenAIConversationCreate, principal: ConversationsKey, conversations: Conversations
) -> ConversationObject:
    return await conversations.create(
        principal.user.id, body.items, body.metadata or {}, principal.project_id
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationObject)
async def get_conversation(
    conversation_id: str, principal: ConversationsKey, conversations: Conversations
) -> ConversationObject:
    return await conversations.get(principal.user.id, conversation_id, principal.project_id)


@router.post("/conversations/{conversation_id}", response_model=ConversationObject)
async def update_conversation(
    conversation_id: str,
    body: OpenAIConversationUpdate,
    principal: ConversationsKey,
    conversations: Conversations,
) -> ConversationObject:
    return await conversations.update(
        principal.user.id, conversation_id, body.metadata, principal.project_id
    )


@router.delete("/conversations/{conversation_id}", response_model=ConversationDeleted)
async def delete_conversation(
    conversation_id: str, principal: ConversationsKey, conversations: Conversations
) -> ConversationDeleted:
    return ConversationDeleted(
        id=await conversations.delete(principal.user.id, conversation_id, principal.project_id)
    )


@router.get("/conversations/{conversation_id}/items", response_model=ItemList)
async def list_items(
    conversation_id: str,
    principal: ConversationsKey,
    conversations: Conversations,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> ItemList:
    items = await conversations.items(principal.user.id, conversation_id, principal.project_id)
    return _page(items, limit, order, after)


@router.post("/conversations/{conversation_id}/items", response_model=ItemList)
async def create_items(
    conversation_id: str,
    body: ConversationItemsCreate,
    principal: ConversationsKey,
    conversations: Conversations,
) -> ItemList:
    added = await conversations.add_items(
        principal.user.id, conversation_id, body.items, principal.project_id
    )
    return _page(added, len(added) or 1, "asc", None)


@router.get("/conversations/{conversation_id}/items/{item_id}", response_model=ConversationItem)
async def get_item(
    conversation_id: str, item_id: str, principal: ConversationsKey, conversations: Conversations
) -> ConversationItem:
    return ConversationItem.model_validate(
        await conversations.item(principal.user.id, conversation_id, item_id, principal.project_id)
    )


@router.delete(
    "/conversations/{conversation_id}/items/{item_id}", response_model=ConversationObject
)
async def delete_item(
    conversation_id: str, item_id: str, principal: ConversationsKey, conversations: Conversations
) -> ConversationObject:
    return await conversations.delete_item(
        principal.user.id, conversation_id, item_id, principal.project_id
    )


def _page(items: list[dict[str, Any]], limit: int, order: str, after: str | None) -> ItemList:
    ordered = items if order == "asc" else list(reversed(items))
    if after is not None:
        ids = [item.get("id") for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    page = ordered[:limit]
    return ItemList(
        data=page,
        first_id=page[0].get("id") if page else None,
        last_id=page[-1].get("id") if page else None,
        has_more=len(ordered) > limit,
    )
