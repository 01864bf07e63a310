"""Progress figures through the HTTP API while ingestion embeds across files, and the
figures of files whose bytes were already stored (reused passages and vectors)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from docfactory import pdf_bytes
from knhelpers import Upload, wait_ready
from sqlalchemy import text

from apihelpers import Client, make_client, signup
from parley.knowledge import embedqueue
from parley.knowledge.feature import KnowledgeFeature

FIGURES = ("status", "pages", "pages_done", "chunk_count", "embedded_count", "tokens", "progress")


async def _truth(feature: KnowledgeFeature, file_id: str, model: str) -> tuple[int, int]:
    """(passages, passages with a vector of the current model), counted in the database."""
    async with feature.service.ingestor.db.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT count(*), coalesce(sum(CASE WHEN embed_model = :m"
                    " AND embedding IS NOT NULL THEN 1 ELSE 0 END), 0)"
                    " FROM knowledge_chunks WHERE file_id = :f"
                ),
                {"f": file_id, "m": model},
            )
        ).one()
    return int(row[0]), int(row[1])


def _paragraphs(word: str, n: int) -> bytes:
    """``n`` paragraphs of ~1,000 characters: one passage each (chunk target 1,200)."""
    body = "\n\n".join(
        f"Section {i} about {word}. " + f"The {word} note {i} records a measurement. " * 22
        for i in range(n)
    )
    return body.encode()


class Stepper:
    """The real embedder, one call at a time on the test's signal; records what each
    call embedded (the file a text came from is its first line)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls: list[list[str]] = []
        self.waiting = asyncio.Event()
        self.go = asyncio.Semaphore(0)

    async def embed(self, texts: list[str]) -> Any:
        if len(texts) == 1 and "\n" not in texts[0]:
            return await self.inner.embed(texts)  # a question: never held
        self.calls.append([t.split("\n", 1)[0] for t in texts])
        self.waiting.set()
        await self.go.acquire()
        return await self.inner.embed(texts)


async def test_progress_stays_per_file_and_true_while_rounds_mix_files(
    client: Client,
    user: dict[str, Any],
    upload: Upload,
    feature: KnowledgeFeature,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embedqueue, "ROUND", 6)  # a few passages per round: many rounds
    ingestor = feature.service.ingestor
    stepper = Stepper(ingestor.embedder)
    await stepper.inner.embed(["load the model first"])
    ingestor.embedder = stepper
    sizes = {"first.txt": 2, "big.txt": 20, "small.txt": 3}
    ids = {}
    for name, n in sizes.items():
        ids[name] = (await upload(name, _paragraphs(name.split(".")[0], n))).json()["id"]
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in sizes}
    ready_order: list[str] = []
    for _ in range(40):
        # Between rounds: the next call waits, so the last round's writes are committed.
        waiting = asyncio.create_task(stepper.waiting.wait())
        done = await asyncio.wait_for(_all_ready_or(client, ids, waiting), 60)
        for name, file_id in ids.items():
            state = (await client.get(f"/api/files/{file_id}")).json()
            seen[name].append(state)
            chunks, embedded = await _truth(feature, file_id, stepper.name)
            if state["status"] in ("embedding", "ready"):
                # every figure the web app shows is the database's truth, per file
                assert state["chunk_count"] == chunks == sizes[name], (name, state)
                assert state["embedded_count"] == embedded, (name, state, embedded)
            if state["status"] == "embedding":
                assert state["progress"] == round(0.5 + 0.5 * embedded / chunks, 3)
            if state["status"] == "ready" and name not in ready_order:
                ready_order.append(name)
                assert state["embedded_count"] == chunks and state["progress"] == 1.0
        if done:
            break
        stepper.waiting.clear()  # the next wait is the next round's
        stepper.go.release()
    assert set(ready_order) == set(sizes)
    # A round took passages of several files, and never more than ROUND.
    assert any(len({line.split(" —")[0] for line in call}) > 1 for call in stepper.calls)
    assert all(len(call) <= 6 for call in stepper.calls)
    # The small file uploaded after the big one did not wait for all of it.
    assert ready_order.index("small.txt") < ready_order.index("big.txt")
    # Each file's figures only went forward, through several intermediate values.
    for name, states in seen.items():
        counts = [s["embedded_count"] for s in states if s["status"] != "queued"]
        progress = [s["progress"] for s in states]
        assert counts == sorted(counts) and progress == sorted(progress), (name, states)
    big = [s["embedded_count"] for s in seen["big.txt"] if s["status"] == "embedding"]
    assert len(set(big)) >= 3, big  # the big file's progress was shown between rounds


async def _all_ready_or(client: Client, ids: dict[str, str], waiting: asyncio.Task[Any]) -> bool:
    """True once every file is ready; False as soon as the embedder waits for a go."""
    while True:
        if waiting.done():
            return False
        states = [(await client.get(f"/api/files/{i}")).json()["status"] for i in ids.values()]
        if all(s == "ready" for s in states):
            waiting.cancel()
            return True
        await asyncio.sleep(0.02)


