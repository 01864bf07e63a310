"""Conversations: list, create, read (active branch with siblings), update,
delete, switch branch, search, and per-message feedback and pins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from parley.api.schemas import (
    BranchIn,
    ConversationCreate,
    ConversationDetail,
    ConversationPage,
    ConversationPublic,
    ConversationUpdate,
    MessagePublic,
    MessageUpdate,
    SearchHit,
    SearchResults,
    SummaryPublic,
)
from parley.http.deps import DB, CurrentUser, ServicesDep, Tools, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem, not_found
from parley.storage.conversations import ConversationStore
from parley.storage.search import search_conversations
from parley.storage.tables import Conversation
from parley.turns import picks
from parley.userdata import UserDataHooks
from parley.userdata.conversations import delete_conversations

router = APIRouter(route_class=GuardedRoute, prefix="/api", tags=["conversations"])

UserDataDep = Annotated[UserDataHooks, Depends(service(UserDataHooks))]


async def conversation_view(store: ConversationStore, conv: Conversation) -> ConversationDetail:
    path = await store.active_path(conv)
    siblings = await store.siblings_map(path)
    ids = {m.id for m in path}
    summary = None
    if conv.summary and conv.summary_until_id in ids:  # only this branch's summary
        summary = SummaryPublic(text=conv.summary, until_message_id=conv.summary_until_id)
    return ConversationDetail(
        conversation=ConversationPublic.from_row(conv),
        messages=[MessagePublic.from_row(m, siblings.get(m.id)) for m in path],
        summary=summary,
    )


@router.get("/conversations")
async def list_conversations(
    user: CurrentUser,
    db: DB,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200),
    archived: bool = False,
) -> ConversationPage:
    items, next_cursor = await ConversationStore(db, user.id).list(
        limit=limit, cursor=cursor, archived=archived
    )
    return ConversationPage(
        items=[ConversationPublic.from_row(c) for c in items], next_cursor=next_cursor
    )


@router.post("/conversations", status_code=201)
async def create_conversation(
    body: ConversationCreate, tools: Tools, user: CurrentUser, db: DB, services: ServicesDep
) -> ConversationPublic:
    await picks.require(services, user, body.model, db)  # the user's groups' models
    store = ConversationStore(db, user.id)
    conv = await store.create(title=body.title, model=body.model, temporary=body.temporary)
    if body.tools is not None:  # chosen on the new-chat screen, before the first message
        await store.update(conv, tools=_tool_selection(body.tools, tools.names()))
    await db.commit()
    return ConversationPublic.from_row(conv)


@router.get("/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, user: CurrentUser, db: DB) -> ConversationDetail:
    store = ConversationStore(db, user.id)
    conv = await store.get(conversation_id)
    if conv is None:
        raise not_found("conversation")
    return await conversation_view(store, conv)


@router.patch("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: str,
    body: ConversationUpdate,
    tools: Tools,
    user: CurrentUser,
    db: DB,
    services: ServicesDep,
) -> ConversationPublic:
    await picks.require(services, user, body.model, db)  # the user's groups' models
    store = ConversationStore(db, user.id)
    conv = await store.get(conversation_id)
    if conv is None:
        raise not_found("conversation")
    changes = body.model_dump(exclude_none=True)
    if "tools" in body.model_fields_set:
        changes["tools"] = _tool_selection(body.tools, tools.names())
    if "title" in changes:
        changes["title"] = changes["title"].strip() or conv.title
        changes["title_generated"] = True  # a user's title is never overwritten
    await store.update(conv, **changes)
    await db.commit()
    return ConversationPublic.from_row(conv)


def _tool_selection(names: list[str] | None, known: list[str]) -> list[str]:
    """Stored form of a tool choice: [] = defaults, [""] = none (names are never empty)."""
    if names is None:
        return []
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise Problem(
            422, f"Unknown tools: {', '.join(unknown)}. GET /api/tools lists them.", "unknown_tool"
        )
    return list(dict.fromkeys(names)) or [""]


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: str, user: CurrentUser, db: DB, hooks: UserDataDep
) -> Response:
    """The conversation, its messages and what the features keep for it (attachments
    with their bytes and vectors, code outputs, its kernel), at once."""
    if not await delete_conversations(db, user.id, [conversation_id], hooks):
        raise not_found("conversation")
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/branch")
async def switch_branch(
    conversation_id: str, body: BranchIn, user: CurrentUser, db: DB
) -> ConversationDetail:
    store = ConversationStore(db, user.id)
    conv = await store.get(conversation_id)
    message = await store.get_message(body.message_id)
    if conv is None or message is None or message.conversation_id != conv.id:
        raise not_found("message")
    leaf = await store.newest_leaf_under(message.id)
    await store.set_active_leaf(conv, leaf.id if leaf else message.id)
    await db.commit()
    return await conversation_view(store, conv)


@router.get("/search")
async def search(
    user: CurrentUser,
    db: DB,
    q: str = Query(min_length=1, max_length=500),
    limit: int = Query(20, ge=1, le=100),
) -> SearchResults:
    hits = await search_conversations(db, user.id, q, limit=limit)
    return SearchResults(
        items=[
            SearchHit(
                conversation_id=h.conversation_id,
                title=h.title,
                message_id=h.message_id,
                snippet=h.snippet,
                highlights=h.highlights,
            )
            for h in hits
        ]
    )


@router.patch("/messages/{message_id}")
async def update_message(
    message_id: str, body: MessageUpdate, user: CurrentUser, db: DB
) -> MessagePublic:
    store = ConversationStore(db, user.id)
    if await store.get_message(message_id) is None:
        raise not_found("message")
    changes = body.model_dump(exclude_none=True)
    if changes:
        await store.update_message(message_id, **changes)
        await db.commit()
    message = await store.get_message(message_id)
    assert message is not None
    return MessagePublic.from_row(message, (await store.siblings_map([message])).get(message.id))
