"""Admin > Models: GGUF downloads against a local fake of Hugging Face's file URLs
(``tests/fakehf.py``): progress, resume after a cut and after a restart, checksum
failure, cancel, the disk-space refusal, and choosing a download as the embedded
model (a tiny real GGUF that then answers through the API)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apihelpers import Client, MakeApp, MakeSettings, make_client, signup
from fakehf import FakeHuggingFace
from parley.config import Settings
from parley.instance import model_downloads
from parley.providers.testing import write_tiny_gguf

REPO = "acme/Tiny-Chat-GGUF"
FILE = "tiny-chat-q4_k_m.gguf"
DATA = os.urandom(3 * 1024 * 1024 + 123)
ROUTE = "/api/admin/local-models"


@pytest.fixture
def hf() -> Iterator[FakeHuggingFace]:
    with FakeHuggingFace({f"{REPO}/{FILE}": DATA}) as server:
        yield server


@pytest.fixture
def overrides(hf: FakeHuggingFace) -> dict[str, Any]:
    return {"hf_endpoint": hf.endpoint}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_downloads, "RETRY_PAUSE_S", 0.01)


async def entry(client: Client, file: str = FILE) -> dict[str, Any] | None:
    response = await client.get(ROUTE)
    assert response.status_code == 200, response.text
    for item in response.json()["files"]:
        if item["file"] == file:
            return dict(item)
    return None


async def wait_status(client: Client, status: str, file: str = FILE) -> dict[str, Any]:
    for _ in range(400):
        item = await entry(client, file)
        if item is not None and item["status"] == status:
            return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"{file} never reached {status}: {await entry(client, file)}")


def models_dir(settings: Settings) -> Path:
    return settings.data_dir / "models"


async def start(client: Client, repo: str = REPO, file: str = FILE) -> Any:
    return await client.post(f"{ROUTE}/downloads", json={"repo": repo, "file": file})


async def test_progress_is_polled_until_the_verified_file_is_in_place(
    client: Client, user: dict[str, Any], hf: FakeHuggingFace, settings: Settings
) -> None:
    listing = (await client.get(ROUTE)).json()
    assert len(listing["curated"]) >= 4 and all(c["licence"] for c in listing["curated"])
    assert listing["files"] == [] and listing["in_use"] is None

    hf.hold_after = 1024 * 1024
    response = await start(client)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    assert response.json()["total_bytes"] == len(DATA)  # known before a byte arrives
    assert await asyncio.to_thread(hf.wait_held)  # the loop keeps downloading meanwhile
    await asyncio.sleep(0.3)
    mid = await entry(client)
    assert mid is not None and mid["status"] == "running"
    assert 0 < mid["done_bytes"] < len(DATA) and mid["total_bytes"] == len(DATA)
    assert mid["rate"] > 0
    again = await start(client)
    assert again.status_code == 409 and again.json()["code"] == "download_running"

    hf.release()
    done = await wait_status(client, "done")
    assert done["verified"] is True and done["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert done["done_bytes"] == done["total_bytes"] == len(DATA)
    folder = models_dir(settings)
    assert (folder / FILE).read_bytes() == DATA
    assert not (folder / f"{FILE}.part").exists()
    # the resolve URL was asked about first (HEAD, redirect), then the CDN served it
    assert hf.requests[0][:2] == ("HEAD", f"/{REPO}/resolve/main/{FILE}")
    assert ("GET", f"/{REPO}/resolve/main/{FILE}", None) in hf.requests
    twice = await start(client)
    assert twice.status_code == 409 and twice.json()["code"] == "download_exists"


async def test_a_cut_connection_resumes_with_a_range_request(
    client: Client, user: dict[str, Any], hf: FakeHuggingFace, settings: Settings
) -> None:
    hf.cut_after, hf.cuts = 1_500_000, 1
    assert (await start(client)).status_code == 202
    done = await wait_status(client, "done")
    assert done["verified"] is True
    assert (models_dir(settings) / FILE).read_bytes() == DATA
    ranges = [r for method, path, r in hf.requests if path.startswith("/cdn/") and r]
    assert len(ranges) == 1
    resumed_from = int(ranges[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= 1_500_000  # continued, not started over


async def test_an_interrupted_download_survives_a_restart_and_resumes(
    make_app: MakeApp, hf: FakeHuggingFace, settings: Settings
) -> None:
    hf.cut_after, hf.cuts = 700_000, model_downloads.RETRIES + 1
    async with make_app(settings) as app, make_client(app) as client:
        await signup(client, "admin@example.com")
        assert (await start(client)).status_code == 202
        stopped = await wait_status(client, "interrupted")
        assert "Resume" in stopped["error"] and 0 < stopped["done_bytes"] < len(DATA)
    part = models_dir(settings) / f"{FILE}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)

    async with make_app(settings) as app, make_client(app) as client:  # a restart
        await client.post(
            "/api/auth/login", json={"email": "admin@example.com", "password": "correct horse"}
        )
        found = await entry(client)
        assert found is not None and found["status"] == "interrupted"
        assert found["done_bytes"] == kept and found["repo"] == REPO
        resumed = await client.post(f"{ROUTE}/downloads/{FILE}/resume")
        assert resumed.status_code == 202, resumed.text
        done = await wait_status(client, "done")
        assert done["verified"] is True
    assert (models_dir(settings) / FILE).read_bytes() == DATA
    assert ("GET", f"/cdn/{hashlib.sha256(DATA).hexdigest()}", f"bytes={kept}-") in hf.requests


async def test_a_checksum_mismatch_deletes_the_file_with_a_clear_error(
    client: Client, user: dict[str, Any], hf: FakeHuggingFace, settings: Settings
) -> None:
    hf.wrong_sha = True
    assert (await start(client)).status_code == 202
    failed = await wait_status(client, "failed")
    assert "Checksum mismatch" in failed["error"] and "deleted" in failed["error"]
    folder = models_dir(settings)
    assert not (folder / FILE).exists() and not (folder / f"{FILE}.part").exists()
    dismissed = await client.delete(f"{ROUTE}/downloads/{FILE}")
    assert dismissed.status_code == 204
    assert await entry(client) is None
    use = await client.post(f"{ROUTE}/use", json={"file": FILE})
    assert use.status_code == 404


async def test_a_direct_etag_is_checked_too(
    client: Client, user: dict[str, Any], hf: FakeHuggingFace
) -> None:
    hf.direct = True  # no CDN redirect: the checksum is the resolve answer's ETag
    assert (await start(client)).status_code == 202
    done = await wait_status(client, "done")
    assert done["verified"] is True


async def test_cancel_stops_the_transfer_and_deletes_the_bytes(
    client: Client, user: dict[str, Any], hf: FakeHuggingFace, settings: Settings
) -> None:
    hf.hold_after = 512 * 1024
    assert (await start(client)).status_code == 202
    assert await asyncio.to_thread(hf.wait_held)  # the loop keeps downloading meanwhile
    await asyncio.sleep(0.2)
    cancelled = await client.delete(f"{ROUTE}/downloads/{FILE}")
    assert cancelled.status_code == 204
    assert await entry(client) is None
    folder = models_dir(settings)
    assert not (folder / f"{FILE}.part").exists() and not (folder / FILE).exists()
    assert not (folder / f"{FILE}.json").exists()
    hf.release()
    await asyncio.sleep(0.3)
    assert not (folder / f"{FILE}.part").exists()  # nothing wrote after the cancel
    again = await client.delete(f"{ROUTE}/downloads/{FILE}")
    assert again.status_code == 404


async def test_too_little_disk_space_refuses_before_downloading(
    client: Client,
    user: dict[str, Any],
    hf: FakeHuggingFace,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shutil.disk_usage

    def nearly_full(path: Any) -> Any:
        usage = real(path)
        return type(usage)(usage.total, usage.total - 1000, 1000)

    monkeypatch.setattr(model_downloads.shutil, "disk_usage", nearly_full)
    response = await start(client)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "not_enough_space"
    assert "Not enough disk space" in body["detail"] and "3.1 MB" in body["detail"]
    assert [m for m, _p, _r in hf.requests] == ["HEAD"]  # not a byte fetched
    assert await entry(client) is None


async def test_unknown_files_and_bad_names_are_refused_plainly(
    client: Client, user: dict[str, Any], hf: FakeHuggingFace
) -> None:
    missing = await start(client, file="nope-q4.gguf")
    assert missing.status_code == 422 and missing.json()["code"] == "model_file_not_found"
    assert "Check the repo id and the file name" in missing.json()["detail"]
    for repo, file in (("../etc", FILE), (REPO, "../../parley.db"), (REPO, "model.bin")):
        bad = await start(client, repo=repo, file=file)
        assert bad.status_code == 422, (repo, file)
    assert not any(p.startswith("/..") for _m, p, _r in hf.requests)


async def test_only_admins_manage_models(app: Any, client: Client, user: dict[str, Any]) -> None:
    async with make_client(app) as other:
        await signup(other, "bob@example.com")
        assert (await other.get(ROUTE)).status_code == 403
        assert (
            await other.post(f"{ROUTE}/downloads", json={"repo": REPO, "file": FILE})
        ).status_code == 403
        assert (await other.post(f"{ROUTE}/use", json={"file": None})).status_code == 403


async def test_a_downloaded_model_becomes_the_embedded_model_and_answers(
    make_app: MakeApp, make_settings: MakeSettings, hf: FakeHuggingFace, tmp_path: Path
) -> None:
    weights = write_tiny_gguf(tmp_path / "t.gguf").read_bytes()
    tiny = hf.add(f"{REPO}/tiny-random-chat.gguf", weights)
    settings = make_settings(
        hf_endpoint=hf.endpoint,
        local_model_enabled=True,
        local_model_tools=False,
        local_context_window=512,
    )
    async with make_app(settings, extra_providers=[]) as app, make_client(app) as client:
        await signup(client, "admin@example.com")
        before = (await client.get("/api/models")).json()
        assert before["local"]["demo"] is True
        await client.patch("/api/admin/settings", json={"default_model": before["local"]["ref"]})

        assert (await start(client, file="tiny-random-chat.gguf")).status_code == 202
        done = await wait_status(client, "done", "tiny-random-chat.gguf")
        assert done["sha256"] == tiny.sha256 and done["in_use"] is False
        use = await client.post(f"{ROUTE}/use", json={"file": "tiny-random-chat.gguf"})
        assert use.status_code == 200, use.text
        ref = use.json()["ref"]
        assert ref == "local/tiny-random-chat"

        models = (await client.get("/api/models")).json()
        assert models["local"] == {"status": "not_loaded", "detail": "", "ref": ref, "demo": False}
        assert models["default"] == ref  # the admin's default followed the switch
        shown = {m["ref"]: m for m in models["items"]}
        assert shown[ref]["demo"] is False and "demo" not in shown[ref]["display_name"]
        listing = (await client.get(ROUTE)).json()
        assert listing["in_use"] == "tiny-random-chat.gguf"
        in_use = await client.delete(f"{ROUTE}/files/tiny-random-chat.gguf")
        assert in_use.status_code == 422 and in_use.json()["code"] == "model_in_use"

        # the new model answers (through the OpenAI-compatible relay: a short answer
        # with no system prompt, which a random-weight model gets through quickly)
        key = (await client.post("/api/keys", json={"name": "t"})).json()["key"]
        answer = await client.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": ref, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == ref
        assert answer.json()["usage"]["completion_tokens"] > 0
        assert (await client.get("/api/models")).json()["local"]["status"] == "ready"

    async with make_app(settings, extra_providers=[]) as app, make_client(app) as client:
        await client.post(
            "/api/auth/login", json={"email": "admin@example.com", "password": "correct horse"}
        )
        after = (await client.get("/api/models")).json()
        assert after["local"]["ref"] == ref and after["default"] == ref  # survives a restart
        back = await client.post(f"{ROUTE}/use", json={"file": None})
        assert back.status_code == 200 and back.json()["ref"] == before["local"]["ref"]
        assert (await client.delete(f"{ROUTE}/files/tiny-random-chat.gguf")).status_code == 204
