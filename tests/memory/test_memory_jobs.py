"""Automatic extraction and summaries are durable jobs: extraction runs at once in
the worker that ran the turn (its "Memory updated" event still reaches the open
answer) and is on record; one that fails there is retried by the queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from apihelpers import Client
from parley.errors import ProviderUnavailable
from parley.jobs.runner import Jobs
from parley.jobs.tables import Job
from parley.providers.scripted import Reply, ScriptedModel

Say = Callable[..., Awaitable[dict[str, Any]]]  # the ``say`` fixture (tests/memory/conftest.py)


async def _jobs(app: Any, kind: str) -> list[Job]:
    db = app.state.services.require(Jobs).queue.db
    async with db.session() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind))).all())


async def test_extraction_is_a_job_run_by_the_turns_worker(
    app: Any, client: Client, user: dict[str, Any], say: Say, extraction: list[dict[str, Any]]
) -> None:
    extraction.append({"action": "add", "fact": "I keep bees in my garden", "memory": 0})
    turn = await say("I keep bees in my garden, by the way.")
    updated = [data for name, data in turn["events"] if name == "memory_updated"]
    assert updated and updated[0]["memories"][0]["title"] == "I keep bees in my garden."
    [job] = await _jobs(app, "memory.extract")
    jobs: Jobs = app.state.services.require(Jobs)
    assert (job.state, job.attempts, job.worker) == ("done", 1, jobs.worker)
    assert job.user_id == user["id"]
    assert job.payload == {}  # done: the user's words are not kept in the queue


async def test_an_extraction_that_fails_is_retried_by_the_queue(
    app: Any,
    client: Client,
    user: dict[str, Any],
    say: Say,
    memory_model: ScriptedModel,
    extraction: list[dict[str, Any]],
) -> None:
    jobs: Jobs = app.state.services.require(Jobs)
    jobs.queue.backoff_base_s = jobs.queue.backoff_max_s = 0.01
    memory_model.enqueue(Reply(error=ProviderUnavailable("down for a moment")))  # first call
    extraction.append({"action": "add", "fact": "I keep bees in my garden", "memory": 0})
    await say("I keep bees in my garden, by the way.")
    await jobs.drain(["memory.extract"], 30)
    [job] = await _jobs(app, "memory.extract")
    assert (job.state, job.attempts) == ("done", 2)
    assert job.last_error is not None and "down for a moment" in job.last_error
    memories = (await client.get("/api/memories")).json()["items"]
    assert [m["text"] for m in memories] == ["I keep bees in my garden."]
