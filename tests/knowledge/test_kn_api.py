"""Files and knowledge through the HTTP API, on SQLite and PostgreSQL, with real parsing
and the real MiniLM embedder."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from docfactory import (
    docx_bytes,
    pdf_bytes,
    pptx_bytes,
    scanned_pdf_bytes,
    xlsx_bytes,
    zip_bomb_docx,
)
from knhelpers import Upload, wait_ready
from sqlalchemy import text

from apihelpers import Client, make_client, parse_sse, signup
from parley.knowledge.feature import KnowledgeFeature
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {
        "knowledge_wait_s": 2.0,
        "files_max_bytes": 1024 * 1024,
        "files_max_pages": 20,
        "files_max_unzipped_bytes": 50 * 1024 * 1024,
    }


async def _conversation(client: Client) -> str:
    response = await client.post("/api/conversations", json={"model": "scripted/scripted"})
    return str(response.json()["id"])


async def _ask(client: Client, conv: str, question: str) -> dict[str, Any]:
    response = await client.post(f"/api/conversations/{conv}/messages", json={"content": question})
    events = parse_sse(response.text)
    found: dict[str, Any] = {"events": events}
    for name, data in events:
        found.setdefault(name, data)
    return found


async def _count(feature: KnowledgeFeature, sql: str, **params: Any) -> int:
    async with feature.service.ingestor.db.session() as session:
        return int((await session.execute(text(sql), params)).scalar() or 0)


# ------------------------------------------------------------------ each type


async def test_each_type_uploads_parses_and_is_retrieved(
    client: Client, user: dict[str, Any], upload: Upload
) -> None:
    files = {
        "report.pdf": (pdf_bytes(["Cover page.", "The aquifer recharge rate is 12 mm."]), 2),
        "guide.docx": (docx_bytes([("h1", "Setup"), ("p", "Calibrate the flux capacitor.")]), None),
        "deck.pptx": (pptx_bytes([("Intro", "x"), ("Roadmap", "Launch the heliograph.")]), 2),
        "sheet.xlsx": (xlsx_bytes({"Stock": [["item", "qty"], ["tourmaline", 7]]}), None),
        "table.csv": (b"city,river\nVienna,Danube\n", None),
        "page.html": (b"<h1>Birds</h1><p>The kakapo cannot fly.</p><script>x()</script>", None),
        "notes.md": (b"# Notes\n\nThe quokka lives on Rottnest.\n", None),
        "plain.txt": (b"Ferns reproduce with spores.\n", None),
        "code.py": (b"def zygomorphic_flower():\n    return 'orchid'\n", None),
        "data.json": (b'{"mineral": "malachite"}', None),
    }
    ids = {}
    for name, (data, _) in files.items():
        response = await upload(name, data)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    for file_id in ids.values():
        state = await wait_ready(client, file_id)
        assert state["status"] == "ready", state
        assert state["chunk_count"] >= 1 and state["embedded_count"] == state["chunk_count"]
    probes = {
        "aquifer recharge": ("report.pdf", 2),
        "flux capacitor": ("guide.docx", None),
        "heliograph": ("deck.pptx", 2),
        "tourmaline": ("sheet.xlsx", None),
        "Danube": ("table.csv", None),
        "kakapo": ("page.html", None),
        "quokka": ("notes.md", None),
        "spores": ("plain.txt", None),
        "zygomorphic_flower": ("code.py", None),
        "malachite": ("data.json", None),
    }
    for query, (filename, page) in probes.items():
        hits = (await client.post("/api/knowledge/search", json={"query": query})).json()["items"]
        assert hits and hits[0]["filename"] == filename, (query, hits[:2])
        assert hits[0]["page"] == page
    listed = (await client.get("/api/files")).json()["items"]
    assert {f["filename"] for f in listed} == set(files)


async def test_image_is_ready_at_once_and_a_blind_model_says_so(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    conv = await _conversation(client)
    response = await upload("photo.png", PNG, conversation_id=conv)
    assert response.status_code == 201 and response.json()["status"] == "ready"
    assert response.json()["kind"] == "image"
    result = await _ask(client, conv, "What is in the photo?")
    system = scripted.requests[-1].messages[0].content
    assert "cannot see images" in system and "photo.png" in system
    assert result["sources"]["sources"][0]["mode"] == "unsupported"


# ------------------------------------------------------------------ dedup


async def test_same_bytes_are_stored_once(
    client: Client, app: Any, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    data = b"Photosynthesis turns light into sugar.\n"
    first = (await upload("a.txt", data)).json()
    await wait_ready(client, first["id"])
    again = await upload("a-copy.txt", data)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == first["id"]
    conv = await _conversation(client)
    attached = await upload("a.txt", data, conversation_id=conv)
    assert attached.status_code == 201 and attached.json()["id"] != first["id"]
    state = await wait_ready(client, attached.json()["id"])
    assert state["chunk_count"] == 1  # copied from the twin, not parsed again
    # ... with its vectors, and every figure says so (it said 0 embedded before).
    original = await wait_ready(client, first["id"])
    assert original["embedded_count"] == original["chunk_count"] == 1
    for figure in ("pages", "pages_done", "chunk_count", "embedded_count", "tokens", "progress"):
        assert state[figure] == original[figure], figure
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        theirs = await upload("b.txt", data, c=bob)
        assert theirs.status_code == 201 and theirs.json()["id"] != first["id"]
        await wait_ready(bob, theirs.json()["id"])
    blobs = [p for p in feature.blobs.root.rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].name == first["sha256"]


# ------------------------------------------------------------------ status and waiting


class GatedEmbedder:
    """The real embedder behind a gate the test opens."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.gate = asyncio.Event()
        self.queries = 0

    async def embed(self, texts: list[str]) -> Any:
        if len(texts) == 1 and not texts[0].startswith(("doc.txt", "big.txt")):
            self.queries += 1
            return await self.inner.embed(texts)  # queries are never held
        await self.gate.wait()
        return await self.inner.embed(texts)


