"""Uploaded files and code outputs through the whole app, with their bytes on the
local disk and in a real S3 bucket (SeaweedFS): upload, ingestion through the job
queue, download behind Parley's authorization, deletion that deletes the bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from s3helpers import s3_settings

from apihelpers import Client, make_client, signup
from parley.jobs.runner import Jobs
from parley.knowledge.feature import KnowledgeFeature
from parley.sandbox.feature import SandboxFeature
from parley.sandbox.outputs import OutputStore
from parley.storage.objects import ObjectStore

TEXT = "The lighthouse keeper logs the tide at dawn.\n\n" * 40


@pytest.fixture
def features() -> list[Any]:
    return [KnowledgeFeature, SandboxFeature]


@pytest.fixture
def overrides(
    kind: str, request: pytest.FixtureRequest, bucket: str, prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {"embedding_provider": "none", "sandbox_spare_kernels": 0}
    if kind == "s3":
        values.update(s3_settings(request.getfixturevalue("s3server"), bucket, prefix))
    return values


async def _ready(client: Client, file_id: str) -> dict[str, Any]:
    import asyncio

    for _ in range(600):
        body: dict[str, Any] = (await client.get(f"/api/files/{file_id}")).json()
        if body["status"] in ("ready", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(body)


async def test_a_file_is_stored_ingested_served_and_deleted(
    app: Any, client: Client, user: dict[str, Any], objects: ObjectStore, kind: str, tmp_path: Path
) -> None:
    feature: KnowledgeFeature = app.state.features["knowledge"]
    assert feature.blobs.remote == (kind == "s3")
    up = await client.post("/api/files", files={"file": ("notes.txt", TEXT.encode(), "text/plain")})
    assert up.status_code == 201, up.text
    file = up.json()
    done = await _ready(client, file["id"])
    assert done["status"] == "ready" and done["chunk_count"] > 0, done
    sha = file["sha256"]
    key = f"files/{sha[:2]}/{sha}"
    # the bytes are in the configured store (the test's view of the same bucket/folder)
    if kind == "s3":
        assert objects.get_bytes(key) == TEXT.encode()
    else:
        assert (app.state.settings.data_dir / key).read_bytes() == TEXT.encode()
    # the ingestion ran as a job, and is finished
    jobs: Jobs = app.state.services.require(Jobs)
    assert jobs.ran["knowledge.ingest"] == 1
    got = await client.get(f"/api/files/{file['id']}/content")
    assert got.status_code == 200 and got.content == TEXT.encode()
    # another user cannot read it
    async with make_client(app) as other:
        await signup(other, "mallory@example.com")
        assert (await other.get(f"/api/files/{file['id']}/content")).status_code == 404
    assert (await client.delete(f"/api/files/{file['id']}")).status_code == 204
    assert not feature.blobs.exists(sha)
    if kind == "s3":
        assert objects.stat(key) is None
    assert [p for p in feature.blobs.root.rglob("*") if p.is_file()] == []


async def test_a_code_output_is_stored_served_and_deleted_with_its_chat(
    app: Any, client: Client, user: dict[str, Any], objects: ObjectStore, kind: str
) -> None:
    store: OutputStore = app.state.services.require(OutputStore)
    conv = (await client.post("/api/conversations", json={"title": "charts"})).json()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000
    made = await store.save(user["id"], conv["id"], "chart.png", png)
    got = await client.get(made.url)
    assert got.status_code == 200, got.text
    assert got.content == png and got.headers["content-type"] == "image/png"
    assert got.headers["content-security-policy"].startswith("sandbox")
    async with make_client(app) as other:
        await signup(other, "mallory@example.com")
        assert (await other.get(made.url)).status_code == 404
    stored = [i.key for i in store.objects.list()]
    assert len(stored) == 1 and stored[0].endswith(made.id)
    assert (await client.delete(f"/api/conversations/{conv['id']}")).status_code == 204
    assert list(store.objects.list()) == []
    assert (await client.get(made.url)).status_code == 404
