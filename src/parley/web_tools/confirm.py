"""Confirmation of side-effecting tool calls, shared by every worker.

The engine yields ``tool_confirm`` and waits; the runner calls ``open``
first, which stores a ``pending`` row before the client can see the event.
The user's ``POST /api/conversations/{id}/tool-calls/{call_id}`` may land on
any worker: ``decide`` flips the row with a conditional UPDATE (exactly one
decision wins, a late one gets ``None``). The waiting turn re-reads the row
when woken: at once when the decision was taken in its own process, through
Redis pub/sub when ``redis_url`` is set and another worker took it, and
otherwise by polling (every ``POLL_S``; with Redis only every
``FALLBACK_POLL_S``, in case a message was lost while Redis was away). At the
deadline it expires the row and the call is denied. The row stays the only
truth: a wake-up just says "read it now".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta

from sqlalchemy import select, update

from parley.messages import ToolCall, ToolConfirm
from parley.storage.db import Database
from parley.storage.tables import utcnow
from parley.turns.hooks import TurnInfo
from parley.turns.pubsub import RedisSubscription
from parley.web_tools.tables import ToolConfirmation

__all__ = ["CHANNEL", "DbConfirmer"]


POLL_S = 0.25
FALLBACK_POLL_S = 5.0  # with Redis: the row is still read this often
MAX_ARGUMENT_CHARS = 20_000
CHANNEL = "parley:tool-confirm"  # messages: JSON [message_id, call_id]


class DbConfirmer:
    """``parley.turns.hooks.ToolConfirmer`` on the database."""

    def __init__(
        self,
        db: Database,
        timeout_s: float,
        poll_s: float = POLL_S,
        *,
        redis_url: str | None = None,
        fallback_poll_s: float | None = None,
    ) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.redis_url = redis_url
        self.fallback_poll_s = FALLBACK_POLL_S if fallback_poll_s is None else fallback_poll_s
        self._local: dict[tuple[str, str], asyncio.Event] = {}
        self._sub: RedisSubscription | None = None

    async def start(self) -> None:
        """Subscribe to other workers' decisions (when Redis is configured).

        Redis being away is not fatal: turns poll the row until the
        subscription is back (``parley.turns.pubsub``)."""
        if self.redis_url:
            self._sub = RedisSubscription(
                self.redis_url,
                lambda _, data: self._wake(data),
                channels=(CHANNEL,),
                purpose="tool confirmations",
            )
            await self._sub.start()

    def _wake(self, data: bytes) -> None:
        try:
            message_id, call_id = json.loads(data)
        except (TypeError, ValueError):
            return
        event = self._local.get((str(message_id), str(call_id)))
        if event is not None:
            event.set()

    @property
    def listening(self) -> bool:
        """Decisions of other workers arrive by pub/sub (else only by polling)."""
        return self._sub is not None and self._sub.listening

    async def aclose(self) -> None:
        if self._sub is not None:
            await self._sub.aclose()
            self._sub = None

    async def open(self, info: TurnInfo, call: ToolConfirm) -> None:
        async with self.db.session() as session:
            session.add(
                ToolConfirmation(
                    user_id=info.user_id,
                    conversation_id=info.conversation_id,
                    message_id=info.assistant_message_id,
                    call_id=call.id[:200],
                    tool=call.name[:200],
                    arguments=call.arguments[:MAX_ARGUMENT_CHARS],
                    status="pending",
                    expires_at=utcnow() + timedelta(seconds=self.timeout_s),
                )
            )
            await session.commit()
        self._local[(info.assistant_message_id, call.id[:200])] = asyncio.Event()

    async def _status(self, message_id: str, call_id: str) -> str | None:
        async with self.db.session() as session:
            status: str | None = await session.scalar(
                select(ToolConfirmation.status).where(
                    ToolConfirmation.message_id == message_id,
                    ToolConfirmation.call_id == call_id,
                )
            )
            return status

    async def wait(self, info: TurnInfo, call: ToolCall) -> bool:
        key = (info.assistant_message_id, call.id[:200])
        event = self._local.setdefault(key, asyncio.Event())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        try:
            while True:
                event.clear()  # set again by a decision made after this read
                status = await self._status(*key)
                if status is not None and status != "pending":
                    return status == "approved"
                left = deadline - loop.time()
                if left <= 0:
                    break
                every = self.fallback_poll_s if self.listening else self.poll_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(every, left))
            await self._expire(info.assistant_message_id, call.id[:200])
            # A decision that raced the deadline still counts.
            return await self._status(*key) == "approved"
        finally:
            self._local.pop(key, None)

    async def _expire(self, message_id: str, call_id: str | None = None) -> None:
        query = update(ToolConfirmation).where(
            ToolConfirmation.message_id == message_id, ToolConfirmation.status == "pending"
        )
        if call_id is not None:
            query = query.where(ToolConfirmation.call_id == call_id)
        async with self.db.session() as session:
            await session.execute(query.values(status="expired", decided_at=utcnow()))
            await session.commit()

    async def close(self, info: TurnInfo) -> None:
        await self._expire(info.assistant_message_id)

    async def decide(
        self, user_id: str, conversation_id: str, call_id: str, approve: bool
    ) -> ToolConfirmation | None:
        """Record the user's decision on their newest pending call with this id.

        ``None`` when there is no such call of theirs still pending (unknown,
        someone else's, already decided or expired).
        """
        async with self.db.session() as session:
            row = await session.scalar(
                select(ToolConfirmation)
                .where(
                    ToolConfirmation.user_id == user_id,
                    ToolConfirmation.conversation_id == conversation_id,
                    ToolConfirmation.call_id == call_id,
                    ToolConfirmation.status == "pending",
                    ToolConfirmation.expires_at > utcnow(),
                )
                .order_by(ToolConfirmation.created_at.desc())
                .limit(1)
            )
            if row is None:
                return None
            status = "approved" if approve else "denied"
            result = await session.execute(
                update(ToolConfirmation)
                .where(ToolConfirmation.id == row.id, ToolConfirmation.status == "pending")
                .values(status=status, decided_at=utcnow())
            )
            await session.commit()
            if getattr(result, "rowcount", 0) != 1:
                return None  # the deadline (or another click) won
            await session.refresh(row)
        event = self._local.get((row.message_id, row.call_id))
        if event is not None:
            event.set()
        elif self._sub is not None:  # the turn waits on another worker: wake it
            # if this fails it still reads the row within FALLBACK_POLL_S
            await self._sub.publish(CHANNEL, json.dumps([row.message_id, row.call_id]))
        return row

    async def pending(self, user_id: str, conversation_id: str) -> list[ToolConfirmation]:
        """The user's calls in this conversation still waiting for an answer."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ToolConfirmation)
                .where(
                    ToolConfirmation.user_id == user_id,
                    ToolConfirmation.conversation_id == conversation_id,
                    ToolConfirmation.status == "pending",
                    ToolConfirmation.expires_at > utcnow(),
                )
                .order_by(ToolConfirmation.created_at)
            )
            return list(rows)
