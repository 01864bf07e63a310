"""Stored chat completions: ``store: true`` on ``POST /v1/chat/completions``, and the
routes that read them back (``GET /v1/chat/completions``, ``GET``/``POST``/``DELETE
/v1/chat/completions/{id}``, ``GET /v1/chat/completions/{id}/messages``) in OpenAI's
shapes.

A stored completion is kept twice, on purpose: as a Parley chat (a conversation in
the user's sidebar, through ``ConversationStore``: the request's user and assistant
messages, then the answer with its provider, tokens and cost), and as the
``stored_completions`` row the routes serve (the request's messages and the
completion exactly as the client sent and saw them: system, developer and tool
messages, tool calls, parts). Deleting either deletes both: the row goes with its
chat (foreign key), and ``DELETE`` deletes the chat through
``parley.userdata.conversations``. A completion is found only with the key that
made it (``parley.storage.completions``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from parley.http.deps import DB, ChatKey, Principal, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.providers.base import ModelInfo
from parley.providers.openai_wire import (
    AnswerBuilder,
    ChatCompletion,
    ChatCompletionIn,
    check_metadata,
    to_message,
)
from parley.storage.completions import CompletionStore
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import StoredCompletion as StoredRow
from parley.turns.titles import heuristic_title
from parley.usage.ledger import Meter
from parley.userdata import UserDataHooks
from parley.userdata.conversations import delete_conversations

log = logging.getLogger(__name__)

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["openai-compatible"])

Databases = Annotated[Database, Depends(service(Database))]
UserData = Annotated[UserDataHooks, Depends(service(UserDataHooks))]

CHAT_ROLES = ("user", "assistant")  # what the Parley chat shows; the row keeps every role


# ---------------------------------------------------------------- keeping one


@dataclass(slots=True)
class Keeper:
    """Keeps one ``store: true`` completion once its answer is complete
    (``answer`` is fed every event by the relay)."""

    db: Database
    principal: Principal
    body: ChatCompletionIn
    model: ModelInfo
    completion_id: str
    answer: AnswerBuilder = field(default_factory=AnswerBuilder)
    stored: dict[str, Any] | None = None

    async def save(self, meter: Meter) -> str | None:
        """The chat's id, or None (logged) when it could not be kept: the answer
        was already given, so keeping it must not fail the request."""
        try:
            return await self._save(meter)
        except Exception:
            log.exception("could not keep stored completion %s", self.completion_id)
            return None

    async def _save(self, meter: Meter) -> str:
        input_tokens, output_tokens = meter.tokens()
        completion = self.answer.completion(self.completion_id, self.model.ref)
        completion["usage"] = {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        user = self.principal.user.id
        requested = [to_message(m) for m in self.body.messages]
        first_user = next((m.content for m in requested if m.role == "user" and m.content), "")
        async with self.db.session() as session:
            chats = ConversationStore(session, user)
            conv = await chats.create(
                title=heuristic_title(first_user) or "API chat", model=self.model.ref
            )
            await chats.update(conv, title_generated=True)
            parent: str | None = None
            for message in requested:
                if message.role in CHAT_ROLES and (message.content or message.role == "user"):
                    row = await chats.add_message(
                        conv,
                        role=message.role,
                        content=message.content,
                        parent_id=parent,
                        flush=False,
                    )
                    parent = row.id
            reply = completion["choices"][0]
            await chats.add_message(
                conv,
                role="assistant",
                content=reply["message"]["content"],
                reasoning=reply["message"].get("reasoning_content", ""),
                parent_id=parent,
                flush=False,
                status="complete",
                provider=self.model.provider,
                model=self.model.ref,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=self.model.cost(input_tokens, output_tokens),
                finish_reason=reply["finish_reason"],
            )
            session.add(
                StoredRow(
                    id=self.completion_id,
                    user_id=user,
                    api_key_id=self.principal.api_key_id,
                    conversation_id=conv.id,
                    model=self.model.ref,
                    meta=self.body.metadata,
                    messages=[m.model_dump(exclude_none=True) for m in self.body.messages],
                    completion=completion,  # created_at: now, finer than its "created"
                )
            )
            await session.commit()
        self.stored = {**completion, "metadata": self.body.metadata}
        return conv.id


# ---------------------------------------------------------------- shapes


class StoredCompletion(ChatCompletion):
    metadata: dict[str, str] | None = None


class StoredCompletionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StoredCompletion]
    first_id: str | None
    last_id: str | None
    has_more: bool


class StoredCompletionDeleted(BaseModel):
    id: str
    object: Literal["chat.completion.deleted"] = "chat.completion.deleted"
    deleted: bool = True


class StoredMessage(BaseModel):
    id: str
    role: str
    content: str | None
    name: str | None = None
    content_parts: list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StoredMessageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StoredMessage]
    first_id: str | None
    last_id: str | None
    has_more: bool


class MetadataUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, str] | None = Field(
        description="Replaces the completion's metadata (null or {}: none)."
    )

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(value)


def _public(row: StoredRow) -> StoredCompletion:
    return StoredCompletion.model_validate({**row.completion, "metadata": row.meta})


def _missing(completion_id: str) -> Problem:
    return Problem(
        404,
        f"No stored chat completion {completion_id!r} for this API key.",
        "not_found",
        param="completion_id",
    )


async def _mine(db: Any, principal: Principal, completion_id: str) -> StoredRow:
    row = await CompletionStore(db, principal.user.id, principal.api_key_id).get(completion_id)
    if row is None:
        raise _missing(completion_id)
    return row


def _metadata_filter(request: Request) -> dict[str, str]:
    """``metadata[key]=value`` query parameters, as OpenAI's SDK sends them."""
    wanted = {}
    for name, value in request.query_params.multi_items():
        if name.startswith("metadata[") and name.endswith("]"):
            wanted[name[len("metadata[") : -1]] = value
    return wanted