@pytest.fixture
async def gated(app: Any) -> GatedEmbedder:
    feature: KnowledgeFeature = app.state.features["knowledge"]
    wrapper = GatedEmbedder(feature.service.embedder)
    feature.service.ingestor.embedder = wrapper
    return wrapper


async def test_status_progression_is_stored_and_a_question_before_ready_is_told(
    client: Client,
    user: dict[str, Any],
    upload: Upload,
    gated: GatedEmbedder,
    scripted: ScriptedModel,
    feature: KnowledgeFeature,
) -> None:
    conv = await _conversation(client)
    response = await upload("doc.txt", b"The moon of Pluto is Charon.\n", conversation_id=conv)
    assert response.json()["status"] == "queued"
    file_id = response.json()["id"]
    seen = set()
    for _ in range(200):
        state = (await client.get(f"/api/files/{file_id}")).json()
        seen.add(state["status"])
        if state["status"] == "embedding":
            break
        await asyncio.sleep(0.02)
    assert state["status"] == "embedding" and state["chunk_count"] == 1
    # stored in the database, not only in this process
    assert (
        await _count(
            feature,
            "SELECT count(*) FROM knowledge_files WHERE id = :f AND status = 'embedding'",
            f=file_id,
        )
        == 1
    )
    started = asyncio.get_running_loop().time()
    result = await _ask(client, conv, "What is the moon of Pluto?")
    assert asyncio.get_running_loop().time() - started < 6  # waited, but boundedly
    system = scripted.requests[-1].messages[0].content
    assert "still being indexed" in system
    assert "Charon" in system  # keyword search already reaches its passages
    modes = [s["mode"] for s in result["sources"]["sources"]]
    assert "pending" in modes
    gated.gate.set()
    final = await wait_ready(client, file_id)
    assert final["status"] == "ready" and final["progress"] == 1.0
    assert seen <= {"queued", "parsing", "embedding"}


