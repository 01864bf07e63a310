"""Full-text search: scoping, ranking, snippets, hostile input, index upkeep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from parley.storage import ConversationStore, Database, SearchHit, search_conversations
from parley.storage import search as search_module
from parley.storage.search import (
    MAX_WINDOWS,
    _fold,
    make_snippet,
    query_terms,
    rebuild_search_index,
)
from parley.storage.tables import Conversation, Message, new_id

from .conftest import MakeUser, recorded_sql

HOSTILE = [
    '"',
    '""',
    "*",
    "**",
    "NEAR(",
    "NEAR(a b",
    "a NEAR/2 b",
    "-",
    "-kiwi",
    ":",
    "content:kiwi",
    "user_id:x",
    "(",
    ")",
    "((kiwi",
    "kiwi))",
    "AND",
    "OR NOT",
    "kiwi AND OR",
    "^kiwi",
    "{content}: kiwi",
    "'",
    "kiwi'; DROP TABLE messages; --",
    "\\",
    "&|!:*<->",
    "\x00",
    "   ",
    "",
    "🥝",
    "a" * 5000,
]


async def _chat(
    store: ConversationStore, title: str, *contents: str, temporary: bool = False
) -> tuple[Conversation, list[str]]:
    conv = await store.create(title=title, temporary=temporary)
    parent: str | None = None
    ids = []
    for i, content in enumerate(contents):
        role = "user" if i % 2 == 0 else "assistant"
        message = await store.add_message(conv, role=role, content=content, parent_id=parent)
        parent = message.id
        ids.append(message.id)
    return conv, ids


def _assert_highlights(hit: SearchHit, *words: str) -> None:
    assert hit.highlights, hit
    for start, end in hit.highlights:
        marked = _fold(hit.snippet[start:end])
        assert any(marked.startswith(_fold(w)) for w in words), (marked, hit)
        assert (start == 0 or not hit.snippet[start - 1].isalnum()) and (
            end == len(hit.snippet) or not hit.snippet[end].isalnum()
        )


async def test_finds_titles_and_content_of_the_user_only(db: Database, make_user: MakeUser) -> None:
    alice, bob = await make_user(), await make_user()
    async with db.session() as s:
        store = ConversationStore(s, alice)
        by_title, _ = await _chat(store, "Kiwi recipes", "what can I cook?", "many things")
        by_body, body_ids = await _chat(
            store, "Fruit", "tell me about the kiwi fruit", "It is green."
        )
        await _chat(store, "Kiwi temp", "kiwi in a temporary chat", temporary=True)
        await _chat(store, "Unrelated", "nothing to see")
        await _chat(ConversationStore(s, bob), "Kiwi for Bob", "bob likes kiwi too")
        await s.commit()

        hits = await search_conversations(s, alice, "kiwi")
        assert [h.conversation_id for h in hits] == [by_title.id, by_body.id]
        title_hit, body_hit = hits
        assert (title_hit.message_id, title_hit.title, title_hit.snippet) == (
            None,
            "Kiwi recipes",
            "Kiwi recipes",
        )
        assert title_hit.highlights == [(0, 4)]
        assert body_hit.message_id == body_ids[0] and body_hit.title == "Fruit"
        assert body_hit.snippet == "tell me about the kiwi fruit"
        assert body_hit.highlights == [(18, 22)]

        bob_hits = await search_conversations(s, bob, "kiwi")
        assert [h.title for h in bob_hits] == ["Kiwi for Bob"]
        assert await search_conversations(s, alice, "bob") == []
        assert await search_conversations(s, alice, "absent") == []


async def test_ranks_better_matches_first(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        once, _ = await _chat(store, "a", "the mango was here and then some other words went on")
        thrice, _ = await _chat(store, "b", "mango mango and mango again with other words here")
        titled, _ = await _chat(store, "All about mango", "no match in this body")
        await s.commit()
        hits = await search_conversations(s, user, "mango")
        assert [h.conversation_id for h in hits] == [titled.id, thrice.id, once.id]
        for hit in hits:
            _assert_highlights(hit, "mango")
        assert len(hits[1].highlights) == 3
        assert [h.conversation_id for h in await search_conversations(s, user, "mango", 2)] == [
            titled.id,
            thrice.id,
        ]


async def test_one_hit_per_conversation_with_its_best_message(
    db: Database, make_user: MakeUser
) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        _, ids = await _chat(
            store, "chat", "papaya once here among many other words", "papaya papaya papaya"
        )
        await s.commit()
        hits = await search_conversations(s, user, "papaya")
        assert len(hits) == 1
        assert hits[0].message_id == ids[1]


async def test_prefix_on_last_term_and_all_terms_required(
    db: Database, make_user: MakeUser
) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        both, _ = await _chat(store, "x", "Hello wonderful World of search")
        one, _ = await _chat(store, "y", "hello there")
        await s.commit()
        hits = await search_conversations(s, user, "hel")
        assert {h.conversation_id for h in hits} == {both.id, one.id}
        hits = await search_conversations(s, user, "HELLO wor")
        assert [h.conversation_id for h in hits] == [both.id]
        assert [hits[0].snippet[a:b] for a, b in hits[0].highlights] == ["Hello", "World"]
        hits = await search_conversations(s, user, "hello won")
        assert [hits[0].snippet[a:b] for a, b in hits[0].highlights] == ["Hello", "wonderful"]
        # under MIN_PREFIX_CHARS the last word must match whole (a 1-2 letter prefix
        # would scan most of the index)
        assert await search_conversations(s, user, "hello wo") == []
        # a completed first term is not a prefix: "hel" alone does not match "hello"
        assert await search_conversations(s, user, "hel there") == []


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_error(db: Database, make_user: MakeUser, query: str) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        await _chat(store, "kiwi (NEAR) * title", 'kiwi "quoted" NEAR(x) -minus a:b')
        await s.commit()
        hits = await search_conversations(s, user, query)
        assert isinstance(hits, list)
        if query_terms(query) == ["kiwi"]:
            assert len(hits) == 1


async def test_delete_removes_from_index(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv, _ = await _chat(store, "Durian talk", "durian smells", "durian tastes")
        await s.commit()
        assert len(await search_conversations(s, user, "durian")) == 1
        assert await store.delete(conv.id)
        await s.commit()
        assert await search_conversations(s, user, "durian") == []
        assert await _index_count(s, db.dialect, "durian") == 0


async def test_content_updates_reindex(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv, ids = await _chat(store, "t", "question", "")
        await store.update_message(ids[1], content="a lychee answer", status="streaming")
        await s.commit()
        assert [h.message_id for h in await search_conversations(s, user, "lychee")] == [ids[1]]
        await store.update_message(ids[1], content="a guava answer", status="complete")
        await store.update(conv, title="renamed rambutan")
        await s.commit()
        assert await search_conversations(s, user, "lychee") == []
        assert [h.message_id for h in await search_conversations(s, user, "guava")] == [ids[1]]
        assert [h.title for h in await search_conversations(s, user, "rambutan")] == [
            "renamed rambutan"
        ]


async def test_sqlite_index_untouched_when_content_unchanged(
    db: Database, make_user: MakeUser
) -> None:
    """Streaming flushes of status/tokens must not rewrite the FTS index."""
    if db.dialect != "sqlite":
        assert db.dialect == "postgresql"  # generated column: PostgreSQL recomputes it itself
        return
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        _, ids = await _chat(store, "t", "q", "partial")
        await s.commit()
        before = await _fts_pages(s)
        await store.update_message(ids[1], status="complete", output_tokens=9, content="partial")
        await s.commit()
        assert await _fts_pages(s) == before
        await store.update_message(ids[1], content="partial and more")
        await s.commit()
        assert await _fts_pages(s) != before


async def test_rebuild_keeps_results(db: Database, make_user: MakeUser) -> None:
    user = await make_user()
    async with db.session() as s:
        store = ConversationStore(s, user)
        conv, _ = await _chat(store, "Quince", "a quince tart")
        await s.commit()
        await rebuild_search_index(s)
        await s.commit()
        hits = await search_conversations(s, user, "quince")
        assert [h.conversation_id for h in hits] == [conv.id]


async def _index_count(session: object, dialect: str, word: str) -> int:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    if dialect == "sqlite":
        sql = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH :w"
    else:
        sql = "SELECT count(*) FROM messages WHERE search_tsv @@ to_tsquery('simple', :w)"
    return int((await session.execute(text(sql), {"w": word})).scalar_one())


async def _fts_pages(session: object) -> list[tuple[int, bytes]]:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    rows = await session.execute(text("SELECT id, block FROM messages_fts_data ORDER BY id"))
    return [(r[0], r[1]) for r in rows]


# -- pure helpers ---------------------------------------------------------------


def test_query_terms_strip_syntax() -> None:
    assert query_terms('"foo" bar* NEAR(baz, 2) -qux a:b') == [
        "foo",
        "bar",
        "near",
        "baz",
        "2",
        "qux",
        "a",
        "b",
    ]
    assert query_terms("Foo foo FOO") == ["foo"]
    assert query_terms("*()\"'-:") == []
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 16


def test_snippet_cuts_around_the_first_match_and_offsets_are_exact() -> None:
    source = ("lorem ipsum " * 40) + "the Crème brûlée was\n\n perfect " + ("dolor sit " * 40)
    snippet, highlights = make_snippet(source, ["creme", "brul"])
    assert snippet.startswith("…ipsum lorem ipsum") and snippet.endswith("…")
    assert "lorem ipsum the Crème brûlée was perfect dolor sit" in snippet
    assert "\n" not in snippet
    assert [snippet[a:b] for a, b in highlights] == ["Crème", "brûlée"]
    assert len(snippet) <= 202


def test_snippet_is_plain_text() -> None:
    snippet, highlights = make_snippet("<b>kiwi</b> & <script>x</script>", ["kiwi"])
    assert snippet == "<b>kiwi</b> & <script>x</script>"
    assert highlights == [(3, 7)]


def test_snippet_without_match_is_the_start() -> None:
    snippet, highlights = make_snippet("word " * 100, ["absent"])
    assert snippet.startswith("word word") and snippet.endswith("…")
    assert highlights == []


# -- bounded ranking windows -----------------------------------------------------


async def _bulk_chat(
    session: object, user: str, title: str, contents: list[str], start: datetime
) -> str:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    conv_id = new_id()
    await session.execute(
        insert(Conversation),
        [
            {
                "id": conv_id,
                "user_id": user,
                "title": title,
                "title_generated": False,
                "tools": [],
                "pinned": False,
                "archived": False,
                "temporary": False,
                "created_at": start,
                "updated_at": start,
            }
        ],
    )
    rows = [
        {
            "id": new_id(),
            "conversation_id": conv_id,
            "user_id": user,
            "parent_id": None,
            "role": "user",
            "content": content,
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
        for i, content in enumerate(contents)
    ]
    if rows:
        await session.execute(insert(Message), rows)
    return conv_id


async def test_older_windows_are_searched_when_the_newest_is_one_chat(
    db: Database, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "WINDOW", 10)
    user = await make_user()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    async with db.session() as s:
        older = [
            await _bulk_chat(s, user, f"old {i}", [f"plum number {i}"], base + timedelta(hours=i))
            for i in range(5)
        ]
        # the newest 25 matching messages all sit in one conversation
        busy = await _bulk_chat(
            s, user, "busy", [f"plum again {i}" for i in range(25)], base + timedelta(days=1)
        )
        await s.commit()
        hits = await search_conversations(s, user, "plum", limit=4)
        assert len(hits) == 4
        assert hits[0].conversation_id == busy
        assert {h.conversation_id for h in hits[1:]} <= set(older)
        everything = await search_conversations(s, user, "plum")
        assert {h.conversation_id for h in everything} == {busy, *older}


async def test_common_word_search_reads_bounded_windows(db: Database, make_user: MakeUser) -> None:
    """A word in every message: ranking stays bounded by the window."""
    user = await make_user()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    async with db.session() as s:
        for c in range(60):
            await _bulk_chat(
                s,
                user,
                f"chat {c} the topic",
                [f"the answer {c} {i} is the thing with words" for i in range(100)],
                base + timedelta(minutes=c),
            )
        await s.commit()
        if db.dialect == "postgresql":
            await s.execute(text("ANALYZE messages"))
        for query in ["the", "the answer", "thing", "words the", "answer 7"]:
            with recorded_sql(db) as statements:
                hits = await search_conversations(s, user, query)
            assert hits
            # ranking reads bounded windows, never the whole history (speed: bench/storage.py)
            windows = [q for q in statements if "LIMIT" in q.upper()]
            assert 1 <= len(windows) <= MAX_WINDOWS, statements


async def test_deleting_a_user_cleans_the_index(db: Database, make_user: MakeUser) -> None:
    """Account deletion cascades through foreign keys; the index follows."""
    user = await make_user()
    async with db.session() as s:
        await _chat(ConversationStore(s, user), "Feijoa notes", "feijoa everywhere")
        await s.commit()
        assert await _index_count(s, db.dialect, "feijoa") == 1
        await s.execute(text("DELETE FROM users WHERE id = :id"), {"id": user})
        await s.commit()
        assert await _index_count(s, db.dialect, "feijoa") == 0
        assert await search_conversations(s, user, "feijoa") == []
