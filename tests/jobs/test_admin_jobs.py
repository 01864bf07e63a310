"""Admin > Jobs over HTTP: dead letters listed with their error, retried, discarded;
the storage settings shown without the secret; nobody else gets in."""

from __future__ import annotations

from typing import Any

import pytest

from apihelpers import Client, make_client, signup
from parley.jobs.queue import Claimed
from parley.jobs.runner import Jobs


@pytest.fixture
def features() -> list[Any]:
    return []


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {
        "jobs_poll_s": 0.02,
        "jobs_backoff_base_s": 0.01,
        "jobs_backoff_max_s": 0.02,
        "storage_backend": "s3",
        "s3_bucket": "files",
        "s3_endpoint_url": "http://127.0.0.1:9",
        "s3_access_key_id": "AKIDPARLEY",
        "s3_secret_access_key": "very-secret-value",
    }


async def test_dead_letters_are_listed_retried_and_discarded(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    jobs: Jobs = app.state.services.require(Jobs)
    healed = {"now": False}

    async def export(job: Claimed) -> None:
        if not healed["now"]:
            raise RuntimeError("disk full")

    jobs.handle("test.export", export, max_attempts=2)
    first = await jobs.enqueue("test.export", {"n": 1}, user_id=user["id"])
    second = await jobs.enqueue("test.export", {"n": 2})
    await jobs.drain(["test.export"], 20)

    listed = await client.get("/api/admin/jobs", params={"state": "dead"})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["counts"]["dead"] == 2 and body["runs_here"] is True
    assert {j["id"] for j in body["items"]} == {first, second}
    dead = next(j for j in body["items"] if j["id"] == first)
    assert dead["last_error"] == "RuntimeError: disk full"
    assert (dead["attempts"], dead["max_attempts"], dead["user_id"]) == (2, 2, user["id"])

    healed["now"] = True
    retried = await client.post(f"/api/admin/jobs/{first}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    await jobs.drain(["test.export"], 20)
    assert (await jobs.queue.get(first)).state == "done"  # type: ignore[union-attr]
    assert (await client.post(f"/api/admin/jobs/{first}/retry")).status_code == 404

    assert (await client.delete(f"/api/admin/jobs/{second}")).status_code == 204
    assert await jobs.queue.get(second) is None
    assert (await client.delete(f"/api/admin/jobs/{second}")).status_code == 404
    counts = (await client.get("/api/admin/jobs")).json()["counts"]
    assert counts == {"queued": 0, "running": 0, "done": 1, "dead": 0}


async def test_storage_settings_are_shown_without_the_secret(
    client: Client, user: dict[str, Any]
) -> None:
    got = await client.get("/api/admin/storage")
    assert got.status_code == 200
    body = got.json()
    assert body["backend"] == "s3" and body["bucket"] == "files"
    assert body["access_key_id"] == "AKIDPARLEY" and body["secret_set"] is True
    assert "very-secret-value" not in got.text


async def test_only_admins_see_jobs(app: Any, client: Client, user: dict[str, Any]) -> None:
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        assert (await bob.get("/api/admin/jobs")).status_code == 403
        assert (await bob.get("/api/admin/storage")).status_code == 403
        assert (await bob.post("/api/admin/jobs/x/retry")).status_code == 403
        assert (await bob.delete("/api/admin/jobs/x")).status_code == 403


async def test_a_deleted_account_takes_its_jobs_and_done_jobs_keep_no_words(app: Any) -> None:
    """A job's payload can hold a user's words (memory extraction carries the
    question): a done job keeps none, and deleting the account deletes its jobs,
    waiting and dead letters too."""
    jobs: Jobs = app.state.services.require(Jobs)

    async def fail(job: Claimed) -> None:
        raise RuntimeError("no")

    async def work(job: Claimed) -> None:
        return None

    jobs.handle("test.fail", fail, max_attempts=1)
    jobs.handle("test.work", work)
    async with make_client(app) as admin, make_client(app) as leaver:
        await signup(admin, "admin@example.com")
        who = await signup(leaver, "leaver@example.com")
        done = await jobs.enqueue("test.work", {"query": "my secret"}, user_id=who["id"])
        dead = await jobs.enqueue("test.fail", {"query": "my secret"}, user_id=who["id"])
        await jobs.drain(["test.work", "test.fail"], 20)
        assert (await jobs.queue.get(done)).payload == {}  # type: ignore[union-attr]
        assert (await jobs.queue.get(dead)).state == "dead"  # type: ignore[union-attr]
        waiting = await jobs.enqueue("test.work", {"query": "my secret"}, user_id=who["id"])
        theirs = await jobs.enqueue("test.work", {"n": 1}, user_id=None)
        gone = await leaver.request("DELETE", "/api/me", json={"password": "correct horse"})
        assert gone.status_code == 204
        for job_id in (done, dead, waiting):
            assert await jobs.queue.get(job_id) is None  # type: ignore[arg-type]
        assert await jobs.queue.get(theirs) is not None  # type: ignore[arg-type]
