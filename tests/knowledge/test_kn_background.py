"""Retrieval hooks and background work: the reranking hook, re-indexing after an
embedding model change (started by the feature itself, keyword search working
meanwhile), a question that waits for a file finishing its indexing, and the
``search_knowledge`` tool never reaching another user's passages."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from knhelpers import Upload, wait_ready
from sqlalchemy import text

from apihelpers import Client, MakeApp, make_client, parse_sse, signup
from parley.knowledge.feature import KnowledgeFeature
from parley.knowledge.retrieval import CANDIDATES, Hit
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"knowledge_wait_s": 3.5}  # the most a turn may wait (5 s - 1.5 s)


@pytest.fixture
def started(make_app: MakeApp) -> MakeApp:
    """``async with started(**kwargs) as app``: an app with only the knowledge feature,
    built with ``kwargs`` (embedder, reranker)."""
    return lambda **kwargs: make_app(features=[lambda s: KnowledgeFeature(s, **kwargs)])


async def _scalar(feature: KnowledgeFeature, sql: str, **params: Any) -> int:
    async with feature.service.ingestor.db.session() as session:
        return int((await session.execute(text(sql), params)).scalar() or 0)


# ------------------------------------------------------------------ reranking hook


class Reverser:
    """A reranker that puts the fused candidates in reverse order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Hit]]] = []

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        self.calls.append((query, list(hits)))
        return list(reversed(hits))


async def test_a_reranker_sees_more_candidates_than_asked_and_decides_the_order(
    started: MakeApp,
) -> None:
    doc = "\n\n".join(
        f"# Part {n}\n\nThe lighthouse keeper logged storm number {n} in the ledger."
        for n in range(12)
    )
    reverser = Reverser()
    async with (
        started(reranker=reverser) as app,
        make_client(app) as client,
    ):
        await signup(client)
        upload = {"file": ("log.md", doc.encode(), "text/markdown")}
        file = (await client.post("/api/files", files=upload)).json()
        await wait_ready(client, file["id"])
        body = {"query": "lighthouse storm ledger", "limit": 3}
        items = (await client.post("/api/knowledge/search", json=body)).json()["items"]
    query, candidates = reverser.calls[-1]
    assert query == "lighthouse storm ledger"
    assert 3 < len(candidates) <= CANDIDATES  # a pool to rerank, not just the top 3
    fused = [h.chunk_id for h in candidates]
    assert [i["chunk_id"] for i in items] == fused[::-1][:3]  # the reranker's order wins


# ------------------------------------------------------------------ re-indexing


class OtherModel:
    """A second embedding model whose document embeddings wait for ``gate``."""

    name = "other-model"
    dim = 8

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.documents = 0

    async def embed(self, texts: list[str]) -> Any:
        if not (len(texts) == 1 and "\n" not in texts[0]):  # passages, not a query
            self.documents += len(texts)
            await self.gate.wait()
        vectors = np.eye(8, dtype=np.float32)[[len(t) % 8 for t in texts]]
        return vectors


async def test_a_new_embedding_model_reindexes_in_the_background_at_start(
    started: MakeApp,
) -> None:
    data = b"Quartz is a mineral.\n\nBasalt is a volcanic rock.\n"
    async with started() as app, make_client(app) as client:
        await signup(client)
        file = (await client.post("/api/files", files={"file": ("r.txt", data)})).json()
        first = await wait_ready(client, file["id"])
    assert first["status"] == "ready"

    other = OtherModel()
    async with started(embedder=other) as app:
        feature: KnowledgeFeature = app.state.features["knowledge"]
        async with make_client(app) as client:
            login = {"email": "ada@example.com", "password": "correct horse"}
            assert (await client.post("/api/auth/login", json=login)).status_code == 200
            for _ in range(400):  # nobody asked: the feature started re-embedding itself
                if other.documents:
                    break
                await asyncio.sleep(0.02)
            assert other.documents >= 1
            # Meanwhile the file stays usable: ready, found by keyword.
            assert (await client.get(f"/api/files/{file['id']}")).json()["status"] == "ready"
            body = {"query": "volcanic basalt", "mode": "keyword"}
            hits = (await client.post("/api/knowledge/search", json=body)).json()["items"]
            assert [h["file_id"] for h in hits] == [file["id"]]
            other.gate.set()
            chunks = first["chunk_count"]
            for _ in range(400):
                done = await _scalar(
                    feature,
                    "SELECT count(*) FROM knowledge_chunks WHERE embed_model = 'other-model'",
                )
                if done == chunks:
                    break
                await asyncio.sleep(0.02)
            assert done == chunks
            body = {"query": "basalt", "mode": "dense"}
            hits = (await client.post("/api/knowledge/search", json=body)).json()["items"]
            assert hits and all(h["ranks"].get("dense") for h in hits)


# ------------------------------------------------------------------ waiting for a file


async def test_a_question_waits_for_a_file_that_finishes_indexing(
    client: Client,
    user: dict[str, Any],
    upload: Upload,
    scripted: ScriptedModel,
    feature: KnowledgeFeature,
) -> None:
    real = feature.service.embedder
    await real.embed(["load the model before the turn"])
    gate = asyncio.Event()

    class Held:
        name, dim = real.name, real.dim

        async def embed(self, texts: list[str]) -> Any:
            if texts and texts[0].startswith("wait.txt"):
                await gate.wait()
            return await real.embed(texts)

    feature.service.ingestor.embedder = Held()
    source = feature._source
    assert source is not None
    files = source._files

    async def files_then_open(*args: Any, **kwargs: Any) -> Any:
        found = await files(*args, **kwargs)
        gate.set()  # indexing finishes while the turn is waiting for it
        return found

    source._files = files_then_open  # type: ignore[method-assign]
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    data = b"The lighthouse on Skerry Island was built in 1871.\n"
    file = (await upload("wait.txt", data, conversation_id=conv["id"])).json()
    for _ in range(400):
        if (await client.get(f"/api/files/{file['id']}")).json()["status"] == "embedding":
            break
        await asyncio.sleep(0.02)
    response = await client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "When was the lighthouse built?"},
    )
    sources = dict(parse_sse(response.text))["sources"]["sources"]
    assert [(s["filename"], s["mode"]) for s in sources] == [("wait.txt", "whole")]
    system = scripted.requests[-1].messages[0].content
    assert "built in 1871" in system and "still being" not in system


# ------------------------------------------------------------------ the tool, across users


async def test_the_search_tool_never_reaches_another_users_passages(
    app: Any, client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    file = (await upload("secret.txt", b"The vault code is 7391 at the harbour.\n")).json()
    await wait_ready(client, file["id"])
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        conv = (await bob.post("/api/conversations", json={"model": "scripted/scripted"})).json()
        scripted.enqueue(
            Reply(tool_calls=[ToolCall("k1", "search_knowledge", '{"query": "vault code"}')]),
            "Nothing found.",
        )
        response = await bob.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "What is the vault code?"}
        )
        events = parse_sse(response.text)
        tool = next(d for n, d in events if n == "tool_result")
        assert "7391" not in tool["output"] and "secret.txt" not in tool["output"]
        assert dict(events)["done"]["message"]["sources"] == []
        assert all("7391" not in m.content for r in scripted.requests for m in r.messages)
