"""Conversations and their message trees, scoped to one user.

``ConversationStore`` is the authorization layer for chats: every statement it
issues carries ``user_id``, so another user's id behaves exactly like an id
that does not exist (``None``, ``False`` or an empty result, never an error
that tells the two apart).

Messages form a tree (``parent_id``); the conversation's ``active_leaf_id``
picks the branch on screen. Appending inserts one row and moves that pointer;
earlier rows are never rewritten, so a turn costs the same at message 10 and
message 10,000. Streaming answers are flushed with ``update_message``: one
UPDATE by primary key.

Methods flush but never commit: the caller owns the unit of work.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, and_, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from parley.errors import ParleyError
from parley.storage.tables import Conversation, Message, new_id, utcnow

__all__ = [
    "INTERRUPTED_MESSAGE",
    "ConversationStore",
    "InvalidCursor",
    "NotFound",
    "as_utc",
    "fail_stale_streaming",
]

ROLES = frozenset({"user", "assistant", "system"})
STATUSES = frozenset({"complete", "streaming", "failed", "cancelled"})

# Fields callers may change; ownership, tree position and creation time are fixed.
CONVERSATION_FIELDS = frozenset(
    {
        "title",
        "title_generated",
        "model",
        "tools",
        "pinned",
        "archived",
        "temporary",
        "project_id",
        "assistant_id",
        "summary",
        "summary_until_id",
    }
)
MESSAGE_FIELDS = frozenset(
    {
        "content",
        "reasoning",
        "steps",
        "sources",
        "status",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "latency_ms",
        "ttft_ms",
        "finish_reason",
        "cost",
        "error_code",
        "error_message",
        "attempts",
        "route",
        "stream_seq",
        "notice",
        "feedback",
        "pinned",
    }
)

INTERRUPTED_MESSAGE = (
    "The server stopped while this answer was being written, so it is incomplete. "
    "You can retry to generate it again."
)

_MAX_DEPTH = 1_000_000  # guards the recursive walk against a corrupted cycle
_last_stamp = datetime.min.replace(tzinfo=UTC)


class NotFound(ParleyError):
    """A conversation or message that does not exist for this user."""

    code = "not_found"


class InvalidCursor(ParleyError, ValueError):
    """A pagination cursor that this module did not produce."""

    code = "invalid_cursor"


def as_utc(value: datetime) -> datetime:
    """Timezone-aware UTC; SQLite hands back naive datetimes (stored as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    """UTC now, strictly increasing within the process so "newest" is never a tie."""
    global _last_stamp
    now = utcnow()
    if now <= _last_stamp:
        now = _last_stamp + timedelta(microseconds=1)
    _last_stamp = now
    return now


def _check_fields(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"fields that cannot be set: {', '.join(sorted(unknown))}")


def _encode_cursor(conv: Conversation) -> str:
    raw = json.dumps([as_utc(conv.updated_at).isoformat(), conv.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, conv_id = json.loads(raw)
        if not isinstance(stamp, str) or not isinstance(conv_id, str):
            raise ValueError("bad cursor shape")
        return as_utc(datetime.fromisoformat(stamp)), conv_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("invalid pagination cursor") from exc


class ConversationStore:
    """Conversations and messages of ``user_id``, through ``session``."""

    def __init__(self, session: AsyncSession, user_id: str) -> None:
        self.session = session
        self.user_id = user_id

    def _owned(self, conv_ids: Iterable[str]) -> Select[str]:
        """The given conversation ids that belong to the user, as a subquery.

        Scoping message scans through their conversation (rather than also
        filtering ``messages.user_id``) leaves the planner one obvious index,
        ``(conversation_id, created_at)``; SQLite without statistics otherwise
        walks every message of the user. add_message keeps both owners equal.
        """
        return select(Conversation.id).where(
            Conversation.id.in_(builtins.list(conv_ids)), Conversation.user_id == self.user_id
        )

    async def _attached(self, conv: Conversation | str) -> Conversation | None:
        """``conv`` as an object of this session, or None when not the user's.

        An object loaded by another session would be written by nobody, so it
        is loaded again here.
        """
        if isinstance(conv, Conversation):
            if conv.user_id != self.user_id:
                return None
            if conv in self.session:
                return conv
            conv = conv.id
        return await self.get(conv)

    # -- conversations ---------------------------------------------------------

    async def create(
        self,
        title: str | None = None,
        model: str | None = None,
        temporary: bool = False,
        project_id: str | None = None,
    ) -> Conversation:
        now = _now()
        conv = Conversation(
            id=new_id(),
            user_id=self.user_id,
            title=title or "New chat",
            model=model,
            temporary=temporary,
            project_id=project_id,
            tools=[],
            created_at=now,
            updated_at=now,
        )
        self.session.add(conv)
        await self.session.flush()
        return conv

    async def get(self, conv_id: str) -> Conversation | None:
        return await self.session.scalar(
            select(Conversation).where(
                Conversation.id == conv_id, Conversation.user_id == self.user_id
            )
        )

    async def list(
        self, limit: int = 50, cursor: str | None = None, archived: bool = False
    ) -> tuple[builtins.list[Conversation], str | None]:
        """A page of conversations, most recently updated first.

        Keyset pagination on ``(updated_at, id)``: pages stay stable while
        conversations are added, and ties in ``updated_at`` are broken by id.
        Raises ``InvalidCursor`` for a cursor this method did not return.
        """
        limit = max(1, min(int(limit), 200))
        stmt = select(Conversation).where(
            Conversation.user_id == self.user_id,
            Conversation.archived.is_(archived),
            Conversation.temporary.is_(False),
        )
        if cursor:
            stamp, conv_id = _decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Conversation.updated_at < stamp,
                    and_(Conversation.updated_at == stamp, Conversation.id < conv_id),
                )
            )
        stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        rows = builtins.list((await self.session.scalars(stmt.limit(limit + 1))).all())
        next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def update(self, conv: Conversation | str, **fields: Any) -> Conversation | None:
        """Change the given fields; ``None`` when the conversation is not the user's.

        Does not move the conversation in the list (``updated_at`` is for new messages).
        """
        _check_fields(fields, CONVERSATION_FIELDS)
        target = await self._attached(conv)
        if target is None:
            return None
        for name, value in fields.items():
            setattr(target, name, value)
        await self.session.flush()
        return target

    async def delete(self, conv_id: str) -> bool:
        """Delete the conversation and all its messages (and their search entries):
        rows only. A user's deletion goes through
        ``parley.userdata.conversations.delete_conversations``, which also removes
        what the features keep for it (bytes, vectors, outputs, its kernel)."""
        owned = await self.session.scalar(
            select(Conversation.id).where(
                Conversation.id == conv_id, Conversation.user_id == self.user_id
            )
        )
        if owned is None:
            return False
        await self.session.execute(
            delete(Message).where(Message.conversation_id.in_(self._owned([conv_id])))
        )
        await self.session.execute(
            delete(Conversation).where(
                Conversation.id == conv_id, Conversation.user_id == self.user_id
            )
        )
        return True

    async def all_for_export(self) -> builtins.list[tuple[Conversation, builtins.list[Message]]]:
        """Every conversation of the user (archived and temporary too) with all its
        messages, oldest first; two queries whatever the count."""
        convs = (
            await self.session.scalars(
                select(Conversation)
                .where(Conversation.user_id == self.user_id)
                .order_by(Conversation.created_at, Conversation.id)
            )
        ).all()
        by_conv: dict[str, builtins.list[Message]] = {c.id: [] for c in convs}
        messages = await self.session.scalars(
            select(Message)
            .where(Message.user_id == self.user_id)
            .order_by(Message.conversation_id, Message.created_at, Message.id)
        )
        for message in messages:
            by_conv.setdefault(message.conversation_id, []).append(message)
        return [(c, by_conv[c.id]) for c in convs]

    # -- messages --------------------------------------------------------------

    async def add_message(
        self,
        conv: Conversation,
        *,
        role: str,
        content: str,
        parent_id: str | None,
        flush: bool = True,
        **fields: Any,
    ) -> Message:
        """Insert one message under ``parent_id`` and make it the active leaf.

        An edit is a new user message beside the original (same parent); a
        regeneration is a new assistant message beside the old answer. Raises
        ``NotFound`` when the conversation is not the user's or the parent is
        not in this conversation. ``fields`` may also carry ``id``.

        ``flush=False`` leaves the row pending, so that a turn's question and
        answer go to the database in one flush (one INSERT of both rows and one
        UPDATE of the conversation instead of two of each: every statement is a
        round trip to the database thread before the model is called). A parent
        still pending in this session is found without a query.
        """
        target = await self._attached(conv)
        if target is None:
            raise NotFound("conversation not found")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        message_id = fields.pop("id", None) or new_id()
        _check_fields(fields, MESSAGE_FIELDS)
        if parent_id is not None:
            # By primary key: no query at all when the turn just loaded or wrote it.
            parent = next(
                (m for m in self.session.new if isinstance(m, Message) and m.id == parent_id),
                None,
            ) or await self.session.get(Message, parent_id)
            if parent is None or (parent.conversation_id, parent.user_id) != (
                conv.id,
                self.user_id,
            ):
                raise NotFound("parent message not found in this conversation")
        now = _now()
        message = Message(
            id=message_id,
            conversation_id=conv.id,
            user_id=self.user_id,
            parent_id=parent_id,
            role=role,
            content=content,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self.session.add(message)
        target.active_leaf_id, target.updated_at = message.id, now
        if conv is not target:  # keep the caller's copy in step too
            conv.active_leaf_id, conv.updated_at = message.id, now
        if flush:
            await self.session.flush()
        return message

    async def get_message(self, message_id: str) -> Message | None:
        return await self.session.scalar(
            select(Message).where(Message.id == message_id, Message.user_id == self.user_id)
        )

    async def update_message(self, message_id: str, **fields: Any) -> bool:
        """One UPDATE by primary key (cheap enough for every streaming flush).

        Sets ``updated_at``; returns False when the message is not the user's.
        Loaded copies of the message in this session are updated too.
        """
        _check_fields(fields, MESSAGE_FIELDS)
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        result = await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.user_id == self.user_id)
            .values(**fields, updated_at=_now())
            .execution_options(synchronize_session="evaluate")
        )
        return bool(getattr(result, "rowcount", 0))

    async def active_path(
        self,
        conv: Conversation,
        *,
        window: int | None = None,
        always: Iterable[str] = (),
        leaf: str | None = None,
    ) -> builtins.list[Message]:
        """The shown branch, root first, in one recursive query up from the leaf
        (``leaf``, or the conversation's active leaf).

        With ``window``, only the newest ``window`` messages are loaded whole, plus
        pinned ones and the ids in ``always``: a turn never needs more history
        than fits the model's context, so a long conversation costs about what a
        new one does (the walk itself reads only ids).
        """
        leaf = leaf or conv.active_leaf_id
        if conv.user_id != self.user_id or not leaf:
            return []
        path = (
            select(
                Message.id, Message.parent_id, Message.pinned, literal(0, Integer).label("depth")
            )
            .where(
                Message.id == leaf,
                Message.conversation_id == conv.id,
                Message.user_id == self.user_id,
            )
            .cte("path", recursive=True)
        )
        parent = aliased(Message, name="parent")
        path = path.union_all(
            select(parent.id, parent.parent_id, parent.pinned, (path.c.depth + 1).label("depth"))
            .join(path, parent.id == path.c.parent_id)
            .where(
                parent.conversation_id == conv.id,
                parent.user_id == self.user_id,
                path.c.depth < _MAX_DEPTH,
            )
        )
        stmt = select(Message).join(path, Message.id == path.c.id)
        if window is not None:
            keep = [path.c.depth < window, path.c.pinned.is_(True)]
            extra = [i for i in always if i]
            if extra:
                keep.append(path.c.id.in_(extra))
            stmt = stmt.where(or_(*keep))
        stmt = stmt.order_by(path.c.depth.desc())
        return builtins.list((await self.session.scalars(stmt)).all())

    async def siblings_map(self, messages: Iterable[Message]) -> dict[str, builtins.list[str]]:
        """For each message, the ids sharing its parent (itself included), oldest
        first; one query for the whole path, reading only those parents' children
        (a turn in a long conversation reads two sibling lists, not every message)."""
        messages = builtins.list(messages)
        if not messages:
            return {}
        conv_ids = {m.conversation_id for m in messages}
        parents = {m.parent_id for m in messages if m.parent_id is not None}
        same_parent: ColumnElement[bool] = Message.parent_id.in_(parents)
        if any(m.parent_id is None for m in messages):
            same_parent = or_(same_parent, Message.parent_id.is_(None))
        rows = await self.session.execute(
            select(Message.id, Message.parent_id, Message.conversation_id)
            .where(Message.conversation_id.in_(self._owned(conv_ids)), same_parent)
            .order_by(Message.created_at, Message.id)
        )
        children: dict[tuple[str, str | None], builtins.list[str]] = {}
        for message_id, parent_id, conv_id in rows:
            children.setdefault((conv_id, parent_id), []).append(message_id)
        return {m.id: children.get((m.conversation_id, m.parent_id), [m.id]) for m in messages}

    async def newest_leaf_under(self, message_id: str) -> Message | None:
        """The leaf reached from ``message_id`` by always taking the newest child
        (the message itself when it has none); ``None`` when not the user's."""
        start = await self.get_message(message_id)
        if start is None:
            return None
        rows = await self.session.execute(
            select(Message.id, Message.parent_id)
            .where(Message.conversation_id.in_(self._owned([start.conversation_id])))
            .order_by(Message.created_at, Message.id)
        )
        newest_child: dict[str | None, str] = {}
        for child_id, parent_id in rows:
            newest_child[parent_id] = child_id  # later rows are newer
        current, seen = start.id, {start.id}
        while current in newest_child and newest_child[current] not in seen:
            current = newest_child[current]
            seen.add(current)
        return start if current == start.id else await self.get_message(current)

    async def set_active_leaf(self, conv: Conversation, message_id: str) -> bool:
        """Show the branch ending at ``message_id``; False unless it is in ``conv``."""
        target = await self._attached(conv)
        if target is None:
            return False
        found = await self.session.scalar(
            select(Message.id).where(
                Message.id == message_id,
                Message.conversation_id == conv.id,
                Message.user_id == self.user_id,
            )
        )
        if found is None:
            return False
        target.active_leaf_id = conv.active_leaf_id = message_id
        await self.session.flush()
        return True


async def fail_stale_streaming(
    session: AsyncSession, *, older_than: timedelta | None = None, message_id: str | None = None
) -> int:
    """Mark answers left ``streaming`` by a stopped server as failed; returns the count.

    Unscoped: run at start-up. With several workers sharing PostgreSQL pass
    ``older_than`` (longer than the flush interval plus the slowest tool call),
    so answers another live worker is still writing are left alone. ``message_id``:
    only that answer (a reader that found its worker gone).
    """
    stmt = update(Message).where(Message.status == "streaming")
    if message_id is not None:
        stmt = stmt.where(Message.id == message_id)
    if older_than is not None:
        stmt = stmt.where(Message.updated_at < utcnow() - older_than)
    result = await session.execute(
        stmt.values(
            status="failed",
            error_code="interrupted",
            error_message=INTERRUPTED_MESSAGE,
            updated_at=_now(),
        ).execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0))
