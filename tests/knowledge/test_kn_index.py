"""The indexes under retrieval, on both backends: owner and file scoping of the keyword
query (ranked inside FTS5, owner re-checked after), loading hits by id without leaking
another user's passages, and pgvector's HNSW index (made by migration 0008) agreeing
with the exact scan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, text

from parley.knowledge.index import VectorIndex, keyword_search
from parley.knowledge.pgvector import ann_index_ddl, ann_index_name
from parley.knowledge.retrieval import Retriever
from parley.knowledge.tables import KnowledgeChunk, KnowledgeFile
from parley.storage.db import Database
from parley.storage.tables import User

MODEL = "all-MiniLM-L6-v2"
DIM = 384


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


async def _library(db: Database, texts: dict[str, list[str]], seed: int = 1) -> dict[str, Any]:
    """One user per key of ``texts`` ("user/file"), passages with random unit vectors."""
    rng = np.random.default_rng(seed)
    users: dict[str, str] = {}
    files: dict[str, str] = {}
    chunks: dict[str, list[int]] = {}
    async with db.session() as session:
        for key in texts:
            owner = key.split("/")[0]
            if owner not in users:
                user = User(
                    email=f"{owner}-{rng.integers(1 << 30)}@example.test", password_hash="x"
                )
                session.add(user)
                await session.flush()
                users[owner] = user.id
            row = KnowledgeFile(
                user_id=users[owner],
                sha256="0" * 64,
                filename=key,
                media_type="text/plain",
                kind="text",
                size_bytes=0,
                status="ready",
                embed_model=MODEL,
            )
            session.add(row)
            await session.flush()
            files[key] = row.id
        await session.commit()
    index = VectorIndex(db)
    await index.setup()
    for key, passages in texts.items():
        vectors = rng.standard_normal((len(passages), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        async with db.session() as session:
            rows = [
                {
                    "file_id": files[key],
                    "user_id": users[key.split("/")[0]],
                    "ordinal": i,
                    "text": passage,
                    "char_start": 0,
                    "char_end": len(passage),
                    "tokens": len(passage) // 4,
                }
                for i, passage in enumerate(passages)
            ]
            result = await session.execute(
                insert(KnowledgeChunk).returning(KnowledgeChunk.id), rows
            )
            ids = [int(r[0]) for r in result]
            await index.write(
                session,
                MODEL,
                [
                    (cid, str(rows[0]["user_id"]), files[key], vectors[i])
                    for i, cid in enumerate(ids)
                ],
            )
            await session.execute(
                text("UPDATE knowledge_files SET embedded_count = :n WHERE id = :id"),
                {"n": len(ids), "id": files[key]},
            )
            await session.commit()
        chunks[key] = ids
    return {"users": users, "files": files, "chunks": chunks, "index": index}


async def test_keyword_search_is_ranked_and_scoped_to_owner_and_files(db: Database) -> None:
    lib = await _library(
        db,
        {
            "ann/a": ["the walrus sleeps on ice", "walrus walrus tusks and a walrus pup", "boats"],
            "ann/b": ["a walrus in the harbour", "seagulls only"],
            "bob/c": ["walrus walrus walrus everywhere"],
        },
    )
    ann, bob = lib["users"]["ann"], lib["users"]["bob"]
    a, b, c = lib["chunks"]["ann/a"], lib["chunks"]["ann/b"], lib["chunks"]["bob/c"]
    async with db.session() as session:
        everything = await keyword_search(session, ann, "walrus", None, 10)
        only_b = await keyword_search(session, ann, "walrus", [lib["files"]["ann/b"]], 10)
        bobs = await keyword_search(session, bob, "walrus", None, 10)
        foreign = await keyword_search(session, bob, "walrus", [lib["files"]["ann/a"]], 10)
        top_one = await keyword_search(session, ann, "walrus", None, 1)
    assert set(everything) == {a[0], a[1], b[0]}
    assert everything[0] == a[1]  # the passage saying it most ranks first
    assert top_one == [a[1]]
    assert only_b == [b[0]]
    assert bobs == c
    assert foreign == []  # a file id of someone else's narrows to nothing


async def test_loading_hits_never_returns_another_users_passage(db: Database) -> None:
    lib = await _library(db, {"ann/a": ["otters hold hands"], "bob/b": ["otters sleep"]})
    retriever = Retriever(db, None, lib["index"])
    mine, theirs = lib["chunks"]["ann/a"][0], lib["chunks"]["bob/b"][0]
    hits = await retriever._load(lib["users"]["ann"], [(theirs, 1.0), (mine, 0.5)], [], [])
    assert [h.chunk_id for h in hits] == [mine]
    assert hits[0].filename == "ann/a"


async def test_pgvector_hnsw_index_is_used_and_agrees_with_exact(
    db: Database, backend: str
) -> None:
    if backend == "sqlite":
        lib = await _library(db, {"ann/a": ["x"]})
        assert lib["index"].backend == "numpy"  # SQLite: exact numpy search only
        return
    texts = {"ann/a": [f"passage {i}" for i in range(300)], "bob/b": ["other"] * 50}
    lib = await _library(db, texts, seed=3)
    index: VectorIndex = lib["index"]
    assert index.backend == "pgvector"
    async with db.session() as session:
        names = {
            r[0]
            for r in await session.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'knowledge_vectors'")
            )
        }
    assert ann_index_name(MODEL, DIM) in names  # made by the migration
    ann, bob = lib["users"]["ann"], lib["users"]["bob"]
    rng = np.random.default_rng(9)
    query = rng.standard_normal(DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    # The first search schedules the readiness check; later ones use the index.
    await index.search(ann, MODEL, query, None, 10)
    await index.pg.wait_for_builds()
    assert index.pg._ann_ready(MODEL, DIM)
    async with db.session() as session:
        # A few hundred rows: the planner rightly prefers the btree and a sort. Without it
        # (dropped inside this transaction, rolled back) the HNSW index must match the query.
        await session.execute(text("DROP INDEX knowledge_vectors_user_model"))
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            str(r[0])
            for r in await session.execute(
                text("EXPLAIN " + str(index.pg._ann_sql(MODEL, DIM, None))),
                {"q": "[" + ",".join(["0.1"] * DIM) + "]", "uid": ann, "limit": 10},
            )
        )
        await session.rollback()
    assert ann_index_name(MODEL, DIM) in plan, plan
    approx = await index.search(ann, MODEL, query, None, 10)
    exact = await index.pg.search(ann, MODEL, query, None, 10, exact=True)
    assert [c for c, _ in approx] == [c for c, _ in exact]  # 300 vectors: HNSW is exact
    assert set(c for c, _ in approx) <= set(lib["chunks"]["ann/a"])
    # Fewer vectors than asked (another user's are filtered out): the exact scan fills in.
    theirs = await index.search(bob, MODEL, query, None, 60)
    assert sorted(c for c, _ in theirs) == sorted(lib["chunks"]["bob/b"])


def test_ann_index_ddl_refuses_unsafe_model_names() -> None:
    assert ann_index_ddl("bad'; DROP TABLE users; --", DIM) is None
    assert ann_index_ddl(MODEL, 0) is None
    ddl = ann_index_ddl(MODEL, DIM, concurrently=True)
    assert ddl is not None and "CONCURRENTLY" in ddl and f"vector({DIM})" in ddl


async def test_pgvector_builds_the_index_of_another_model_in_the_background(
    db: Database, backend: str
) -> None:
    if backend == "sqlite":
        return  # no pgvector on SQLite
    index = VectorIndex(db)
    await index.setup()
    lib = await _library(db, {"ann/a": ["one"]})
    user, file_id = lib["users"]["ann"], lib["files"]["ann/a"]
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with db.session() as session:
        rows = [
            {
                "file_id": file_id,
                "user_id": user,
                "ordinal": 100 + i,
                "text": f"t{i}",
                "char_start": 0,
                "char_end": 2,
                "tokens": 1,
            }
            for i in range(40)
        ]
        statement = insert(KnowledgeChunk).returning(KnowledgeChunk.id)
        ids = [int(r[0]) for r in await session.execute(statement, rows)]
        await index.write(
            session, "tiny-model", [(c, user, file_id, vectors[i]) for i, c in enumerate(ids)]
        )
        await session.commit()
    first = await index.search(user, "tiny-model", vectors[3], None, 5)  # exact, starts a build
    await index.pg.wait_for_builds()
    assert index.pg._ann_ready("tiny-model", 8)
    async with db.session() as session:
        valid = (
            await session.execute(
                text(
                    "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
                    " WHERE c.relname = :n"
                ),
                {"n": ann_index_name("tiny-model", 8)},
            )
        ).scalar()
    assert valid is True
    second = await index.search(user, "tiny-model", vectors[3], None, 5)
    assert first[0][0] == second[0][0] == ids[3]
    assert [c for c, _ in first] == [c for c, _ in second]


async def test_common_words_are_required_together_and_new_words_are_found_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import parley.knowledge.keyword as keyword_module

    # Tiny limits stand in for a big library: a word in more than 2 passages is common.
    monkeypatch.setattr(keyword_module, "TERM_LIMITS", {"sqlite": (2, 4), "postgresql": (2, 4)})
    texts = ["apple pie"] * 3 + ["banana bread"] * 3 + ["apple banana smoothie", "cherry"]
    lib = await _library(db, {"ann/a": texts})
    user, ids = lib["users"]["ann"], lib["chunks"]["ann/a"]
    async with db.session() as session:
        both = await keyword_search(session, user, "apple banana", None, 10)
        rare_and_common = await keyword_search(session, user, "cherry apple", None, 10)
        missing = await keyword_search(session, user, "axolotl", None, 10)
    assert both == [ids[6]]  # only common words: the passage with all of them
    assert rare_and_common == [ids[7]]  # the rare word alone ranks; the common one is dropped
    assert missing == []
    more = await _library(db, {"bob/b": ["x"]})  # another table write, then a new word
    async with db.session() as session:
        await session.execute(
            insert(KnowledgeChunk),
            [
                {
                    "file_id": lib["files"]["ann/a"],
                    "user_id": user,
                    "ordinal": 99,
                    "text": "axolotl facts",
                    "char_start": 0,
                    "char_end": 13,
                    "tokens": 3,
                }
            ],
        )
        await session.commit()
        found = await keyword_search(session, user, "axolotl", None, 10)
    assert len(found) == 1 and more["users"]["bob"] != user


async def test_keyword_statistics_are_the_users_own_and_exact_after_uploads_and_deletes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import parley.knowledge.keyword as keyword_module

    # Small limits stand in for a big library: a word in more than 5 passages is common.
    monkeypatch.setattr(keyword_module, "TERM_LIMITS", {"sqlite": (5, 10), "postgresql": (5, 10)})
    texts = [
        "apple apple apple banana",
        "banana banana banana apple",
        "apple pie",
        "banana bread",
        "banana split",
        *[f"cherry number {i}" for i in range(7)],
    ]
    lib = await _library(db, {"ann/a": texts, "ann/b": ["plum"]})
    ann, ids = lib["users"]["ann"], lib["chunks"]["ann/a"]
    query = "apple banana"

    async def ranking(scope: list[str] | None = None) -> list[int]:
        async with db.session() as session:
            return await keyword_search(session, ann, query, scope, 10)

    before, scoped = await ranking(), await ranking([lib["files"]["ann/a"]])
    # Among Ann's passages "apple" is the rarer word: the passage saying it most is first.
    assert before[:2] == [ids[0], ids[1]] and set(before) == set(ids[:5])
    assert scoped == before
    # Bob's library makes "apple" the commonest word of the instance (instance-wide
    # statistics would rank Ann's banana passage first, or drop "apple" as common).
    await _library(db, {"bob/c": ["apple orchard apple"] * 30}, seed=2)
    assert await ranking() == before
    assert await ranking([lib["files"]["ann/a"]]) == scoped
    # Ann's own upload changes her statistics at once, and deleting it restores them.
    mine = await _library(db, {"ann/c": ["apple cider"] * 30}, seed=3)
    async with db.session() as session:  # _library made a second "ann" user: move the file
        await session.execute(
            text("UPDATE knowledge_files SET user_id = :u WHERE id = :f"),
            {"u": ann, "f": mine["files"]["ann/c"]},
        )
        await session.execute(
            text("UPDATE knowledge_chunks SET user_id = :u WHERE file_id = :f"),
            {"u": ann, "f": mine["files"]["ann/c"]},
        )
        await session.commit()
    changed = await ranking()
    assert changed != before and changed[0] not in mine["chunks"]["ann/c"]
    if db.dialect == "sqlite":  # BM25 weighs words by her statistics in any scope
        assert await ranking([lib["files"]["ann/a"]]) != scoped  # (ts_rank_cd has none)
    async with db.session() as session:
        await session.execute(
            text("DELETE FROM knowledge_chunks WHERE file_id = :f"), {"f": mine["files"]["ann/c"]}
        )
        await session.execute(
            text("DELETE FROM knowledge_files WHERE id = :f"), {"f": mine["files"]["ann/c"]}
        )
        await session.commit()
    assert await ranking() == before
    assert await ranking([lib["files"]["ann/a"]]) == scoped


async def test_both_ways_of_reading_term_frequencies_rank_alike(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import parley.knowledge.keyword as keyword_module

    texts = ["walrus walrus tusk", "tusk tusk tusk walrus", "walrus", "seal", "tusks of a walrus"]
    lib = await _library(db, {"ann/a": texts, "bob/b": ["walrus tusk"] * 5})
    ann, ids = lib["users"]["ann"], lib["chunks"]["ann/a"]

    async def ranking(scope: list[str] | None) -> list[int]:
        async with db.session() as session:
            return await keyword_search(session, ann, "walrus tusk", scope, 10)

    by_scan = await ranking(None), await ranking([lib["files"]["ann/a"]])
    monkeypatch.setattr(keyword_module, "VOCAB_SCAN_FACTOR", 0)  # highlight() for every word
    assert (await ranking(None), await ranking([lib["files"]["ann/a"]])) == by_scan
    assert set(by_scan[0]) == {ids[0], ids[1], ids[2], ids[4]} and by_scan[0] == by_scan[1]
