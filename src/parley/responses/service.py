"""Responses as Parley turns: a response is one turn of a Parley chat.

``create`` finds the chat (``previous_response_id``: the chat of that response,
continued from its answer, a branch if newer turns followed it; ``conversation``:
its active branch; neither: a new chat, temporary when ``store`` is false),
writes the input items that come before the question as rows, and prepares the
turn through ``parley.turns`` with the request's knobs (``TurnOptions``): memory,
files and Parley's tools apply as in the web app. A background driver follows the
turn, builds the output items (``stream.py``), feeds a streaming caller, and
stores the record; the turn itself runs whether or not anyone is listening.

Ending with ``function_call_output`` items continues the answer that asked for
them (a ``continue`` turn); any other input must end with a user message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import Conflict, Forbidden, Invalid, NotFound
from parley.instance.providers import RegistrySync
from parley.messages import ErrorEvent, ImagePart, ToolConfirm
from parley.responses.chain import fingerprint, prefix_fingerprints
from parley.responses.items import (
    InputItem,
    parse_input,
    plain_id,
    resp_id,
    row_items,
)
from parley.responses.plan import answer_format, plan_tools
from parley.responses.resource import ECHOED, resource, usage_of
from parley.responses.stream import OutputBuilder, frame
from parley.responses.tables import ResponseRecord
from parley.responses.wire import ResponseCreate
from parley.responses.writer import write_items
from parley.routing.rules import AUTO, is_auto
from parley.seam import AssistantGateway
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.inproject import check_chat, check_chat_id
from parley.storage.tables import Conversation, User, new_id
from parley.storage.tables import Message as MessageRow
from parley.turns import TurnService
from parley.turns.hooks import TOOL_CONFIRMER
from parley.turns.options import TurnOptions
from parley.turns.recorder import Final
from parley.userdata import UserDataHooks
from parley.userdata.conversations import delete_conversations

__all__ = ["ResponsesService", "Running"]

log = logging.getLogger(__name__)

ADMIT_AT_ONCE = 8


@dataclass(slots=True)
class Running:
    """A response this worker drives: the frames for a streaming caller, and
    ``done`` once its record is stored."""

    record_id: str
    conversation_id: str
    frames: asyncio.Queue[bytes | None] | None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    chain: list[InputItem] | None = None  # a stateless client's whole history (chain.py)


class ResponsesService:
    def __init__(
        self, db: Database, turns: TurnService, sync: RegistrySync, hooks: UserDataHooks
    ) -> None:
        self.db = db
        self.turns = turns
        self.sync = sync
        self.hooks = hooks
        self._running: dict[str, Running] = {}
        # Preparations at once: each holds a few pooled connections in turn, and
        # hundreds at once starved one another of them (a 500-stream burst timed
        # out); the rest wait here, holding nothing.
        self._admit = asyncio.Semaphore(ADMIT_AT_ONCE)
        self.assistants: Callable[[], AssistantGateway | None] = lambda: None  # assistant/<slug>
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ create

    async def create(
        self,
        user: User,
        api_key_id: str | None,
        body: ResponseCreate,
        *,
        stream: bool,
        may_use: Callable[[str], bool] | None = None,
        may_use_assistant: Callable[[str, str], bool] | None = None,
        project: str | None = None,
    ) -> Running:
        """Write the input, prepare the turn and start driving it (``_create``),
        ``ADMIT_AT_ONCE`` at a time; the answers then stream side by side.
        ``project``: the project the request runs in (``storage.inproject``)."""
        async with self._admit:
            return await self._create(
                user,
                api_key_id,
                body,
                stream=stream,
                may_use=may_use,
                may_use_assistant=may_use_assistant,
                project=project,
            )

    async def _create(
        self,
        user: User,
        api_key_id: str | None,
        body: ResponseCreate,
        *,
        stream: bool,
        may_use: Callable[[str], bool] | None = None,
        may_use_assistant: Callable[[str, str], bool] | None = None,
        project: str | None = None,
    ) -> Running:
        """Write the input, prepare the turn and start driving it; ``may_use``: the
        API key's model scope (a model it may not use is a 403 before anything);
        ``may_use_assistant``: its assistants scope (``assistant/<slug>`` models)."""
        if body.previous_response_id and body.conversation:
            raise Invalid("Send previous_response_id or conversation, not both.")
        if body.background and not body.store:
            raise Invalid("A background response is polled, so it is stored: drop store: false.")
        items = parse_input(body.input)
        if any(item.kind == "approval" for item in items):
            return await self._approved(
                user, api_key_id, body, items, stream=stream, project=project
            )
        plan = plan_tools(body, set(self.turns.tools.names()))
        async with self.db.session() as session:
            registry = await self.sync.ensure_fresh(session)
            preferred = await self.sync.default_model(session)
            assistant_id = await self._assistant(user.id, body.model, may_use_assistant)
            ref = (
                body.model
                if assistant_id
                else AUTO  # routed among the models the key may use (``parley.routing``)
                if is_auto(body.model)
                else await registry.ref_for(body.model, preferred, user.id)
            )
            if assistant_id is None and may_use is not None and not may_use(ref):
                raise Forbidden(
                    f"This API key may not use the model {ref!r}; create a key with that "
                    "model in its scope in Settings → API keys.",
                    "model_not_allowed",
                )
            store = ConversationStore(session, user.id)
            chain = None if body.previous_response_id or body.conversation else items
            previous_id = body.previous_response_id
            if chain is not None and len(items) > 1:  # a history this chat may hold already
                continued, known = await self._continued(session, user.id, items, project)
                if continued is not None:
                    previous_id, items = resp_id(continued), items[known:]
            conv, leaf, previous = await self._anchor(
                session, store, user, body, items, previous_id, project
            )
            if assistant_id is not None:  # the chat is the assistant's (its turn profile)
                if conv.assistant_id not in (None, assistant_id):
                    raise Invalid("This conversation belongs to another assistant.")
                conv.assistant_id = assistant_id
            instructions = [body.instructions or ""]
            kind, content, images, target = await self._write(
                store, conv, leaf, items, instructions
            )
            answer_id = new_id()  # the answer's row, written by the turn's preparation
            record = ResponseRecord(
                user_id=user.id,
                api_key_id=api_key_id,
                conversation_id=conv.id,
                message_id=answer_id,
                previous_response_id=previous,
                model=ref,
                status="queued" if body.background else "in_progress",
                request={key: getattr(body, key) for key in ECHOED}
                | {"conversation": bool(body.conversation), "include": body.include},
                input=[item.item for item in items],
                output=[],
                usage={},
                stored=body.store,
            )
            session.add(record)
            await session.commit()
        options = TurnOptions(
            instructions="\n\n".join(text for text in instructions if text),
            client_tools=plan.client,
            tools=plan.parley or (None if assistant_id else ()),  # None: the assistant's
            temperature=body.temperature,
            max_output_tokens=body.max_output_tokens,
            response_format=answer_format(body.text),
            extra={"top_p": body.top_p} if body.top_p is not None else {},
            tool_choice=plan.choice,
            reasoning_effort=(body.reasoning or {}).get("effort"),
            parallel_tool_calls=None if body.parallel_tool_calls else False,
            max_tool_calls=body.max_tool_calls,
            images=tuple(images),
            endpoint="responses",
            may_use=None if assistant_id else may_use,  # an assistant uses its own model
        )
        try:
            turn = await self.turns.prepare(
                user,
                conv.id,
                kind=kind,
                content=content,
                parent_id=target if kind == "send" else None,
                message_id=target if kind == "continue" else None,
                model_ref=None if assistant_id else ref,  # an assistant's chat: its model
                api_key_id=api_key_id,
                options=options,
                answer_id=answer_id,
            )
        except Exception:  # nothing is answered: a chat made for this request goes too
            made = previous is None and not body.conversation
            await self._forget(user.id, record.id, conv.id if made else None)
            raise
        client_names = {spec.name for spec in plan.client}
        builder = OutputBuilder(
            turn.assistant_message.id,
            client_names.__contains__,
            emit=stream,
            include=body.include or (),
        )
        running = self._start_driving(record, builder, self.turns.start(turn), user.id, stream)
        running.chain = chain
        return running

    async def _assistant(
        self, user_id: str, model: str, allowed: Callable[[str, str], bool] | None
    ) -> str | None:
        """The assistant ``model`` names (``assistant/<slug>``), else None."""
        if not model.startswith("assistant/"):
            return None
        gateway = self.assistants()
        if gateway is None:
            raise NotFound("model", "Assistants are not enabled on this server.")
        return await gateway.resolve(user_id, model, allowed or (lambda _id, _slug: True))

    async def _approved(
        self,
        user: User,
        api_key_id: str | None,
        body: ResponseCreate,
        items: list[InputItem],
        *,
        stream: bool,
        project: str | None = None,
    ) -> Running:
        """An ``mcp_approval_response``: decide the waiting call and follow the same
        turn from where the previous response stopped (a new response record)."""
        if len(items) != 1 or not body.previous_response_id:
            raise Invalid(
                "Send an mcp_approval_response alone, with the previous_response_id of "
                "the response that asked for it."
            )
        answer = items[0]
        async with self.db.session() as session:
            previous = await self._record(session, user.id, body.previous_response_id, project)
            pending = (previous.request or {}).get("pending")
            if not pending or pending.get("approval_id") != answer.call_id:
                raise NotFound(
                    "approval request", f"No approval request {answer.call_id!r} waits there."
                )
            confirmer = self.turns.services.get(TOOL_CONFIRMER)
            decided = None
            if confirmer is not None:
                decided = await confirmer.decide(
                    user.id, previous.conversation_id, pending["call_id"], answer.approve
                )
            follow = self.turns.subscribe(previous.message_id or "", int(pending["seq"]))
            if decided is None or follow is None:
                raise Conflict(
                    "That approval request is no longer waiting (it expired or the answer "
                    "ended); send the question again."
                )
            tools = (previous.request or {}).get("tools") or []
            record = ResponseRecord(
                user_id=user.id,
                api_key_id=api_key_id,
                conversation_id=previous.conversation_id,
                message_id=previous.message_id,
                previous_response_id=body.previous_response_id,
                model=previous.model,
                status="in_progress",
                request={key: getattr(body, key) for key in ECHOED}
                | {"tools": tools, "conversation": (previous.request or {}).get("conversation")},
                input=[answer.item],
                output=[],
                usage={},
                stored=previous.stored,
            )
            session.add(record)
            await session.commit()
        names = {t.get("name") for t in tools if t.get("type") == "function"}
        builder = OutputBuilder(
            f"{previous.message_id}_{record.id[:8]}",
            names.__contains__,
            emit=stream,
            include=(previous.request or {}).get("include") or (),
        )
        builder.resume(pending["call_id"], pending["name"], pending["arguments"])
        return self._start_driving(record, builder, follow.items, user.id, stream)

    def _start_driving(
        self,
        record: ResponseRecord,
        builder: OutputBuilder,
        items: AsyncIterator[tuple[int, object]],
        user_id: str,
        stream: bool,
    ) -> Running:
        running = Running(record.id, record.conversation_id, asyncio.Queue() if stream else None)
        self._running[record.id] = running
        if running.frames is not None:
            start = resource(record)
            running.frames.put_nowait(
                builder.event("response.created", response=start)
                + builder.event("response.in_progress", response=start)
            )
        task = asyncio.create_task(self._drive(running, builder, items, user_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return running

    async def _continued(
        self,
        session: AsyncSession,
        user_id: str,
        items: list[InputItem],
        project: str | None = None,
    ) -> tuple[str | None, int]:
        """The response whose whole exchange ``items`` starts with (the longest), and
        how many items that exchange is; ``(None, 0)`` for a history never seen (or
        seen only in chats outside the request's ``project``)."""
        prints = prefix_fingerprints(items)[:-1]
        query = select(ResponseRecord.id, ResponseRecord.chain_hash)
        if project is not None:
            query = query.join(
                Conversation, Conversation.id == ResponseRecord.conversation_id
            ).where(Conversation.project_id == project)
        found = (
            await session.execute(
                query.where(
                    ResponseRecord.user_id == user_id,
                    ResponseRecord.chain_hash.in_(prints),
                    ResponseRecord.stored.is_(True),
                    ResponseRecord.status == "completed",
                ).order_by(ResponseRecord.created_at.desc())
            )
        ).all()
        if not found:
            return None, 0
        length = {digest: n + 1 for n, digest in enumerate(prints)}
        best = max(found, key=lambda row: length[row.chain_hash])
        return best.id, length[best.chain_hash]

    async def _anchor(
        self,
        session: AsyncSession,
        store: ConversationStore,
        user: User,
        body: ResponseCreate,
        items: list[InputItem],
        previous_id: str | None,
        project: str | None = None,
    ) -> tuple[Conversation, MessageRow | None, str | None]:
        """The chat, the message the input follows, and the previous response's id;
        a new chat is made in ``project``, an existing one must be in it."""
        if previous_id:
            previous = await self._record(session, user.id, previous_id, project)
            conv = await store.get(previous.conversation_id)
            leaf = await store.get_message(previous.message_id or "")
            if conv is None or leaf is None:
                raise NotFound("response", "The previous response's chat was deleted.")
            if leaf.status == "streaming":
                raise Conflict("The previous response is still in progress; wait for it to finish.")
            return conv, leaf, previous_id
        wanted = body.conversation_id()
        if wanted:
            conv = await store.get(plain_id(wanted, "conv_"))
            if conv is None:
                raise NotFound("conversation")
            check_chat(conv, project)
            leaf = await store.get_message(conv.active_leaf_id) if conv.active_leaf_id else None
            if leaf is not None and leaf.status == "streaming":
                raise Conflict("This conversation is answering already; wait for it to finish.")
            return conv, leaf, None
        first = next((i.text for i in items if i.kind == "message" and i.role == "user"), "")
        title = " ".join(first.split())[:80] or "API chat"
        conv = await store.create(title=title, temporary=not body.store, project_id=project)
        if len(items) > 1:  # a history: its first question names the chat, not the last
            conv.title_generated = True
        return conv, None, None

    async def _write(
        self,
        store: ConversationStore,
        conv: Conversation,
        leaf: MessageRow | None,
        items: list[InputItem],
        instructions: list[str],
    ) -> tuple[Any, str | None, list[ImagePart], str | None]:
        """Store the items before the question; the turn's kind, question, images and
        the message it follows (``send``) or continues (``continue``)."""
        last = items[-1]
        if last.kind == "message" and last.role not in ("user", "system", "developer"):
            raise Invalid("input must end with a user message or function_call_output items.")
        if last.kind == "function_call":
            raise Invalid("input ends with a function_call: send its function_call_output too.")
        body = items[:-1] if last.kind == "message" and last.role == "user" else items
        leaf = await write_items(store, conv, leaf, body, instructions)
        if body is items:  # function call outputs: the answer that asked goes on
            if leaf is None or leaf.role != "assistant":
                raise Invalid("input must end with a user message or function_call_output items.")
            await store.session.flush()
            return "continue", None, [], leaf.id
        await store.session.flush()
        return "send", last.text, last.images, leaf.id if leaf else None

    async def _record(
        self, session: AsyncSession, user_id: str, rid: str, project: str | None = None
    ) -> ResponseRecord:
        """The caller's stored response ``rid``, whose chat is in ``project`` (if any)."""
        found = await session.scalar(
            select(ResponseRecord).where(
                ResponseRecord.id == plain_id(rid, "resp_"), ResponseRecord.user_id == user_id
            )
        )
        if found is None or not found.stored:
            raise NotFound("response")
        await check_chat_id(session, found.conversation_id, project)
        return found

    # ------------------------------------------------------------ drive

    async def _drive(
        self,
        running: Running,
        builder: OutputBuilder,
        items: AsyncIterator[tuple[int, object]],
        user_id: str,
    ) -> None:
        frames = running.frames
        final: Final | None = None
        error: ErrorEvent | None = None
        pending: dict[str, Any] | None = None
        try:
            async for seq, item in items:
                if isinstance(item, Final):
                    final = item
                    break
                if isinstance(item, ErrorEvent):
                    error = item
                    continue
                if isinstance(item, ToolConfirm):
                    # The caller answers with an mcp_approval_response in a new
                    # request; the turn waits meanwhile (up to the confirmation timeout).
                    approval_id, out = builder.approval(item)
                    pending = {
                        "approval_id": approval_id,
                        "call_id": item.id,
                        "name": item.name,
                        "arguments": item.arguments,
                        "seq": seq,
                    }
                    if frames is not None:
                        frames.put_nowait(out)
                    break
                out = builder.feed(item)
                if out and frames is not None:
                    frames.put_nowait(out)
        except Exception:
            log.exception("response %s: reading the turn failed", running.record_id)
        finally:
            closing = builder.finish() if pending is None else b""
            try:
                record = await self._finish(running, builder, final, error, pending)
            except Exception:
                log.exception("response %s: could not store the record", running.record_id)
                record = None
            if frames is not None:
                frames.put_nowait(closing + self._terminal(builder, record))
                frames.put_nowait(None)
            running.done.set()
            self._running.pop(running.record_id, None)
            if record is not None and not record.stored and pending is None:
                await self._forget(user_id, record.id, record.conversation_id)

    @staticmethod
    def _terminal(builder: OutputBuilder, record: ResponseRecord | None) -> bytes:
        if record is None:
            return frame(
                {
                    "type": "error",
                    "sequence_number": builder.seq,
                    "error": {
                        "type": "server_error",
                        "code": "storage_error",
                        "message": "The response could not be saved.",
                        "param": None,
                    },
                }
            )
        body = resource(record)
        kind = {
            "completed": "response.completed",
            "failed": "response.failed",
        }.get(record.status, "response.incomplete")
        return builder.event(kind, response=body)

    async def _finish(
        self,
        running: Running,
        builder: OutputBuilder,
        final: Final | None,
        error: ErrorEvent | None,
        pending: dict[str, Any] | None = None,
    ) -> ResponseRecord | None:
        async with self.db.session() as session:
            record = await session.get(ResponseRecord, running.record_id)
            if record is None:
                return None
            record.output = builder.output
            record.completed_at = datetime.now(UTC)
            if running.chain is not None and pending is None and record.stored:
                record.chain_hash = fingerprint(running.chain, builder.output)
            if pending is not None:  # ends with an approval request; the turn waits
                record.request = {**(record.request or {}), "pending": pending}
                record.usage = usage_of(0, 0)
                record.status = "completed"
                await session.commit()
                return record
            if final is not None:
                usage = final.usage
                record.usage = usage_of(usage.input_tokens, usage.output_tokens)
                reason = final.finish_reason
            else:
                reason = "error"
            if error is not None or reason == "error":
                record.status = "failed"
                record.error = {
                    "code": error.code if error else "server_error",
                    "message": error.message if error else "The response failed.",
                }
            elif reason == "cancelled":
                record.status = "cancelled"
            elif reason == "length":
                record.status = "incomplete"
                record.incomplete_reason = "max_output_tokens"
            else:
                record.status = "completed"
            await session.commit()
            return record

    async def _forget(self, user_id: str, record_id: str, conversation_id: str | None) -> None:
        """``store: false``: the temporary chat goes once the answer is out (its
        record with it, by the foreign key's cascade)."""
        async with self.db.session() as session:
            if conversation_id is None:
                found = await session.get(ResponseRecord, record_id)
                if found is not None:
                    await session.delete(found)
                    await session.commit()
                return
            await delete_conversations(session, user_id, [conversation_id], self.hooks)

    # ------------------------------------------------------------ read, cancel, delete

    async def get(self, user_id: str, rid: str, project: str | None = None) -> dict[str, Any]:
        async with self.db.session() as session:
            record = await self._record(session, user_id, rid, project)
            if record.status in ("queued", "in_progress") and record.id not in self._running:
                await self._reconcile(session, record)
            return resource(record)

    async def _reconcile(self, session: AsyncSession, record: ResponseRecord) -> None:
        """A response whose driver is gone (another worker, a restart): its answer's
        row says how it ended; its output is rebuilt from the row."""
        row = await session.get(MessageRow, record.message_id) if record.message_id else None
        if row is None or row.status == "streaming":
            return
        record.output = row_items(row)
        record.usage = usage_of(row.input_tokens, row.output_tokens)
        record.status = {"complete": "completed", "cancelled": "cancelled"}.get(
            row.status, "failed"
        )
        if record.status == "failed":
            record.error = {
                "code": row.error_code or "server_error",
                "message": row.error_message or "The response failed.",
            }
        record.completed_at = row.updated_at
        await session.commit()

    async def wait(self, running: Running) -> dict[str, Any]:
        await running.done.wait()
        async with self.db.session() as session:
            record = await session.get(ResponseRecord, running.record_id)
            if record is None:  # store=false: gone already; answer from the last state
                raise NotFound("response")
            return resource(record)

    async def snapshot(self, running: Running) -> dict[str, Any]:
        async with self.db.session() as session:
            record = await session.get(ResponseRecord, running.record_id)
            if record is None:
                raise NotFound("response")
            return resource(record)

    async def cancel(self, user_id: str, rid: str, project: str | None = None) -> dict[str, Any]:
        async with self.db.session() as session:
            record = await self._record(session, user_id, rid, project)
            if not (record.request or {}).get("background"):
                raise Invalid("Only a response created with background: true can be cancelled.")
            conversation_id = record.conversation_id
            running = record.status in ("queued", "in_progress")
        if running:
            await self.turns.control.stop(conversation_id)
            mine = self._running.get(plain_id(rid, "resp_"))
            if mine is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(mine.done.wait(), timeout=10)
        return await self.get(user_id, rid, project)

    async def delete(self, user_id: str, rid: str, project: str | None = None) -> str:
        async with self.db.session() as session:
            record = await self._record(session, user_id, rid, project)
            await session.delete(record)
            await session.commit()
            return resp_id(record.id)

    async def input_items(
        self, user_id: str, rid: str, project: str | None = None
    ) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            record = await self._record(session, user_id, rid, project)
            return [
                {"id": item.get("id") or f"in_{record.id}_{n}", **item}
                for n, item in enumerate(record.input or [])
            ]

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
