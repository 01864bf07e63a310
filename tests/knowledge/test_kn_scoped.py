"""Dense search within a scope (issue 13 item 8), on both backends: the scope is applied
inside the search (numpy: only the scope's rows through a file -> rows index, or the
whole matrix masked when the scope is most of it; pgvector: the exact scan over the
scope's rows or the HNSW index with an iterative, filtered scan), and every way gives
the exact answer a brute-force scan over the scope's vectors gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from test_kn_index import DIM, MODEL, _library

from parley.knowledge.index import VectorIndex
from parley.storage.db import Database


async def _vectors(db: Database, user_id: str) -> dict[int, tuple[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT id, file_id, embedding FROM knowledge_chunks WHERE user_id = :u"),
            {"u": user_id},
        )
        return {int(r[0]): (str(r[1]), np.frombuffer(r[2], dtype="<f4")) for r in rows}


def _brute(
    vectors: dict[int, tuple[str, Any]], query: Any, files: set[str], limit: int
) -> list[int]:
    scored = [(float(v @ query), cid) for cid, (f, v) in vectors.items() if f in files]
    return [cid for _, cid in sorted(scored, key=lambda s: (-s[0], s[1]))[:limit]]


async def test_scoped_dense_search_is_exact_at_every_scope_size(db: Database) -> None:
    # Ten files of different sizes for Ann, one for Bob (never in Ann's results).
    texts = {f"ann/{i}": [f"passage {i}.{j}" for j in range(3 + 4 * i)] for i in range(10)}
    texts["bob/x"] = ["bob's"] * 20
    lib = await _library(db, texts, seed=5)
    ann = lib["users"]["ann"]
    files = [lib["files"][f"ann/{i}"] for i in range(10)]
    index: VectorIndex = lib["index"]
    vectors = await _vectors(db, ann)
    rng = np.random.default_rng(8)
    scopes = [files[:1], files[3:5], files[:9], files, [files[2], lib["files"]["bob/x"]]]
    for _ in range(3):
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        for scope in scopes:
            for limit in (5, 100):
                found = await index.search(ann, MODEL, query, scope, limit)
                want = _brute(vectors, query, set(scope), limit)
                assert [c for c, _ in found] == want, (len(scope), limit)
                for chunk_id, score in found:
                    assert score == pytest.approx(float(vectors[chunk_id][1] @ query), abs=1e-5)
    assert await index.search(ann, MODEL, query, [lib["files"]["bob/x"]], 10) == []
    assert await index.search(ann, MODEL, query, ["no-such-file"], 10) == []


async def test_numpy_file_index_follows_appended_rows(db: Database) -> None:
    lib = await _library(db, {"ann/a": ["one", "two"], "ann/b": ["three"]}, seed=6)
    ann, index = lib["users"]["ann"], VectorIndex(db)  # numpy on every backend
    a, b = lib["files"]["ann/a"], lib["files"]["ann/b"]
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    assert len(await index._search_numpy(ann, MODEL, query, [a], 10)) == 2
    more = await _library(db, {"ann/c": ["four", "five", "six"]}, seed=7)
    async with db.session() as session:  # _library made another user: give Ann the file
        for table in ("knowledge_files", "knowledge_chunks"):
            column = "id" if table == "knowledge_files" else "file_id"
            await session.execute(
                text(f"UPDATE {table} SET user_id = :u WHERE {column} = :f"),
                {"u": ann, "f": more["files"]["ann/c"]},
            )
        await session.commit()
    index.invalidate(ann)
    c = more["files"]["ann/c"]
    found = await index._search_numpy(ann, MODEL, query, [c], 10)
    assert sorted(cid for cid, _ in found) == sorted(more["chunks"]["ann/c"])
    assert len(await index._search_numpy(ann, MODEL, query, [a, b], 10)) == 3
    assert len(await index._search_numpy(ann, MODEL, query, [a, b, c], 10)) == 6
