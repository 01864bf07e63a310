"""``SharedTurnEvents`` between two workers in one process (two instances, one
Redis, one database): a reader whose missed events were trimmed from the Redis
stream gets the stored answer, then the entries after it, from Redis."""

from __future__ import annotations

import asyncio
import os
import uuid

from parley.messages import TextDelta
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import User
from parley.turns.streams import Relayed, SharedTurnEvents

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _streaming_answer(db: Database) -> tuple[str, str, str]:
    async with db.session() as session:
        user = User(email=f"{uuid.uuid4().hex}@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        store = ConversationStore(session, user.id)
        conv = await store.create()
        answer = await store.add_message(
            conv, role="assistant", content="", parent_id=None, status="streaming"
        )
        await session.commit()
        return user.id, conv.id, answer.id


async def test_a_trimmed_stream_resumes_from_the_stored_answer_then_redis(db: Database) -> None:
    user_id, conv_id, message_id = await _streaming_answer(db)
    running = SharedTurnEvents(db, REDIS_URL, max_events=100)
    other = SharedTurnEvents(db, REDIS_URL, max_events=100)
    try:
        log = running.open(message_id, conv_id, None, user_id=user_id)
        for i in range(1, 1001):
            log.publish(TextDelta(f"t{i} "))
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # the writer sends its batch
        # the turn's flush: the text up to event 950 is stored
        async with db.session() as session:
            text = "".join(f"t{i} " for i in range(1, 951))
            store = ConversationStore(session, user_id)
            await store.update_message(message_id, content=text, stream_seq=950)
            await session.commit()
        await asyncio.sleep(0.2)
        assert await other._redis.xlen(f"parley:turn:{message_id}") < 1000  # trimmed

        found = await other.reattach(message_id, after=3)  # its events 4.. are gone
        assert found is not None and (found.user_id, found.conversation_id) == (user_id, conv_id)
        got: list[tuple[int, object]] = []

        async def read() -> None:
            async for pair in found.items:
                got.append(pair)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        log.publish(TextDelta("live"))
        running.close(message_id)
        await asyncio.wait_for(reader, 30)

        first_seq, first = got[0]
        assert (first_seq, isinstance(first, Relayed)) == (950, True)
        assert first.payload["content"] == text  # type: ignore[attr-defined]
        rest = got[1:]
        assert [seq for seq, _ in rest] == list(range(951, 1002))
        assert "".join(item.text for _, item in rest) == (  # type: ignore[attr-defined]
            "".join(f"t{i} " for i in range(951, 1001)) + "live"
        )
    finally:
        await running.aclose()
        await other.aclose()


async def test_a_reader_marks_an_answer_whose_worker_died_failed(db: Database) -> None:
    """A turn whose worker was killed writes nothing more: the reader following its
    stored answer from another worker sees it silent past ``STALE_S``, marks it
    failed (interrupted, its text kept) and ends, instead of waiting minutes."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from parley.storage.tables import Message
    from parley.turns.streams import STALE_S

    user_id, _, message_id = await _streaming_answer(db)
    async with db.session() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(
                content="half an ans", updated_at=datetime.now(UTC) - timedelta(seconds=STALE_S + 5)
            )
        )
        await session.commit()
    other = SharedTurnEvents(db, None, max_events=100)
    try:
        found = await other.reattach(message_id, 0)
        assert found is not None  # still `streaming` in the database
        items = [item async for item in found.items]
        assert items == []  # nothing to relay: the stream ends at once
        async with db.session() as session:
            row = await ConversationStore(session, user_id).get_message(message_id)
        assert row is not None
        assert (row.status, row.error_code, row.content) == ("failed", "interrupted", "half an ans")
    finally:
        await other.aclose()
