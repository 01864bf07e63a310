"""ConversationStore: tree semantics, append-only writes, pagination, scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from parley.storage import (
    INTERRUPTED_MESSAGE,
    ConversationStore,
    Database,
    InvalidCursor,
    NotFound,
    as_utc,
    fail_stale_streaming,
)
from parley.storage.tables import Conversation, Message, new_id

from .conftest import MakeUser, recorded_sql


def _row(message: Message) -> dict[str, Any]:
    return {c.key: getattr(message, c.key) for c in Message.__table__.columns}


async def test_create_get_and_list_basics(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        chat = await store.create(title="Plans", model="local/smol")
        await store.create(temporary=True)
        archived = await store.create(title="Old")
        await store.update(archived, archived=True)
        await s.commit()

    async with db.session() as s:
        store = ConversationStore(s, user)
        got = await store.get(chat.id)
        assert got is not None and got.title == "Plans" and got.model == "local/smol"
        assert got.active_leaf_id is None and got.tools == []
        assert as_utc(got.created_at).tzinfo is UTC
        items, cursor = await store.list()
        assert [c.id for c in items] == [chat.id]  # temporary and archived excluded
        assert cursor is None
        archived_items, _ = await store.list(archived=True)
        assert [c.id for c in archived_items] == [archived.id]
        assert (await store.create()).title == "New chat"
        with pytest.raises(TypeError):
            await store.update(chat.id, user_id="someone-else")


async def test_edit_and_regenerate_make_siblings(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv = await store.create()
        q1 = await store.add_message(conv, role="user", content="hi", parent_id=None)
        a1 = await store.add_message(conv, role="assistant", content="hello", parent_id=q1.id)
        q2 = await store.add_message(conv, role="user", content="weather?", parent_id=a1.id)
        a2 = await store.add_message(conv, role="assistant", content="sunny", parent_id=q2.id)
        assert conv.active_leaf_id == a2.id
        # regenerate a2: a sibling assistant message under q2
        a2b = await store.add_message(conv, role="assistant", content="rainy", parent_id=q2.id)
        # edit q1: a sibling user message under the root, then its reply
        q1b = await store.add_message(conv, role="user", content="hey", parent_id=None)
        a1b = await store.add_message(conv, role="assistant", content="yo", parent_id=q1b.id)
        await s.commit()

    async with db.session() as s:
        store = ConversationStore(s, user)
        conv2 = await store.get(conv.id)
        assert conv2 is not None and conv2.active_leaf_id == a1b.id
        path = await store.active_path(conv2)
        assert [m.id for m in path] == [q1b.id, a1b.id]

        siblings = await store.siblings_map(path)
        assert siblings == {q1b.id: [q1.id, q1b.id], a1b.id: [a1b.id]}

        # go back to the first branch: newest leaf under q1 is the regenerated answer
        leaf = await store.newest_leaf_under(q1.id)
        assert leaf is not None and leaf.id == a2b.id
        assert await store.set_active_leaf(conv2, leaf.id)
        path = await store.active_path(conv2)
        assert [m.content for m in path] == ["hi", "hello", "weather?", "rainy"]
        siblings = await store.siblings_map(path)
        assert siblings[q1.id] == [q1.id, q1b.id]
        assert siblings[a2b.id] == [a2.id, a2b.id]
        assert siblings[a1.id] == [a1.id]

        leaf_self = await store.newest_leaf_under(a2.id)
        assert leaf_self is not None and leaf_self.id == a2.id  # a leaf is its own newest leaf
        await s.commit()

    async with db.session() as s:
        stored = await ConversationStore(s, user).get(conv.id)
        assert stored is not None and stored.active_leaf_id == a2b.id


async def test_add_message_validates_parent_and_role(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        first, second = await store.create(), await store.create()
        m = await store.add_message(first, role="user", content="x", parent_id=None)
        with pytest.raises(NotFound):
            await store.add_message(second, role="assistant", content="y", parent_id=m.id)
        with pytest.raises(NotFound):
            await store.add_message(second, role="user", content="y", parent_id=new_id())
        with pytest.raises(ValueError):
            await store.add_message(first, role="wizard", content="y", parent_id=m.id)
        with pytest.raises(TypeError):
            await store.add_message(first, role="user", content="y", parent_id=m.id, user_id="x")
        assert not await store.set_active_leaf(second, m.id)
        assert second.active_leaf_id is None


async def test_appending_never_rewrites_earlier_rows(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv = await store.create()
        parent = None
        for i in range(6):
            role = "user" if i % 2 == 0 else "assistant"
            msg = await store.add_message(conv, role=role, content=f"m{i}", parent_id=parent)
            parent = msg.id
        await s.commit()

    async with db.session() as s:  # a fresh session: rows as stored, not as built
        earlier = [_row(m) for m in await ConversationStore(s, user).active_path(conv)]

    async with db.session() as s:
        store = ConversationStore(s, user)
        conv2 = await store.get(conv.id)
        assert conv2 is not None
        with recorded_sql(db) as statements:
            await store.add_message(conv2, role="user", content="next", parent_id=parent)
            await s.commit()
        writes = [q for q in statements if q.split()[0] in {"INSERT", "UPDATE", "DELETE"}]
        assert sorted(" ".join(q.split()[:3]) for q in writes) == [
            "INSERT INTO messages",
            "UPDATE conversations SET",
        ], writes
        assert not any("UPDATE messages" in q for q in statements)

    async with db.session() as s:
        store = ConversationStore(s, user)
        conv3 = await store.get(conv.id)
        assert conv3 is not None
        path = await store.active_path(conv3)
        assert len(path) == 7
        assert [_row(m) for m in path[:6]] == earlier


async def test_update_message_is_one_scoped_update(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv = await store.create()
        q = await store.add_message(conv, role="user", content="q", parent_id=None)
        a = await store.add_message(
            conv, role="assistant", content="", parent_id=q.id, status="streaming"
        )
        await s.commit()
        before = a.updated_at

        with recorded_sql(db) as statements:
            assert await store.update_message(a.id, content="partial", output_tokens=3)
        assert len(statements) == 1 and statements[0].startswith("UPDATE messages")
        assert "user_id" in statements[0]
        assert a.content == "partial"  # the loaded copy follows
        await s.commit()

    async with db.session() as s:
        store = ConversationStore(s, user)
        got = await store.get_message(a.id)
        assert got is not None
        assert (got.content, got.output_tokens, got.status) == ("partial", 3, "streaming")
        assert as_utc(got.updated_at) > as_utc(before)
        with pytest.raises(TypeError):
            await store.update_message(a.id, conversation_id="x")
        with pytest.raises(ValueError):
            await store.update_message(a.id, status="exploded")
        assert not await store.update_message(new_id(), content="x")


async def test_active_path_is_fast_on_long_conversations(db: Database, make_user: MakeUser) -> None:
    """A 1,500-message path loads in a constant number of queries (speed: bench/storage.py)."""
    user = await make_user()
    n = 1500
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv = await store.create()
        start = datetime.now(UTC)
        ids = [new_id() for _ in range(n)]
        rows = [
            {
                "id": ids[i],
                "conversation_id": conv.id,
                "user_id": user,
                "parent_id": ids[i - 1] if i else None,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"message {i}",
                "reasoning": "",
                "steps": [],
                "status": "complete",
                "input_tokens": 0,
                "output_tokens": 0,
                "cost": 0.0,
                "feedback": 0,
                "pinned": False,
                "created_at": start + timedelta(microseconds=i),
                "updated_at": start + timedelta(microseconds=i),
            }
            for i in range(n)
        ]
        await s.execute(insert(Message), rows)
        await store.set_active_leaf(conv, ids[-1])
        await s.commit()

        with recorded_sql(db) as statements:
            path = await store.active_path(conv)
            siblings = await store.siblings_map(path)
        assert [m.id for m in path] == ids
        assert all(siblings[i] == [i] for i in ids)
        # one walk of the tree and one sibling lookup, never a query per message
        assert len(statements) <= 4, statements


async def test_keyset_pagination_is_stable_with_equal_timestamps(
    db: Database, make_user: MakeUser
) -> None:
    user = await make_user()
    same = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    async with db.session() as s:
        store = ConversationStore(s, user)
        made = [await store.create(title=f"c{i}") for i in range(23)]
        await s.execute(
            update(Conversation).where(Conversation.user_id == user).values(updated_at=same)
        )
        older = await store.create(title="older")
        await s.execute(
            update(Conversation)
            .where(Conversation.id == older.id)
            .values(updated_at=same - timedelta(seconds=1))
        )
        await s.commit()

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        async with db.session() as s:
            store = ConversationStore(s, user)
            items, cursor = await store.list(limit=5, cursor=cursor)
            if pages == 1:  # a new chat arriving mid-listing does not shift later pages
                await store.create(title="newcomer")
                await s.commit()
        pages += 1
        seen += [c.id for c in items]
        if cursor is None:
            break
    expected = [*sorted((c.id for c in made), reverse=True), older.id]
    assert seen == expected
    assert pages == 5

    async with db.session() as s:
        store = ConversationStore(s, user)
        with pytest.raises(InvalidCursor):
            await store.list(cursor="not-a-cursor")
        with pytest.raises(InvalidCursor):
            await store.list(cursor="W10")  # base64 of "[]"


async def test_another_user_sees_nothing(db: Database, make_user: MakeUser) -> None:
    alice, mallory = await make_user(), await make_user()
    async with db.session() as s:
        store = ConversationStore(s, alice)
        conv = await store.create(title="secret plans")
        q = await store.add_message(conv, role="user", content="secret", parent_id=None)
        a = await store.add_message(conv, role="assistant", content="noted", parent_id=q.id)
        await s.commit()

    async with db.session() as s:
        other = ConversationStore(s, mallory)
        own = await other.create(title="mine")
        foreign = await ConversationStore(s, alice).get(conv.id)  # the object itself
        assert foreign is not None

        assert await other.get(conv.id) is None
        assert await other.list() == ([own], None)
        assert await other.list(archived=True) == ([], None)
        assert await other.update(conv.id, title="pwned") is None
        assert await other.update(foreign, title="pwned") is None
        assert not await other.delete(conv.id)
        with pytest.raises(NotFound):
            await other.add_message(foreign, role="user", content="x", parent_id=a.id)
        with pytest.raises(NotFound):
            await other.add_message(own, role="user", content="x", parent_id=a.id)
        assert await other.get_message(q.id) is None
        assert not await other.update_message(a.id, content="pwned", status="failed")
        assert await other.active_path(foreign) == []
        assert await other.newest_leaf_under(q.id) is None
        assert not await other.set_active_leaf(foreign, q.id)
        assert not await other.set_active_leaf(own, a.id)
        siblings = await other.siblings_map([q, a])
        assert siblings == {q.id: [q.id], a.id: [a.id]}  # nothing beyond what was passed
        assert [c.id for c, _ in await other.all_for_export()] == [own.id]
        await s.commit()

    async with db.session() as s:
        store = ConversationStore(s, alice)
        kept = await store.get(conv.id)
        assert kept is not None and kept.title == "secret plans"
        assert kept.active_leaf_id == a.id
        path = await store.active_path(kept)
        assert [(m.content, m.status) for m in path] == [
            ("secret", "complete"),
            ("noted", "complete"),
        ]


async def test_delete_removes_messages(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv = await store.create()
        keep = await store.create()
        q = await store.add_message(conv, role="user", content="bye", parent_id=None)
        await store.add_message(conv, role="assistant", content="ok", parent_id=q.id)
        k = await store.add_message(keep, role="user", content="stay", parent_id=None)
        await s.commit()
        assert await store.delete(conv.id)
        await s.commit()
        assert not await store.delete(conv.id)

    async with db.session() as s:
        store = ConversationStore(s, user)
        assert await store.get(conv.id) is None
        left = (await s.scalars(select(Message.id).where(Message.user_id == user))).all()
        assert left == [k.id]


async def test_all_for_export(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        c1 = await store.create(title="one")
        c2 = await store.create(title="two", temporary=True)
        q = await store.add_message(c1, role="user", content="a", parent_id=None)
        r = await store.add_message(c1, role="assistant", content="b", parent_id=q.id)
        await s.commit()
        exported = await store.all_for_export()
    assert [(c.id, [m.id for m in ms]) for c, ms in exported] == [
        (c1.id, [q.id, r.id]),
        (c2.id, []),
    ]


async def test_fail_stale_streaming(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv = await store.create()
        q = await store.add_message(conv, role="user", content="q", parent_id=None)
        stale = await store.add_message(
            conv, role="assistant", content="half an ans", parent_id=q.id, status="streaming"
        )
        fresh = await store.add_message(
            conv, role="assistant", content="still going", parent_id=q.id, status="streaming"
        )
        await s.execute(
            update(Message)
            .where(Message.id == stale.id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
        await s.commit()

    async with db.session() as s:
        assert await fail_stale_streaming(s, older_than=timedelta(minutes=5)) == 1
        await s.commit()
    async with db.session() as s:
        store = ConversationStore(s, user)
        got_stale, got_fresh = await store.get_message(stale.id), await store.get_message(fresh.id)
        assert got_stale is not None and got_fresh is not None
        assert (got_stale.status, got_stale.error_code) == ("failed", "interrupted")
        assert got_stale.error_message == INTERRUPTED_MESSAGE
        assert "retry" in INTERRUPTED_MESSAGE
        assert got_stale.content == "half an ans"  # the partial text is kept
        assert got_fresh.status == "streaming"

        assert await fail_stale_streaming(s) == 1  # at a single-process start: all of them
        await s.commit()
        again = await store.get_message(fresh.id)
        assert again is not None and again.status == "failed"
        assert (await store.get_message(q.id)).status == "complete"  # type: ignore[union-attr]


async def test_objects_from_an_earlier_session_are_written(
    db: Database, make_user: MakeUser
) -> None:
    user = await make_user()
    async with db.session() as s:
        conv = await ConversationStore(s, user).create(title="before")
        await s.commit()

    async with db.session() as s:  # `conv` belongs to a closed session now
        store = ConversationStore(s, user)
        message = await store.add_message(conv, role="user", content="hi", parent_id=None)
        assert conv.active_leaf_id == message.id
        updated = await store.update(conv, pinned=True)
        assert updated is not None and updated.pinned
        await s.commit()

    async with db.session() as s:
        stored = await ConversationStore(s, user).get(conv.id)
        assert stored is not None
        assert (stored.active_leaf_id, stored.pinned) == (message.id, True)
