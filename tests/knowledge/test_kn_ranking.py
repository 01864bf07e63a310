"""The ranking levers of ``parley.knowledge.ranking`` and how ``Retriever`` uses them:
query variants (the question without its scaffolding), and the heading reranker
(title/section overlap and verbatim identifiers), on both backends with the real
embedded model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from sqlalchemy import insert

from parley.embeddings import LocalEmbedder
from parley.knowledge.index import VectorIndex
from parley.knowledge.ingest import embed_text
from parley.knowledge.ranking import (
    HeadingReranker,
    content_query,
    content_stems,
    identifiers,
    stem,
)
from parley.knowledge.retrieval import Hit, Retriever
from parley.knowledge.tables import KnowledgeChunk, KnowledgeFile
from parley.storage.db import Database
from parley.storage.tables import User


def _hit(chunk_id: int, text: str, section: str | None, score: float) -> Hit:
    return Hit(chunk_id, "f", "manual.md", None, section, text, 0, len(text), 0, score)


def test_content_query_drops_question_scaffolding_only() -> None:
    assert (
        content_query("Which port does the mail client use by default for TLS?")
        == "port mail client default TLS"
    )
    assert content_query("what is it") is None  # nothing left: the question stays as is
    assert content_query("gzip compression level") is None  # nothing removed


def test_stems_meet_inflections_and_identifiers_are_spelled_out() -> None:
    assert stem("defaults") == stem("default")
    assert stem("Compression") == stem("compressed") == "compre"
    assert content_stems("default compression level") == {stem("default"), "compre", "level"}
    found = identifiers("default level of bz2.open and get_close_matches for .svg files")
    assert found == ["bz2.open", "get_close_matches", ".svg"]
    assert identifiers("plain words only") == []


async def test_heading_reranker_lifts_the_passage_whose_title_names_the_question() -> None:
    body = _hit(
        1, "A long body mentioning level and bz2 once.", "The zlib module > zlib.compress", 0.05
    )
    table = _hit(
        2,
        "| callable | parameter | default |\n| bz2.open | compresslevel | 9 |",
        "The bz2 module > Parameter defaults in bz2",
        0.04,
    )
    other = _hit(3, "Unrelated text.", "The csv module > csv.reader", 0.045)
    ranked = await HeadingReranker().rerank(
        "default compression level of bz2.open", [body, table, other]
    )
    assert [h.chunk_id for h in ranked] == [2, 1, 3]
    assert ranked[0].score > 0.05  # a bonus, never a replacement of the fused score
    # without any overlap the fused order stands
    same = await HeadingReranker().rerank("zebra", [_hit(1, "x", "a", 0.3), _hit(2, "y", "b", 0.2)])
    assert [h.chunk_id for h in same] == [1, 2]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


PASSAGES = [
    ("shutil.rmtree", "Recursively delete a directory tree."),
    ("shutil.copyfile", "Copy data from src to dst in the most efficient way possible."),
    ("json.loads", "Deserialize a str instance containing a JSON document to a Python object."),
    ("csv.reader", "Return a reader object which will iterate over lines in the given csvfile."),
    ("Ports", "| name | value |\n| smtplib.SMTP_SSL_PORT | 465 |\n| poplib.POP3_PORT | 110 |"),
]


async def _manual(db: Database) -> tuple[str, list[int], VectorIndex, LocalEmbedder]:
    embedder = LocalEmbedder()
    index = VectorIndex(db)
    await index.setup()
    async with db.session() as session:
        user = User(email="ranking@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        row = KnowledgeFile(
            user_id=user.id,
            sha256="0" * 64,
            filename="manual.md",
            media_type="text/markdown",
            kind="markdown",
            size_bytes=0,
            status="ready",
            embed_model=embedder.name,
        )
        session.add(row)
        await session.flush()
        rows: list[dict[str, object]] = [
            {
                "file_id": row.id,
                "user_id": user.id,
                "ordinal": i,
                "text": f"{title}\n{body}",
                "section": f"Manual > {title}",
                "char_start": 0,
                "char_end": 1,
                "tokens": 10,
            }
            for i, (title, body) in enumerate(PASSAGES)
        ]
        ids = [
            int(r[0])
            for r in await session.execute(
                insert(KnowledgeChunk).returning(KnowledgeChunk.id), rows
            )
        ]
        vectors = await embedder.embed(
            [embed_text("manual.md", f"Manual > {t}", f"{t}\n{b}") for t, b in PASSAGES]
        )
        await index.write(
            session,
            embedder.name,
            [(cid, user.id, row.id, v) for cid, v in zip(ids, vectors, strict=True)],
        )
        await session.commit()
    return user.id, ids, index, embedder


async def test_variants_search_with_the_mean_of_question_and_content_words(db: Database) -> None:
    user_id, ids, index, embedder = await _manual(db)
    question = "what do I use to turn the text I received from a web API into dictionaries?"
    plain = Retriever(db, embedder, index)
    varied = Retriever(db, embedder, index, variants=True)
    a = await plain.search(user_id, question, mode="dense", limit=5)
    b = await varied.search(user_id, question, mode="dense", limit=5)
    assert {h.chunk_id for h in a} == {h.chunk_id for h in b} == set(ids)
    assert b[0].chunk_id == ids[2]  # json.loads
    # the query vector really is the normalised mean of both embeddings
    rewritten = content_query(question)
    assert rewritten is not None
    both = await embedder.embed([question, rewritten])
    mean = both.mean(axis=0)
    mean /= np.linalg.norm(mean)
    found = await index.search(user_id, embedder.name, mean.astype(np.float32), None, 1)
    assert found[0][0] == b[0].chunk_id


async def test_retriever_with_heading_reranker_keeps_scope_and_citations(db: Database) -> None:
    user_id, ids, index, embedder = await _manual(db)
    retriever = Retriever(db, embedder, index, reranker=HeadingReranker())
    hits = await retriever.search(user_id, "default port of smtplib.SMTP_SSL_PORT", limit=3)
    assert hits[0].chunk_id == ids[4]
    assert hits[0].filename == "manual.md" and hits[0].section == "Manual > Ports"
    assert len(hits) == 3
    assert await retriever.search(user_id, "default port", file_ids=[]) == []
    assert await retriever.search("someone-else", "default port") == []
