"""The Conversations API: a Conversation is a Parley chat.

It is in the user's sidebar like any chat, and a chat started in the web app is
a Conversation too (its id, with or without ``conv_``). Its items are the active
branch's messages, tool calls and outputs (``items.row_items``); ``metadata``
is kept in ``conversation_metadata``. Deleting one goes through
``parley.userdata.conversations`` like a deletion in the web app (files,
outputs and kernels go too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.engine.tokens import counter_for, messages_tokens, tools_tokens
from parley.errors import NotFound
from parley.instance.providers import RegistrySync
from parley.messages import Message, ToolSpec
from parley.responses.compact import compact
from parley.responses.items import conv_id, parse_input, plain_id, row_items
from parley.responses.tables import ConversationMetadata, ResponseRecord
from parley.responses.wire import CompactIn, CompactObject, ConversationObject, InputTokensIn
from parley.responses.writer import write_items
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.inproject import check_chat
from parley.storage.tables import Conversation, User
from parley.storage.tables import Message as MessageRow
from parley.turns.history import history_from_rows
from parley.usage.metering import LedgerRef
from parley.userdata import UserDataHooks
from parley.userdata.conversations import delete_conversations

__all__ = ["ConversationsService"]

ALL = 100_000  # an API listing reads the whole branch


class ConversationsService:
    def __init__(
        self,
        db: Database,
        sync: RegistrySync,
        hooks: UserDataHooks,
        ledger: LedgerRef = lambda: None,
    ) -> None:
        self.db = db
        self.sync = sync
        self.hooks = hooks
        self.ledger = ledger  # ``ctx.lookup(UsageLedger)``: compaction is a ledger row

    async def _conv(
        self, store: ConversationStore, wanted: str, project: str | None = None
    ) -> Conversation:
        """The caller's chat ``wanted``; in ``project`` when the request runs in one."""
        conv = await store.get(plain_id(wanted, "conv_"))
        if conv is None:
            raise NotFound("conversation")
        check_chat(conv, project)
        return conv

    @staticmethod
    async def _metadata(session: AsyncSession, conv: Conversation) -> dict[str, str]:
        row = await session.get(ConversationMetadata, conv.id)
        return dict(row.data) if row is not None else {}

    @staticmethod
    def _object(conv: Conversation, metadata: dict[str, str]) -> ConversationObject:
        return ConversationObject(
            id=conv_id(conv.id), created_at=int(conv.created_at.timestamp()), metadata=metadata
        )

    async def create(
        self,
        user_id: str,
        raw_items: list[dict[str, Any]],
        metadata: dict[str, str],
        project: str | None = None,
    ) -> ConversationObject:
        items = parse_input(raw_items) if raw_items else []
        first = next((i.text for i in items if i.kind == "message" and i.role == "user"), "")
        async with self.db.session() as session:
            store = ConversationStore(session, user_id)
            conv = await store.create(
                title=" ".join(first.split())[:80] or "API conversation", project_id=project
            )
            await write_items(store, conv, None, items, [])
            session.add(
                ConversationMetadata(conversation_id=conv.id, user_id=user_id, data=metadata)
            )
            await session.commit()
            return self._object(conv, metadata)

    async def get(
        self, user_id: str, wanted: str, project: str | None = None
    ) -> ConversationObject:
        async with self.db.session() as session:
            conv = await self._conv(ConversationStore(session, user_id), wanted, project)
            return self._object(conv, await self._metadata(session, conv))

    async def update(
        self, user_id: str, wanted: str, metadata: dict[str, str], project: str | None = None
    ) -> ConversationObject:
        async with self.db.session() as session:
            conv = await self._conv(ConversationStore(session, user_id), wanted, project)
            row = await session.get(ConversationMetadata, conv.id)
            if row is None:
                session.add(
                    ConversationMetadata(conversation_id=conv.id, user_id=user_id, data=metadata)
                )
            else:
                row.data = dict(metadata)
            await session.commit()
            return self._object(conv, metadata)

    async def delete(self, user_id: str, wanted: str, project: str | None = None) -> str:
        async with self.db.session() as session:
            conv = await self._conv(ConversationStore(session, user_id), wanted, project)
            await delete_conversations(session, user_id, [conv.id], self.hooks)
            return conv_id(conv.id)

    async def _rows(
        self, session: AsyncSession, user_id: str, wanted: str, project: str | None = None
    ) -> list[MessageRow]:
        store = ConversationStore(session, user_id)
        conv = await self._conv(store, wanted, project)
        if conv.active_leaf_id is None:
            return []
        return await store.active_path(conv, window=ALL)

    async def _client_names(self, session: AsyncSession, conv: str) -> set[str] | None:
        """Function tools callers declared in this chat's responses (None: none
        recorded, so steps are told apart by name)."""
        found = await session.scalars(
            select(ResponseRecord.request).where(ResponseRecord.conversation_id == conv)
        )
        names = {
            tool.get("name")
            for request in found
            for tool in (request or {}).get("tools") or []
            if tool.get("type") == "function"
        }
        return {name for name in names if isinstance(name, str)} or None

    async def items(
        self, user_id: str, wanted: str, project: str | None = None
    ) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = await self._rows(session, user_id, wanted, project)
            names = await self._client_names(session, rows[0].conversation_id) if rows else None
            return [item for row in rows for item in row_items(row, names)]

    async def add_items(
        self,
        user_id: str,
        wanted: str,
        raw_items: list[dict[str, Any]],
        project: str | None = None,
    ) -> list[dict[str, Any]]:
        items = parse_input(raw_items)
        async with self.db.session() as session:
            store = ConversationStore(session, user_id)
            conv = await self._conv(store, wanted, project)
            leaf = await store.get_message(conv.active_leaf_id) if conv.active_leaf_id else None
            before = {leaf.id} if leaf is not None else set()
            await write_items(store, conv, leaf, items, [])
            await session.commit()
            rows = await store.active_path(conv, window=len(items) + 2)
            new = [row for row in rows if row.id not in before and row.created_at]
            added = [item for row in new[-len(items) :] for item in row_items(row)]
            return added

    async def item(
        self, user_id: str, wanted: str, item_id: str, project: str | None = None
    ) -> dict[str, Any]:
        for item in await self.items(user_id, wanted, project):
            if item.get("id") == item_id:
                return item
        raise NotFound("item")

    async def delete_item(
        self, user_id: str, wanted: str, item_id: str, project: str | None = None
    ) -> ConversationObject:
        """Delete a message item: its row goes, and what followed it on the branch
        hangs from the row's parent (a tool call item goes with its message)."""
        message_id = item_id.split("_")[1] if item_id.count("_") >= 1 else item_id
        async with self.db.session() as session:
            store = ConversationStore(session, user_id)
            conv = await self._conv(store, wanted, project)
            row = await store.get_message(message_id)
            if row is None or row.conversation_id != conv.id:
                raise NotFound("item")
            children = await session.scalars(
                select(MessageRow).where(
                    MessageRow.parent_id == row.id, MessageRow.user_id == user_id
                )
            )
            for child in children:
                child.parent_id = row.parent_id
            if conv.active_leaf_id == row.id:
                conv.active_leaf_id = row.parent_id
            await session.delete(row)
            await session.commit()
            return self._object(conv, await self._metadata(session, conv))

    async def compact(
        self,
        user: User,
        body: CompactIn,
        api_key_id: str | None = None,
        project: str | None = None,
        may_use: Callable[[str], bool] | None = None,
    ) -> CompactObject:
        found = await compact(
            self.db,
            self.sync,
            user,
            model_name=body.model,
            raw_input=body.input,
            previous_response_id=body.previous_response_id,
            instructions=body.instructions,
            ledger=self.ledger(),
            api_key_id=api_key_id,
            project=project,
            may_use=may_use,
        )
        return CompactObject.model_validate(found)

    async def input_tokens(
        self, user: User, body: InputTokensIn, project: str | None = None
    ) -> int:
        """What the input would cost the model: the chat it continues, the input,
        the instructions and the tools (Parley's system prompt and context not
        counted: they depend on the turn)."""
        items = parse_input(body.input)
        async with self.db.session() as session:
            registry = await self.sync.ensure_fresh(session)
            ref = await registry.ref_for(
                body.model, await self.sync.default_model(session), user.id
            )
            model = await registry.resolve(ref)
            rows: list[MessageRow] = []
            wanted = body.conversation if isinstance(body.conversation, str) else None
            if isinstance(body.conversation, dict):
                wanted = body.conversation.get("id")
            if body.previous_response_id:
                record = await session.scalar(
                    select(ResponseRecord).where(
                        ResponseRecord.id == plain_id(body.previous_response_id, "resp_"),
                        ResponseRecord.user_id == user.id,
                    )
                )
                if record is None:
                    raise NotFound("response")
                wanted = record.conversation_id
            if wanted:
                rows = await self._rows(session, user.id, wanted, project)
        history, _ = history_from_rows(rows)
        messages = [*history, *(Message("user", i.text) for i in items if i.text)]
        if body.instructions:
            messages.insert(0, Message("system", body.instructions))
        specs = [
            ToolSpec(str(t.get("name")), str(t.get("description") or ""), t.get("parameters") or {})
            for t in body.tools
            if t.get("type") == "function"
        ]
        count = counter_for(model)
        return messages_tokens(messages, count) + tools_tokens(specs, count)
