"""Deleting a conversation or an account removes its bytes, vectors, outputs and kernels.

Two users share one file's bytes (same digest); the one deleted also has
attachments in two conversations, a library file, a collection, code outputs
and memories. Deleting a conversation removes its attachments (records,
passages, vectors, unshared bytes), its outputs and its kernel; deleting the
account then removes everything else. The data directory is walked for any file
whose name or content belongs to the deleted user: none may remain, while the
other user's copy of the shared bytes and their own data stay.

The crash test commits deletions without running their after-commit step (as if
the process died right after the commit) and starts the app again: the
deletion journal finishes the job at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from apihelpers import Client, MakeApp, make_client, parse_sse, signup
from parley.knowledge.blobs import BlobStore
from parley.knowledge.tables import (
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeConversationCollection,
    KnowledgeFile,
)
from parley.memory.tables import Memory
from parley.sandbox.outputs import OutputStore
from parley.sandbox.tables import SandboxOutput
from parley.storage import Database
from parley.storage.tables import Conversation, Message, utcnow
from parley.userdata import conversations as conversation_deletion
from parley.userdata import service as userdata_service
from parley.userdata.journal import DeletionJournal

SECRET = "bea-secret-7c41"  # in every byte the deleted user stores, and nowhere else
SHARED = b"Linseed oil, tung oil and wax: the finishes both users keep.\n"
SHARED_SHA = hashlib.sha256(SHARED).hexdigest()


def _doc(label: str) -> bytes:
    return (
        f"# {label}\n\n{SECRET} {label}: beeswax over shellac, thinned with turpentine.\n".encode()
    )


async def _upload(
    client: Client,
    name: str,
    data: bytes,
    *,
    conversation_id: str | None = None,
    collection_id: str | None = None,
) -> dict[str, Any]:
    form = {
        k: v
        for k, v in (("conversation_id", conversation_id), ("collection_id", collection_id))
        if v
    }
    response = await client.post(
        "/api/files", files={"file": (name, data, "text/markdown")}, data=form
    )
    assert response.status_code in (200, 201), response.text
    file: dict[str, Any] = response.json()
    return file


async def _wait_ingested(client: Client, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        files: list[dict[str, Any]] = (await client.get("/api/files")).json()["items"]
        if all(f["status"] in ("ready", "failed") for f in files):
            return files
        assert time.monotonic() < deadline, files
        await asyncio.sleep(0.05)


async def _chat(client: Client, conversation_id: str, content: str) -> None:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"content": content}
    )
    assert response.status_code == 200, response.text
    assert "start" in dict(parse_sse(response.text))


def _walk(root: Path) -> Iterator[Path]:
    for here, _, names in os.walk(root):
        for name in names:
            yield Path(here) / name


def _leftovers(data_dir: Path, marks: list[str]) -> list[str]:
    """Files under the data dir whose path or content names a deleted thing."""
    found = []
    for path in _walk(data_dir):
        rel = str(path.relative_to(data_dir))
        if any(m in rel for m in marks):
            found.append(rel)
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue
        if any(m.encode() in content for m in marks):
            found.append(rel)
    return found


async def _count(db: Database, query: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(query) or 0)


async def _vectors(db: Database, user_id: str) -> int:
    """A user's stored vectors: float32 BLOBs on the passages, and pgvector's rows
    where PostgreSQL has the extension (they go with their passage by cascade)."""
    async with db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(KnowledgeChunk)
            .where(KnowledgeChunk.user_id == user_id, KnowledgeChunk.embedding.is_not(None))
        )
        if db.dialect == "postgresql" and await session.scalar(
            text("SELECT to_regclass('knowledge_vectors')")
        ):
            sql = "SELECT count(*) FROM knowledge_vectors WHERE user_id = :u"
            count = (count or 0) + (await session.scalar(text(sql), {"u": user_id}) or 0)
        return int(count or 0)


async def _fts_hits(db: Database, word: str) -> int:
    """Keyword-index entries that still match ``word`` (SQLite FTS5, PostgreSQL tsvector)."""
    async with db.session() as session:
        if db.dialect == "postgresql":
            sql = (
                "SELECT count(*) FROM knowledge_chunks"
                " WHERE search_tsv @@ plainto_tsquery('english', :w)"
            )
        else:
            sql = "SELECT count(*) FROM knowledge_fts WHERE knowledge_fts MATCH :w"
        return int(await session.scalar(text(sql), {"w": word}) or 0)


class KernelSpy:
    """Stands in for the sandbox manager's ``close_for`` (the real one is covered
    by the sandbox tests); records who was closed."""

    def __init__(self) -> None:
        self.closed: list[tuple[str, str | None]] = []

    async def close_for(self, user_id: str, conversation_id: str | None = None) -> int:
        self.closed.append((user_id, conversation_id))
        return 0


@pytest.fixture
def kernels(app: Any, monkeypatch: pytest.MonkeyPatch) -> KernelSpy:
    spy = KernelSpy()
    manager = app.state.features["sandbox"].manager
    assert manager is not None
    monkeypatch.setattr(manager, "close_for", spy.close_for)
    return spy


async def _fill_bea(app: Any, bea: Client, bea_id: str) -> dict[str, Any]:
    """The account to delete: two chats with attachments (one shared with Ada), a
    library file, a collection linked to the first chat, outputs, memories."""
    first = (await bea.post("/api/conversations", json={"title": f"{SECRET} first"})).json()
    second = (await bea.post("/api/conversations", json={"title": "second"})).json()
    await _chat(bea, first["id"], f"{SECRET} how do I wax a chair?")
    attached = await _upload(bea, "wax.md", _doc("first-attachment"), conversation_id=first["id"])
    shared = await _upload(bea, "shared.md", SHARED, conversation_id=first["id"])
    kept = await _upload(bea, "later.md", _doc("second-attachment"), conversation_id=second["id"])
    library = await _upload(bea, "library.md", _doc("library"))
    collection = (await bea.post("/api/collections", json={"name": "Waxes"})).json()
    in_collection = await _upload(
        bea, "collected.md", _doc("collection"), collection_id=collection["id"]
    )
    linked = await bea.put(f"/api/conversations/{first['id']}/collections/{collection['id']}")
    assert linked.status_code == 204
    outputs: OutputStore = app.state.services.require(OutputStore)
    out_first = await outputs.save(bea_id, first["id"], "first.csv", f"{SECRET},1\n".encode())
    out_second = await outputs.save(bea_id, second["id"], "second.csv", f"{SECRET},2\n".encode())
    out_none = await outputs.save(bea_id, None, "loose.txt", f"{SECRET} loose".encode())
    db: Database = app.state.services.require(Database)
    async with db.session() as session:
        session.add_all(
            [
                Memory(
                    user_id=bea_id,
                    text="Prefers beeswax.",
                    source="auto",
                    status="active",
                    conversation_id=first["id"],
                ),
                Memory(
                    user_id=bea_id,
                    text=f"{SECRET} pending from the first chat",
                    source="auto",
                    status="pending",
                    conversation_id=first["id"],
                ),
            ]
        )
        await session.commit()
    files = await _wait_ingested(bea)
    assert {f["status"] for f in files} == {"ready"}, files
    return {
        "first": first["id"],
        "second": second["id"],
        "attached": attached,
        "shared": shared,
        "kept": kept,
        "library": library,
        "collection": collection["id"],
        "in_collection": in_collection,
        "outputs": (out_first, out_second, out_none),
    }


async def test_every_byte_of_a_deleted_conversation_and_account_goes(
    app: Any, client: Client, user: dict[str, Any], kernels: KernelSpy
) -> None:
    data_dir: Path = app.state.features["knowledge"].settings.data_dir
    blobs: BlobStore = app.state.features["knowledge"].blobs
    db: Database = app.state.services.require(Database)
    outputs: OutputStore = app.state.services.require(OutputStore)
    # Ada keeps her own copy of the shared bytes, a chat and an output.
    ada_conv = (await client.post("/api/conversations", json={"title": "Ada's"})).json()
    ada_file = await _upload(client, "mine.md", SHARED)
    ada_output = await outputs.save(user["id"], ada_conv["id"], "ada.csv", b"ada,1\n")

    async with make_client(app) as bea:
        bea_id = (await signup(bea, "bea@example.com"))["id"]
        bea_data = await _fill_bea(app, bea, bea_id)
        first, second = bea_data["first"], bea_data["second"]
        attached_sha = bea_data["attached"]["sha256"]
        assert await _count(db, select(func.count()).select_from(KnowledgeChunk)) > 0
        assert await _fts_hits(db, SECRET.split("-")[-1]) > 0
        assert await _vectors(db, bea_id) > 0
        knowledge = app.state.features["knowledge"].service
        memory = app.state.features["memory"].service
        found = await bea.post("/api/knowledge/search", json={"query": "beeswax", "mode": "dense"})
        assert found.status_code == 200 and found.json()["items"], found.text
        in_memory = knowledge.index.backend != "pgvector"  # pgvector searches in the database
        if in_memory:
            assert [key for key in knowledge.index._cache if key[0] == bea_id]
        await memory.snapshot(bea_id)
        assert bea_id in memory._snapshots
        first_output_dir = data_dir / "sandbox" / "outputs" / bea_id / first

        # -- the first conversation
        deleted = await bea.delete(f"/api/conversations/{first}")
        assert deleted.status_code == 204
        assert (await bea.get(f"/api/conversations/{first}")).status_code == 404
        assert (await bea.delete(f"/api/conversations/{first}")).status_code == 404
        assert kernels.closed == [(bea_id, first)]
        assert not blobs.exists(attached_sha)  # its own attachment's bytes
        assert blobs.exists(SHARED_SHA)  # Ada (and nobody else here) still has them
        assert not first_output_dir.exists()
        for gone in (bea_data["attached"], bea_data["shared"]):
            assert (await bea.get(f"/api/files/{gone['id']}")).status_code == 404
        async with db.session() as session:
            assert not (
                await session.scalars(
                    select(KnowledgeChunk.id).where(
                        KnowledgeChunk.file_id.in_(
                            [bea_data["attached"]["id"], bea_data["shared"]["id"]]
                        )
                    )
                )
            ).all()
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.conversation_id == first)
                )
                == 0
            )
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(SandboxOutput)
                    .where(SandboxOutput.conversation_id == first)
                )
                == 0
            )
            links = await session.scalar(
                select(func.count()).select_from(KnowledgeConversationCollection)
            )
            assert links == 0
            memories = (
                await session.execute(
                    select(Memory.text, Memory.conversation_id).where(Memory.user_id == bea_id)
                )
            ).all()
            assert ("Prefers beeswax.", None) in memories  # a saved memory stays, unlinked
            assert not [m for m in memories if SECRET in m[0] or m[1] == first]
        # the rest of the account is untouched
        for kept in ("kept", "library", "in_collection"):
            file = bea_data[kept]
            assert (await bea.get(f"/api/files/{file['id']}")).status_code == 200
            assert blobs.exists(file["sha256"])
        assert (await bea.get(f"/api/collections/{bea_data['collection']}")).status_code == 200
        assert (await bea.get(f"/api/conversations/{second}")).status_code == 200
        _, out_second, out_none = bea_data["outputs"]
        for out in (out_second, out_none):
            assert (await bea.get(f"/api/sandbox/outputs/{out.id}")).status_code == 200

        # -- the account
        gone = await bea.request("DELETE", "/api/me", json={"password": "correct horse"})
        assert gone.status_code == 204
        assert kernels.closed[-1] == (bea_id, None)

    marks = [SECRET, bea_id, first, second]
    assert _leftovers(data_dir, marks) == []
    assert not list(_walk(data_dir / "deletions"))  # every journal entry was completed
    for table in (
        Conversation,
        Message,
        KnowledgeFile,
        KnowledgeChunk,
        KnowledgeCollection,
        SandboxOutput,
        Memory,
    ):
        assert (
            await _count(db, select(func.count()).select_from(table).where(table.user_id == bea_id))
            == 0
        ), table.__tablename__
    assert await _vectors(db, bea_id) == 0
    assert await _fts_hits(db, SECRET.split("-")[-1]) == 0
    assert not [key for key in knowledge.index._cache if key[0] == bea_id]  # none, either way
    assert bea_id not in memory._snapshots

    # Ada's data is intact.
    content = await client.get(f"/api/files/{ada_file['id']}/content")
    assert content.status_code == 200 and content.content == SHARED
    assert (await client.get(f"/api/sandbox/outputs/{ada_output.id}")).status_code == 200
    assert (await client.get(f"/api/conversations/{ada_conv['id']}")).status_code == 200
    ada_chunks = select(func.count()).select_from(KnowledgeChunk)
    assert await _count(db, ada_chunks.where(KnowledgeChunk.user_id == user["id"])) > 0


async def test_an_admin_deleting_a_user_removes_every_byte_and_signs_them_out(
    app: Any, client: Client, user: dict[str, Any], kernels: KernelSpy
) -> None:
    """Admin → Users → Delete goes the same way as ``DELETE /api/me``."""
    data_dir: Path = app.state.features["knowledge"].settings.data_dir
    db: Database = app.state.services.require(Database)
    async with make_client(app) as bea:
        bea_id = (await signup(bea, "bea@example.com"))["id"]
        bea_data = await _fill_bea(app, bea, bea_id)
        unconfirmed = await client.request(
            "DELETE", f"/api/admin/users/{bea_id}", json={"confirm_email": "ada@example.com"}
        )
        assert unconfirmed.status_code == 422 and unconfirmed.json()["code"] == "confirm_email"
        assert (await bea.get("/api/auth/me")).status_code == 200  # nothing happened
        gone = await client.request(
            "DELETE", f"/api/admin/users/{bea_id}", json={"confirm_email": " Bea@Example.com "}
        )
        assert gone.status_code == 204, gone.text
        assert (await bea.get("/api/auth/me")).status_code == 401  # her browser is signed out
        assert kernels.closed[-1] == (bea_id, None)
    marks = [SECRET, bea_id, bea_data["first"], bea_data["second"]]
    assert _leftovers(data_dir, marks) == []
    for table in (Conversation, Message, KnowledgeFile, KnowledgeChunk, SandboxOutput, Memory):
        count = select(func.count()).select_from(table).where(table.user_id == bea_id)
        assert await _count(db, count) == 0, table.__tablename__
    assert await _vectors(db, bea_id) == 0
    users = (await client.get("/api/admin/users")).json()["items"]
    assert [u["email"] for u in users] == ["ada@example.com"]
    again = await client.request(
        "DELETE", f"/api/admin/users/{bea_id}", json={"confirm_email": "bea@example.com"}
    )
    assert again.status_code == 404


async def test_a_crash_after_the_commit_still_removes_the_bytes(
    app: Any,
    client: Client,
    user: dict[str, Any],
    make_app: MakeApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir: Path = app.state.features["knowledge"].settings.data_dir
    blobs: BlobStore = app.state.features["knowledge"].blobs
    outputs: OutputStore = app.state.services.require(OutputStore)
    await _upload(client, "mine.md", SHARED)
    async with make_client(app) as bea:
        bea_id = (await signup(bea, "bea@example.com"))["id"]
        conv = (await bea.post("/api/conversations", json={"title": "chat"})).json()["id"]
        attached = await _upload(bea, "wax.md", _doc("attachment"), conversation_id=conv)
        library = await _upload(bea, "library.md", _doc("library"))
        await _upload(bea, "shared.md", SHARED)
        in_chat = await outputs.save(bea_id, conv, "chat.csv", f"{SECRET},1\n".encode())
        loose = await outputs.save(bea_id, None, "loose.csv", f"{SECRET},2\n".encode())
        await _wait_ingested(bea)

        # The process "dies" right after each commit: no after-commit step runs.
        async def crash(work: Any) -> None:
            return None

        monkeypatch.setattr(conversation_deletion, "_run_after_commit", crash)
        monkeypatch.setattr(userdata_service, "_run_after_commit", crash)
        assert (await bea.delete(f"/api/conversations/{conv}")).status_code == 204
        gone = await bea.request("DELETE", "/api/me", json={"password": "correct horse"})
        assert gone.status_code == 204
        monkeypatch.undo()

    # The rows are gone, the bytes are not (yet): the journal says what is to go.
    assert blobs.exists(attached["sha256"]) and blobs.exists(library["sha256"])
    out_root = data_dir / "sandbox" / "outputs"
    assert (out_root / bea_id / conv / in_chat.id).is_file()
    assert (out_root / bea_id / "none" / loose.id).is_file()
    assert list(_walk(data_dir / "deletions"))

    async with make_app() as restarted:  # a restart (a second process would do the same)
        assert not blobs.exists(attached["sha256"])
        assert not blobs.exists(library["sha256"])
        assert blobs.exists(SHARED_SHA)  # Ada still has these bytes
        assert _leftovers(data_dir, [SECRET, bea_id]) == []
        assert not list(_walk(data_dir / "deletions"))
        async with make_client(restarted) as ada:
            login = await ada.post(
                "/api/auth/login", json={"email": "ada@example.com", "password": "correct horse"}
            )
            assert login.status_code == 200
            files = (await ada.get("/api/files")).json()["items"]
            assert [f["sha256"] for f in files] == [SHARED_SHA]


async def test_a_journal_entry_of_a_deletion_that_did_not_commit_keeps_the_bytes(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    """Replay removes only what no row points at: an entry left by a deletion
    whose transaction failed changes nothing."""
    knowledge = app.state.features["knowledge"].service
    sandbox = app.state.features["sandbox"].data
    outputs: OutputStore = app.state.services.require(OutputStore)
    conv = (await client.post("/api/conversations", json={"title": "chat"})).json()["id"]
    file = await _upload(client, "mine.md", SHARED, conversation_id=conv)
    out = await outputs.save(user["id"], conv, "a.csv", b"a,1\n")
    await knowledge.journal.record({"user_id": user["id"], "blobs": [file["sha256"]]})
    await sandbox.journal.record({"user_id": user["id"], "conversation_ids": None})
    assert await knowledge.replay_deletions() == 1
    assert await sandbox.replay() == 1
    assert knowledge.blobs.exists(file["sha256"])
    assert (await client.get(f"/api/sandbox/outputs/{out.id}")).status_code == 200
    assert (await client.get(f"/api/files/{file['id']}/content")).content == SHARED


async def test_expired_temporary_chats_go_with_their_attachments_and_outputs(
    app: Any, client: Client, user: dict[str, Any], kernels: KernelSpy
) -> None:
    blobs: BlobStore = app.state.features["knowledge"].blobs
    outputs: OutputStore = app.state.services.require(OutputStore)
    db: Database = app.state.services.require(Database)
    temp = (await client.post("/api/conversations", json={"temporary": True})).json()["id"]
    file = await _upload(client, "wax.md", _doc("temporary"), conversation_id=temp)
    out = await outputs.save(user["id"], temp, "t.csv", f"{SECRET},t\n".encode())
    async with db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == temp)
            .values(updated_at=utcnow() - timedelta(days=30))
        )
        await session.commit()
    assert await app.state.features["memory"].purge(db) == 1
    assert kernels.closed == [(user["id"], temp)]
    assert not blobs.exists(file["sha256"])
    assert (await client.get(f"/api/sandbox/outputs/{out.id}")).status_code == 404
    data_dir: Path = app.state.features["knowledge"].settings.data_dir
    assert _leftovers(data_dir, [SECRET, temp]) == []


def test_a_blob_put_back_after_the_check_is_kept(tmp_path: Path) -> None:
    """An upload of the same bytes that commits its record after a deletion checked
    for records moves its blob in place after that: the deletion keeps it."""
    store = BlobStore(tmp_path / "files")
    tmp, sha, _ = store.spool(io.BytesIO(SHARED), 1 << 20)
    store.commit(tmp, sha)
    checked = time.time() - 5  # the deletion looked for records before the upload
    assert store.delete(sha, unless_written_after=checked) is False
    assert store.exists(sha)
    assert store.delete(sha, unless_written_after=time.time() + 1) is True
    assert not store.exists(sha)


def test_the_journal_survives_and_replays(tmp_path: Path) -> None:
    journal = DeletionJournal(tmp_path / "j")
    seen: list[dict[str, Any]] = []

    async def apply(entry: dict[str, Any]) -> None:
        seen.append(entry)
        if entry.get("fail"):
            raise RuntimeError("not now")

    async def run() -> int:
        await journal.record({"n": 1})
        await journal.record({"n": 2, "fail": True})
        return await DeletionJournal(tmp_path / "j").replay(apply)  # "after a restart"

    assert asyncio.run(run()) == 1
    assert [e["n"] for e in seen] == [1, 2]
    assert len(list((tmp_path / "j").glob("*.json"))) == 1  # the failed one stays