async def test_a_file_still_queued_is_reported_not_silently_skipped(
    client: Client,
    user: dict[str, Any],
    upload: Upload,
    scripted: ScriptedModel,
    feature: KnowledgeFeature,
) -> None:
    conv = await _conversation(client)
    await feature.service.ingestor.stop()  # nothing will process it
    response = await upload("late.txt", b"Nothing yet.\n", conversation_id=conv)
    result = await _ask(client, conv, "Summarize late.txt")
    system = scripted.requests[-1].messages[0].content
    assert "late.txt" in system and "not ready yet" in system
    assert result["sources"]["sources"][0]["status"] == "queued"
    assert (await client.get(f"/api/files/{response.json()['id']}")).json()["status"] == "queued"
    feature.service.ingestor._tasks = []


# ------------------------------------------------------------------ whole vs retrieved, citations


def _big_pdf() -> bytes:
    topics = ["glaciers", "volcanoes", "deserts", "reefs", "tundra", "savanna"]
    pages = []
    for i in range(18):
        topic = topics[i % len(topics)]
        body = " ".join(
            f"Paragraph {j} about {topic} on page {i + 1}: field notes and measurements."
            for j in range(14)
        )
        if i == 12:
            body += " The secret calibration constant of the spectrometer is 4.2817."
        pages.append(body)
    return pdf_bytes(pages)


async def test_small_files_go_whole_large_ones_are_retrieved_with_citations(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    conv = await _conversation(client)
    small = (await upload("memo.md", b"# Memo\n\nLunch is at noon.\n", conversation_id=conv)).json()
    big = (await upload("survey.pdf", _big_pdf(), conversation_id=conv)).json()
    await wait_ready(client, small["id"])
    state = await wait_ready(client, big["id"])
    assert state["tokens"] > 3000 and state["pages"] == 18
    result = await _ask(client, conv, "What is the calibration constant of the spectrometer?")
    sources = result["sources"]["sources"]
    whole = [s for s in sources if s["mode"] == "whole"]
    retrieved = [s for s in sources if s["mode"] == "retrieved"]
    assert [s["filename"] for s in whole] == ["memo.md"]
    assert retrieved and all(s["filename"] == "survey.pdf" for s in retrieved)
    top = next(s for s in retrieved if "4.2817" in s["snippet"] or s["page"] == 13)
    assert top["page"] == 13 and top["chunk_id"] and top["ref"] >= 1
    system = scripted.requests[-1].messages[0].content
    assert f"[{top['ref']}] survey.pdf — page 13" in system
    assert "Lunch is at noon." in system and "<untrusted-data>" in system
    # the citation viewer's passage
    passage = (await client.get(f"/api/files/{big['id']}/chunks/{top['chunk_id']}")).json()
    assert "4.2817" in passage["text"] and passage["page"] == 13 and passage["pages"] == 18
    # stored on the answer
    view = (await client.get(f"/api/conversations/{conv}")).json()
    assert view["messages"][-1]["sources"] == sources
    # attachments are tied to the question they came with
    files = (await client.get("/api/files", params={"conversation_id": conv})).json()["items"]
    assert {f["message_id"] for f in files} == {view["messages"][-2]["id"]}


async def test_search_knowledge_tool_and_collections(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    collection = (await client.post("/api/collections", json={"name": " Field  guides "})).json()
    assert collection["name"] == "Field guides"
    data = b"# Owls\n\nThe barn owl hunts by sound in total darkness.\n"
    file = (await upload("owls.md", data, collection_id=collection["id"])).json()
    await wait_ready(client, file["id"])
    conv = await _conversation(client)
    attached = await client.put(f"/api/conversations/{conv}/collections/{collection['id']}")
    assert attached.status_code == 204
    knowledge = (await client.get(f"/api/conversations/{conv}/knowledge")).json()
    assert [c["id"] for c in knowledge["collections"]] == [collection["id"]]
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("c1", "search_knowledge", '{"query": "how owls hunt"}')]),
        "Owls hunt by sound [1].",
    )
    result = await _ask(client, conv, "How do barn owls hunt?")
    tool = next(d for n, d in result["events"] if n == "tool_result")
    assert "barn owl hunts by sound" in tool["output"] and "owls.md" in tool["output"]
    assert result["sources"]["sources"][0]["filename"] == "owls.md"  # and as context
    assert "[2] owls.md — Owls" in tool["output"]  # numbering continues after the context's
    stored = dict(result["events"])["done"]["message"]["sources"]
    assert [s["ref"] for s in stored] == [1, 2] and stored[1]["chunk_id"]
    listed = (await client.get("/api/collections")).json()["items"]
    assert listed[0]["file_count"] == 1
    assert (
        await client.delete(f"/api/conversations/{conv}/collections/{collection['id']}")
    ).status_code == 204
    assert (await client.delete(f"/api/collections/{collection['id']}")).status_code == 204
    assert (await client.get(f"/api/files/{file['id']}")).status_code == 404


