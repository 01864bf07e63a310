"""Assistants over ``/v1``: ``assistant/<slug>`` as a model.

``/v1/chat/completions`` with an assistant is not the relay: it runs the whole
product server-side, as a turn in a chat with the assistant (its instructions,
knowledge, tools, memory mode and model), and answers with the final text; the
tool steps and the sources ride along as the extra field ``parley`` (and on the
last chunk when streaming). The request's earlier messages become the chat's
history, its system and developer messages join the turn's instructions. Without
``store: true`` the chat is temporary and deleted once the answer is out.

The API key's ``assistants`` scope (ids or slugs) decides which assistants it
reaches; its ``models`` scope does not apply to an assistant's own model. A
request that runs in a project (``parley.auth.scopes``) makes the chat there.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from parley.assistants.service import PREFIX, AssistantService
from parley.errors import Forbidden, Invalid
from parley.http.deps import Principal
from parley.http.problems import Problem
from parley.messages import Done, ErrorEvent, TextDelta
from parley.providers.openai_wire import ChatCompletionIn, to_message
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.turns import TurnService
from parley.turns.options import TurnOptions
from parley.turns.recorder import Final
from parley.userdata import UserDataHooks
from parley.userdata.conversations import delete_conversations

__all__ = ["Gateway"]


class Gateway:
    """``parley.seam.AssistantGateway``, provided under ``parley.seam.ASSISTANTS``."""

    def __init__(
        self,
        db: Database,
        assistants: AssistantService,
        turns: TurnService,
        hooks: UserDataHooks,
    ) -> None:
        self.db = db
        self.assistants = assistants
        self.turns = turns
        self.hooks = hooks
        self._tasks: set[asyncio.Task[None]] = set()  # chats forgotten after a client left

    async def model_ids(self, user_id: str, allowed: Callable[[str, str], bool]) -> list[str]:
        return [
            PREFIX + slug for i, slug in await self.assistants.usable(user_id) if allowed(i, slug)
        ]

    async def resolve(self, user_id: str, model: str, allowed: Callable[[str, str], bool]) -> str:
        slug = model.removeprefix(PREFIX)
        row = await self.assistants.by_slug(user_id, slug)
        if not allowed(row.id, row.slug):
            raise Forbidden(
                f"This API key may not use the assistant {slug!r}; create a key with it in "
                "its scope in Settings → API keys.",
                "model_not_allowed",
            )
        return row.id

    async def chat_completion(self, principal: Any, body: Any) -> Any:
        assert isinstance(principal, Principal) and isinstance(body, ChatCompletionIn)
        turns = self.turns
        user = principal.user
        assistant_id = await self.resolve(user.id, body.model, principal.scopes.allows_assistant)
        messages = [to_message(m) for m in body.messages]
        if messages[-1].role != "user":
            raise Invalid("With an assistant, the last message must be the user's question.")
        told = [m.content for m in messages if m.role == "system" and m.content]
        async with self.db.session() as session:
            store = ConversationStore(session, user.id)
            title = " ".join(messages[-1].content.split())[:80] or "API chat"
            conv = await store.create(
                title=title, temporary=not body.store, project_id=principal.project_id
            )
            conv.assistant_id = assistant_id
            parent: str | None = None
            for m in messages[:-1]:
                if m.role in ("user", "assistant") and (m.content or m.role == "user"):
                    row = await store.add_message(
                        conv, role=m.role, content=m.content, parent_id=parent
                    )
                    parent = row.id
            await session.commit()
            conversation_id = conv.id
        options = TurnOptions(
            instructions="\n\n".join(told),
            temperature=body.temperature,
            max_output_tokens=body.max_completion_tokens or body.max_tokens,
            images=tuple(messages[-1].images),
            endpoint="chat.completions",
        )
        try:
            turn = await turns.prepare(
                user,
                conversation_id,
                kind="send",
                content=messages[-1].content,
                parent_id=parent,
                api_key_id=principal.api_key_id,
                options=options,
            )
        except Exception:
            await self._forget(user.id, conversation_id, body.store)
            raise
        items = turns.start(turn)
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        if body.stream:
            return StreamingResponse(
                self._stream(items, completion_id, body, user.id, conversation_id),
                media_type="text/event-stream",
            )
        final = await self._final(items)
        await self._forget(user.id, conversation_id, body.store)
        row = final.message
        if row.status == "failed":
            raise Problem(
                502, row.error_message or "The assistant could not answer.", row.error_code
            )
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": row.content},
                        "finish_reason": _finish(final.finish_reason),
                    }
                ],
                "usage": _usage(row.input_tokens, row.output_tokens),
                "parley": _extra(row, conversation_id if body.store else None),
            }
        )

    @staticmethod
    async def _final(items: AsyncIterator[tuple[int, Any]]) -> Final:
        async for _, item in items:
            if isinstance(item, Final):
                return item
        raise Problem(502, "The assistant's answer could not be stored.", "storage_error")

    async def _stream(
        self,
        items: AsyncIterator[tuple[int, Any]],
        completion_id: str,
        body: ChatCompletionIn,
        user_id: str,
        conversation_id: str,
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **more,
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        finished = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for _, item in items:
                if isinstance(item, TextDelta):
                    yield chunk({"content": item.text})
                elif isinstance(item, ErrorEvent):
                    error = {"message": item.message, "type": "server_error", "code": item.code}
                    yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
                elif isinstance(item, Done):
                    continue
                elif isinstance(item, Final):
                    row = item.message
                    extra = {"parley": _extra(row, conversation_id if body.store else None)}
                    if body.include_usage:
                        extra["usage"] = _usage(row.input_tokens, row.output_tokens)
                    finished = True
                    yield chunk({}, _finish(item.finish_reason), **extra)
                    break
            yield b"data: [DONE]\n\n"
        finally:
            # In a task of its own: a client that leaves cancels this generator, and
            # an await here would be cancelled with it (the chat would be kept).
            if finished:
                self._later(self._forget(user_id, conversation_id, body.store))
            else:  # the client left: stop the turn, forget the chat once it is stored
                self._later(self._stop_then_forget(items, user_id, conversation_id, body.store))

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_then_forget(
        self,
        items: AsyncIterator[tuple[int, Any]],
        user_id: str,
        conversation_id: str,
        store: bool | None,
    ) -> None:
        try:
            await self.turns.control.stop(conversation_id)
            async for _, item in items:
                if isinstance(item, Final):
                    break
        finally:
            await self._forget(user_id, conversation_id, store)

    async def _forget(self, user_id: str, conversation_id: str, store: bool | None) -> None:
        """Without ``store: true`` the chat goes once the answer is out."""
        if store:
            return
        async with self.db.session() as session:
            await delete_conversations(session, user_id, [conversation_id], self.hooks)


def _finish(reason: str) -> str:
    return {"length": "length", "tool_calls": "tool_calls"}.get(reason, "stop")


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _extra(row: Any, conversation_id: str | None) -> dict[str, Any]:
    """What the answer did besides its text: the tool steps (calls and results) and
    the sources it was given (file passages, memories), and the chat it lives in."""
    return {
        "conversation_id": conversation_id,
        "steps": list(row.steps or []),
        "sources": list(row.sources or []),
    }