# ---------------------------------------------------------------- routes


@router.get("/chat/completions")
async def list_stored(
    request: Request,
    principal: ChatKey,
    db: DB,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64)] = None,
    order: Literal["asc", "desc"] = "asc",
    model: Annotated[str | None, Query(max_length=300)] = None,
) -> StoredCompletionList:
    """This key's stored completions, oldest first (``order=desc``: newest), filtered
    by ``model`` and ``metadata[key]=value``."""
    store = CompletionStore(db, principal.user.id, principal.api_key_id)
    cursor = None
    if after is not None:
        cursor = await store.get(after)
        if cursor is None:
            raise Problem(400, f"'after' names no stored completion ({after!r}).", param="after")
    rows, more = await store.page(
        limit=limit, after=cursor, order=order, model=model, metadata=_metadata_filter(request)
    )
    data = [_public(r) for r in rows]
    return StoredCompletionList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=more,
    )


@router.get("/chat/completions/{completion_id}")
async def get_stored(completion_id: str, principal: ChatKey, db: DB) -> StoredCompletion:
    return _public(await _mine(db, principal, completion_id))


@router.post("/chat/completions/{completion_id}")
async def update_stored(
    completion_id: str, body: MetadataUpdate, principal: ChatKey, db: DB
) -> StoredCompletion:
    """Replace a stored completion's ``metadata`` (the only field that changes)."""
    row = await _mine(db, principal, completion_id)
    store = CompletionStore(db, principal.user.id, principal.api_key_id)
    await store.set_metadata(row, body.metadata)
    await db.commit()
    return _public(row)


@router.delete("/chat/completions/{completion_id}")
async def delete_stored(
    completion_id: str, principal: ChatKey, db: DB, hooks: UserData
) -> StoredCompletionDeleted:
    """Delete a stored completion and the chat it was kept as."""
    row = await _mine(db, principal, completion_id)
    await delete_conversations(db, principal.user.id, [row.conversation_id], hooks)
    return StoredCompletionDeleted(id=completion_id)


@router.get("/chat/completions/{completion_id}/messages")
async def stored_messages(
    completion_id: str,
    principal: ChatKey,
    db: DB,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=80)] = None,
    order: Literal["asc", "desc"] = "asc",
) -> StoredMessageList:
    """The request's messages, as sent (ids ``<completion id>-<index>``)."""
    row = await _mine(db, principal, completion_id)
    messages = [_message(f"{row.id}-{i}", m) for i, m in enumerate(row.messages)]
    if order == "desc":
        messages.reverse()
    if after is not None:
        ids = [m.id for m in messages]
        if after not in ids:
            raise Problem(
                400, f"'after' names no message of this completion ({after!r}).", param="after"
            )
        messages = messages[ids.index(after) + 1 :]
    page = messages[:limit]
    return StoredMessageList(
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(messages) > limit,
    )


def _message(message_id: str, sent: dict[str, Any]) -> StoredMessage:
    content = sent.get("content")
    parts = None
    if isinstance(content, list):
        parts = content
        content = "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return StoredMessage(
        id=message_id,
        role=str(sent.get("role", "user")),
        content=content,
        name=sent.get("name"),
        content_parts=parts,
        tool_calls=sent.get("tool_calls"),
        tool_call_id=sent.get("tool_call_id"),
    )
