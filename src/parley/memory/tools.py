"""Tools for models that call tools: ``remember`` and ``search_conversations``.

Both find the turn's conversation from the ``ToolContext`` (scoped to the
user) and do nothing in temporary chats or when memory is off. ``remember``
only saves what the user's own latest message supports, so a page or file
that tells the model "remember that..." cannot plant a memory.
``search_conversations`` searches the user's earlier chats with the same
index as the sidebar search and cites each hit as a ``/c/{id}`` link.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from parley.memory.scopes import chat_visible, project_mode
from parley.memory.service import MemoryService, memory_enabled, scope_of
from parley.memory.text import clean_fact, signals_change, supported_by
from parley.storage.db import Database
from parley.storage.search import search_conversations
from parley.storage.tables import Conversation, User
from parley.storage.tables import Message as MessageRow
from parley.tools import Tool, ToolContext, tool_from_function

__all__ = ["make_remember_tool", "make_search_conversations_tool"]


@dataclass(slots=True)
class _Turn:
    conversation: Conversation
    user_message: MessageRow | None
    memory_on: bool


async def _turn(db: Database, ctx: ToolContext) -> _Turn | None:
    if not ctx.user_id or not ctx.conversation_id:
        return None
    async with db.session() as session:
        conv = await session.scalar(
            select(Conversation).where(
                Conversation.id == ctx.conversation_id, Conversation.user_id == ctx.user_id
            )
        )
        user = await session.get(User, ctx.user_id)
        if conv is None or user is None:
            return None
        # The active leaf is the answer being written; its parent is the user's message.
        leaf = await session.scalar(
            select(MessageRow).where(
                MessageRow.id == (conv.active_leaf_id or ""), MessageRow.user_id == ctx.user_id
            )
        )
        message = leaf
        if leaf is not None and leaf.role != "user" and leaf.parent_id:
            message = await session.scalar(
                select(MessageRow).where(
                    MessageRow.id == leaf.parent_id, MessageRow.user_id == ctx.user_id
                )
            )
        return _Turn(conv, message, memory_enabled(user.preferences))


async def _home(db: Database, conv: Conversation) -> tuple[str | None, str | None]:
    """Where a memory saved by the tool in ``conv`` belongs (``scopes.home_of``)."""
    if conv.project_id:
        async with db.session() as session:
            if await project_mode(session, conv.project_id) == "default":
                return scope_of(None, conv.assistant_id)
    return scope_of(conv.project_id, conv.assistant_id)


def make_remember_tool(service: MemoryService) -> Tool:
    async def remember(fact: str, ctx: ToolContext) -> str:
        """Save a lasting fact about the user to memory, when the user asks you to
        remember it or states a durable preference. Write it as one short sentence.

        Args:
            fact: the fact, in the user's own words (e.g. "I'm vegetarian").
        """
        turn = await _turn(service.db, ctx)
        if turn is None or turn.conversation.temporary or not turn.memory_on:
            return "Memory is off for this chat; nothing was saved."
        text = clean_fact(fact)
        said = turn.user_message.content if turn.user_message else ""
        if not text or not supported_by(text, said, min_ratio=0.5):
            return "Not saved: only facts the user stated in their message can be remembered."
        result = await service.remember(
            ctx.user_id or "",
            text,
            source="explicit",
            conversation_id=turn.conversation.id,
            message_id=turn.user_message.id if turn.user_message else None,
            scope=await _home(service.db, turn.conversation),
            changed=signals_change(said),
        )
        ctx.sources.append(
            {
                "kind": "memory",
                "id": result.memory.id,
                "title": result.memory.text,
                "action": result.action,
            }
        )
        return f"Memory {result.action}: {result.memory.text}"

    return tool_from_function(
        remember,
        timeout_s=15,
        title="Remember",
        summary="Saves something you ask it to remember for later chats",
    )


def make_search_conversations_tool(db: Database, max_hits: int = 5) -> Tool:
    async def search_past_conversations(query: str, ctx: ToolContext) -> str:
        """Search the user's earlier conversations by keywords, to recall what was
        discussed before. Cite results with their /c/... links.

        Args:
            query: a few keywords to look for.
        """
        turn = await _turn(db, ctx)
        if turn is None or turn.conversation.temporary or not turn.memory_on:
            return "Past conversations are not available in this chat."
        async with db.session() as session:
            hits = await search_conversations(
                session, ctx.user_id or "", query, limit=max_hits * 4 + 1
            )
            # a project-only project's chats stay inside it (and see only each other)
            visible = await chat_visible(
                session, turn.conversation.project_id, [h.conversation_id for h in hits]
            )
        lines = []
        for hit in hits:
            if hit.conversation_id == ctx.conversation_id or hit.conversation_id not in visible:
                continue
            url = f"/c/{hit.conversation_id}"
            lines.append(f"- [{hit.title}]({url}): {hit.snippet}")
            ctx.sources.append(
                {"kind": "conversation", "id": hit.conversation_id, "title": hit.title, "url": url}
            )
            if len(lines) >= max_hits:
                break
        return "\n".join(lines) if lines else f"No earlier conversation mentions {query!r}."

    return tool_from_function(
        search_past_conversations,
        name="search_conversations",
        timeout_s=15,
        title="Search your chats",
        summary="Finds what was said in your earlier conversations",
    )