async def test_hybrid_finds_what_each_method_alone_misses(
    client: Client, user: dict[str, Any], upload: Upload
) -> None:
    doc = (
        "# Garage\n\nCar servicing: change the engine oil and the filters every 10,000 km.\n\n"
        "# Parts\n\nPart number QX7781 is the left door hinge.\n\n"
        "# Kitchen\n\nBake the bread at 220 degrees for forty minutes.\n\n"
        "# Garden\n\nWater the tomatoes early in the morning.\n"
    )
    file = (await upload("house.md", doc.encode())).json()
    await wait_ready(client, file["id"])
    query = "automobile upkeep QX7781"

    async def top(mode: str, n: int = 2) -> list[str]:
        body = {"query": query, "mode": mode, "limit": n}
        items = (await client.post("/api/knowledge/search", json=body)).json()["items"]
        return [i["section"] for i in items]

    assert await top("keyword", 5) == ["Parts"]  # no shared word with the car passage
    assert "Garage" in await top("dense")
    assert set(await top("hybrid")) == {"Garage", "Parts"}


# ------------------------------------------------------------------ delete


async def test_delete_removes_chunks_vectors_and_bytes(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    file = (await upload("gone.txt", b"Axolotls regrow their limbs.\n")).json()
    await wait_ready(client, file["id"])
    hits = (await client.post("/api/knowledge/search", json={"query": "axolotl"})).json()
    assert hits["items"]
    assert (await client.delete(f"/api/files/{file['id']}")).status_code == 204
    assert await _count(feature, "SELECT count(*) FROM knowledge_chunks") == 0
    if feature.service.index.backend == "pgvector":
        assert await _count(feature, "SELECT count(*) FROM knowledge_vectors") == 0
    if feature.service.ingestor.db.dialect == "sqlite":
        matches = "SELECT count(*) FROM knowledge_fts WHERE knowledge_fts MATCH 'axolotls'"
        assert await _count(feature, matches) == 0
    assert not feature.blobs.exists(file["sha256"])
    for mode in ("keyword", "dense", "hybrid"):
        body = {"query": "axolotl limbs", "mode": mode}
        assert (await client.post("/api/knowledge/search", json=body)).json()["items"] == []
    assert (await client.get(f"/api/files/{file['id']}")).status_code == 404


async def test_changing_the_embedding_model_reindexes(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    file = (await upload("r.txt", b"Quartz is a mineral.\n\nBasalt is a rock.\n")).json()
    await wait_ready(client, file["id"])

    class Other:
        name = "other-model"
        dim = 8

        async def embed(self, texts: list[str]) -> Any:
            return np.eye(8, dtype=np.float32)[[len(t) % 8 for t in texts]]

    feature.service.ingestor.embedder = Other()
    assert await feature.service.ingestor.reembed() == 1
    models = await _count(
        feature,
        "SELECT count(*) FROM knowledge_chunks WHERE embed_model = 'other-model'",
    )
    assert models == (await client.get(f"/api/files/{file['id']}")).json()["chunk_count"]
    state = (await client.get(f"/api/files/{file['id']}")).json()
    assert state["status"] == "ready"


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("empty.txt", b"", 422, "empty_file"),
        ("locked.pdf", "locked", 422, "encrypted_file"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << >> trailer garbage", 422, "corrupt_file"),
        ("long.pdf", "long", 413, "too_many_pages"),
        ("bomb.docx", "bomb", 413, "zip_bomb"),
        ("huge.txt", b"a" * (1024 * 1024 + 10), 413, "file_too_large"),
        ("fake.pdf", b"hello, I am text", 415, "content_mismatch"),
        ("real.txt", b"%PDF-1.4\n" + b"0" * 64, 415, "content_mismatch"),
        ("tool.exe", b"MZ\x90\x00" + b"\x00\xff" * 200, 415, "unsupported_type"),
        ("bad.json", b'{"a": [1, 2', 422, "corrupt_file"),
    ],
)
async def test_bad_uploads_get_clear_problems(
    client: Client,
    user: dict[str, Any],
    upload: Upload,
    feature: KnowledgeFeature,
    name: str,
    data: Any,
    status: int,
    code: str,
) -> None:
    payload = (
        {
            "locked": lambda: pdf_bytes(["secret"], password="pw"),
            "long": lambda: pdf_bytes(["p"] * 21),
            "bomb": lambda: zip_bomb_docx(100 * 1024 * 1024),
        }[data]()
        if isinstance(data, str)
        else data
    )
    response = await upload(name, payload)
    assert response.status_code == status, response.text
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["code"] == code and body["status"] == status and body["detail"]
    assert (await client.get("/api/files")).json()["items"] == []
    leftovers = [p for p in feature.blobs.root.rglob("*") if p.is_file()]
    assert leftovers == []


async def test_bodies_over_the_upload_limit_are_refused_before_reading(
    client: Client, user: dict[str, Any], upload: Upload
) -> None:
    response = await upload("big.txt", b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["code"] in {"body_too_large", "file_too_large"}


async def test_files_that_fail_while_parsing_say_why(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    conv = await _conversation(client)
    scan = (await upload("scan.pdf", scanned_pdf_bytes(2), conversation_id=conv)).json()
    state = await wait_ready(client, scan["id"])
    assert state["status"] == "failed" and state["error_code"] == "no_text_layer"
    assert "scanned" in state["error"]
    import io
    import zipfile

    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("word/document.xml", "<not-xml")
    bad = (await upload("bad.docx", broken.getvalue(), conversation_id=conv)).json()
    state = await wait_ready(client, bad["id"])
    assert state["status"] == "failed" and state["error_code"] == "corrupt_file"
    result = await _ask(client, conv, "What do my files say?")
    system = scripted.requests[-1].messages[0].content
    assert "scan.pdf" in system and "could not be read" in system
    assert {s["mode"] for s in result["sources"]["sources"]} == {"failed"}


async def test_names_are_sanitized_and_downloads_cannot_run(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature, tmp_path: Path
) -> None:
    html = b"<h1>Hi</h1><script>alert(document.cookie)</script><p>Body text.</p>"
    response = await upload("../../evil\x1b\n<b>.html", html)
    assert response.status_code == 201
    file = response.json()
    name = file["filename"]
    assert name.endswith("<b>.html") and "evil" in name  # the client may percent-encode
    assert "/" not in name and ".." not in name and all(ord(ch) >= 32 for ch in name)
    assert not (tmp_path / "evil.html").exists()
    stored = [p for p in feature.blobs.root.rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [file["sha256"]]
    await wait_ready(client, file["id"])
    passages = (await client.post("/api/knowledge/search", json={"query": "body text"})).json()
    assert all("alert" not in p["text"] and "<script" not in p["text"] for p in passages["items"])
    download = await client.get(f"/api/files/{file['id']}/content")
    assert download.status_code == 200 and download.content == html
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers.get_list("content-security-policy")[0]


# ------------------------------------------------------------------ isolation


async def test_another_user_cannot_see_use_or_delete_files(
    client: Client, app: Any, user: dict[str, Any], upload: Upload
) -> None:
    conv = await _conversation(client)
    collection = (await client.post("/api/collections", json={"name": "private"})).json()
    file = (await upload("secret.txt", b"The vault code is 7391.\n", conversation_id=conv)).json()
    await wait_ready(client, file["id"])
    chunk = (await client.post("/api/knowledge/search", json={"query": "vault"})).json()["items"][0]
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        for path in (
            f"/api/files/{file['id']}",
            f"/api/files/{file['id']}/content",
            f"/api/files/{file['id']}/chunks/{chunk['chunk_id']}",
            f"/api/collections/{collection['id']}",
            f"/api/conversations/{conv}/knowledge",
        ):
            assert (await bob.get(path)).status_code == 404, path
        assert (await bob.delete(f"/api/files/{file['id']}")).status_code == 404
        assert (await bob.get("/api/files")).json()["items"] == []
        assert (await bob.get("/api/collections")).json()["items"] == []
        for mode in ("keyword", "dense", "hybrid"):
            body = {"query": "vault code", "mode": mode}
            assert (await bob.post("/api/knowledge/search", json=body)).json()["items"] == []
        body = {"query": "vault", "file_ids": [file["id"]]}
        assert (await bob.post("/api/knowledge/search", json=body)).json()["items"] == []
        refused = await upload("x.txt", b"x", c=bob, conversation_id=conv)
        assert refused.status_code == 404
        refused = await upload("x.txt", b"x", c=bob, collection_id=collection["id"])
        assert refused.status_code == 404
        bob_conv = await _conversation(bob)
        put = await bob.put(f"/api/conversations/{bob_conv}/collections/{collection['id']}")
        assert put.status_code == 404
        # a chunk id of alice's under bob's own file is not found either
        own = (await upload("mine.txt", b"Bob's notes.\n", c=bob)).json()
        await wait_ready(bob, own["id"])
        assert (
            await bob.get(f"/api/files/{own['id']}/chunks/{chunk['chunk_id']}")
        ).status_code == 404
    assert (await client.get(f"/api/files/{file['id']}")).status_code == 200


async def test_a_demo_model_skims_one_short_passage(
    client: Client, user: dict[str, Any], upload: Upload, scripted: ScriptedModel
) -> None:
    """The starter model reads ~130 tokens/s on a busy core and waits for the whole
    prompt before its first token: it gets one passage, cut to a small budget."""
    from dataclasses import replace

    from parley.turns.runner import DEMO_CONTEXT_TOKENS

    scripted.info = replace(scripted.info, demo=True, context_window=4096)
    conv = await _conversation(client)
    big = (await upload("survey.pdf", _big_pdf(), conversation_id=conv)).json()
    await wait_ready(client, big["id"])
    result = await _ask(client, conv, "What is the calibration constant of the spectrometer?")
    retrieved = [s for s in result["sources"]["sources"] if s["mode"] == "retrieved"]
    assert len(retrieved) == 1
    system = scripted.requests[0].messages[0].content
    passages = system.split("<untrusted-data>", 1)[1].split("</untrusted-data>", 1)[0]
    assert len(passages) // 4 <= DEMO_CONTEXT_TOKENS and "…" in passages
    assert "calibration constant of the spectrometer is 4.2817" in passages  # the part asked
