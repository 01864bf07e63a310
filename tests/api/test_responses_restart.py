"""Responses outlive the process: chains by ``previous_response_id`` and
``conversation`` continue after a restart, and a response whose process died
while it ran reads as it ended, not as running forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apihelpers import MakeApp, last_turn_request, make_client, signup
from parley.providers.scripted import ScriptedModel
from parley.responses.tables import ResponseRecord
from parley.storage.db import Database
from parley.storage.tables import Message


async def _key(client: Any) -> dict[str, str]:
    key = (await client.post("/api/keys", json={"name": "api"})).json()["key"]
    return {"Authorization": f"Bearer {key}"}


async def test_chains_survive_a_restart(make_app: MakeApp, scripted: ScriptedModel) -> None:
    async with make_app() as app, make_client(app) as ada:
        await signup(ada)
        auth = await _key(ada)
        scripted.enqueue("The password is swordfish.")
        first = await ada.post(
            "/v1/responses",
            json={"model": "scripted/scripted", "input": "Invent a password."},
            headers=auth,
        )
        conv = (await ada.post("/v1/conversations", json={}, headers=auth)).json()["id"]
        scripted.enqueue("Stored.")
        await ada.post(
            "/v1/responses",
            json={"model": "scripted/scripted", "input": "Note A", "conversation": conv},
            headers=auth,
        )
    async with make_app() as restarted, make_client(restarted) as again:  # a new process
        scripted.enqueue("It was swordfish.")
        chained = await again.post(
            "/v1/responses",
            json={
                "model": "scripted/scripted",
                "input": "What was it?",
                "previous_response_id": first.json()["id"],
            },
            headers=auth,
        )
        assert chained.status_code == 200, chained.text
        assert chained.json()["output"][0]["content"][0]["text"] == "It was swordfish."
        sent = [m.content for m in last_turn_request(scripted).messages[1:]]
        assert sent == ["Invent a password.", "The password is swordfish.", "What was it?"]
        scripted.enqueue("Stored too.")
        more = await again.post(
            "/v1/responses",
            json={"model": "scripted/scripted", "input": "Note B", "conversation": conv},
            headers=auth,
        )
        assert more.status_code == 200
        sent = [m.content for m in last_turn_request(scripted).messages[1:]]
        assert sent == ["Note A", "Stored.", "Note B"]


async def test_a_response_cut_by_a_crash_reads_as_failed(
    make_app: MakeApp, scripted: ScriptedModel
) -> None:
    async with make_app() as app, make_client(app) as ada:
        await signup(ada)
        auth = await _key(ada)
        scripted.enqueue("Done.")
        made = (
            await ada.post(
                "/v1/responses", json={"model": "scripted/scripted", "input": "hi"}, headers=auth
            )
        ).json()
        # as if the process had died mid-answer: the record still says in_progress
        # and the answer's row is still streaming
        async with app.state.services.require(Database).session() as session:
            record = await session.get(ResponseRecord, made["id"].removeprefix("resp_"))
            assert record is not None
            record.status = "in_progress"
            row = await session.get(Message, record.message_id)
            assert row is not None
            row.status = "streaming"
            # silent for a while: on PostgreSQL only those count as left by a dead
            # worker (a live one may still be writing a fresh one)
            row.updated_at = datetime.now(UTC) - timedelta(minutes=10)
            await session.commit()
    async with make_app() as restarted, make_client(restarted) as again:
        # start-up fails answers left streaming by a dead process; the record follows
        found = (await again.get(f"/v1/responses/{made['id']}", headers=auth)).json()
        assert found["status"] == "failed"
        assert found["error"]["message"]