async def test_reused_bytes_report_every_figure_truly(
    app: Any, client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    """The same PDF in the library, in two collections of the same user (its passages and
    vectors are copied, not parsed again), and uploaded by another user (parsed again)."""
    pages = [
        f"Page {n} of the tide tables. " + f"High water at the harbour on day {n}. " * 40
        for n in range(1, 4)
    ]
    data = pdf_bytes(pages)
    model = feature.service.ingestor.embedder.name
    original = await wait_ready(client, (await upload("tides.pdf", data)).json()["id"])
    assert original["status"] == "ready" and original["pages"] == original["pages_done"] == 3
    assert original["chunk_count"] >= 3 and original["tokens"] > 0
    assert original["embedded_count"] == original["chunk_count"] and original["progress"] == 1.0
    assert await _truth(feature, original["id"], model) == (original["chunk_count"],) * 2

    copies = []
    for name in ("Harbour", "Almanac"):
        collection = (await client.post("/api/collections", json={"name": name})).json()
        made = await upload("tides.pdf", data, collection_id=collection["id"])
        assert made.status_code == 201 and made.json()["duplicate"] is False
        state = await wait_ready(client, made.json()["id"])
        assert state["collection_id"] == collection["id"]
        copies.append(state)
        listed = (await client.get(f"/api/collections/{collection['id']}")).json()
        assert listed["file_count"] == 1
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        theirs = await upload("tides-bob.pdf", data, c=bob)
        assert theirs.status_code == 201
        bobs = await wait_ready(bob, theirs.json()["id"])
        bob_list = {f["id"]: f for f in (await bob.get("/api/files")).json()["items"]}
    listed = {f["id"]: f for f in (await client.get("/api/files")).json()["items"]}
    for state in (*copies, bobs):
        for figure in FIGURES:
            assert state[figure] == original[figure], (figure, state, original)
        assert await _truth(feature, state["id"], model) == (original["chunk_count"],) * 2
    for state in copies:  # the list says the same as the file's own route
        for figure in FIGURES:
            assert listed[state["id"]][figure] == state[figure], figure
    for figure in FIGURES:
        assert bob_list[bobs["id"]][figure] == bobs[figure], figure
    # The copies are searchable by meaning in their own collection.
    hits = (
        await client.post(
            "/api/knowledge/search",
            json={
                "query": "when is the tide high",
                "collection_id": copies[0]["collection_id"],
                "mode": "dense",
            },
        )
    ).json()["items"]
    assert hits and {h["file_id"] for h in hits} == {copies[0]["id"]}


async def test_a_copy_from_a_file_of_an_older_model_is_not_counted_as_embedded(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    data = b"The ferry leaves at nine.\n\nIt returns at five in the evening.\n"
    first = await wait_ready(client, (await upload("ferry.txt", data)).json()["id"])
    async with feature.service.ingestor.db.session() as session:  # as if an old model made them
        await session.execute(
            text("UPDATE knowledge_chunks SET embed_model = 'old-model' WHERE file_id = :f"),
            {"f": first["id"]},
        )
        await session.commit()
    ingestor = feature.service.ingestor
    stepper = Stepper(ingestor.embedder)
    ingestor.embedder = stepper
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    copy = (await upload("ferry.txt", data, conversation_id=conv["id"])).json()
    await asyncio.wait_for(stepper.waiting.wait(), 30)  # copied, now waiting to be embedded
    state = (await client.get(f"/api/files/{copy['id']}")).json()
    assert state["status"] == "embedding" and state["chunk_count"] == first["chunk_count"]
    assert state["embedded_count"] == 0 and state["progress"] == 0.5
    stepper.waiting.clear()
    stepper.go.release()
    final = await wait_ready(client, copy["id"])
    assert final["embedded_count"] == final["chunk_count"] == first["chunk_count"]


async def test_an_embedding_failure_is_recorded_and_the_queue_goes_on(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    ingestor = feature.service.ingestor
    real = ingestor.embedder

    class Down:
        name, dim = real.name, real.dim

        async def embed(self, texts: list[str]) -> Any:
            raise RuntimeError("the embeddings endpoint is down")

    ingestor.embedder = Down()
    failed = await wait_ready(
        client, (await upload("down.txt", _paragraphs("kelp", 2))).json()["id"]
    )
    assert failed["status"] == "ready" and failed["error_code"] == "embedding_failed"
    assert "endpoint is down" in failed["error"] and "keyword search" in failed["error"]
    assert failed["embedded_count"] == 0 and failed["chunk_count"] == 2
    hits = (await client.post("/api/knowledge/search", json={"query": "kelp"})).json()["items"]
    assert hits and hits[0]["file_id"] == failed["id"]
    ingestor.embedder = real
    fine = await wait_ready(client, (await upload("up.txt", _paragraphs("coral", 2))).json()["id"])
    assert fine["error_code"] is None and fine["embedded_count"] == fine["chunk_count"] == 2
