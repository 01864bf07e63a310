"""A disabled user's queued uploads wait: ingestion does not work for an account
whose access ended, and picks the files up again if it is re-enabled."""

from __future__ import annotations

from typing import Any

from knhelpers import Upload, wait_ready
from sqlalchemy import text

from apihelpers import Client, make_client, signup
from parley.knowledge.feature import KnowledgeFeature


async def _status(feature: KnowledgeFeature, file_id: str) -> str:
    async with feature.service.ingestor.db.session() as session:
        found = await session.scalar(
            text("SELECT status FROM knowledge_files WHERE id = :f"), {"f": file_id}
        )
        return str(found)


async def test_a_disabled_users_queued_file_waits_until_re_enabled(
    app: Any, client: Client, user: dict[str, Any], feature: KnowledgeFeature, upload: Upload
) -> None:
    async with make_client(app) as bea:
        bea_id = (await signup(bea, "bea@example.com"))["id"]
        made = await upload("notes.txt", b"Beeswax candles burn slowly.\n" * 20, c=bea)
        file_id = made.json()["id"]
        await wait_ready(bea, file_id)
    ingestor = feature.service.ingestor
    async with ingestor.db.session() as session:  # as if it were still waiting in the queue
        await session.execute(
            text("UPDATE knowledge_files SET status = 'queued' WHERE id = :f"), {"f": file_id}
        )
        await session.commit()

    off = await client.patch(f"/api/admin/users/{bea_id}", json={"status": "disabled"})
    assert off.status_code == 200
    await ingestor.process(file_id)
    assert await _status(feature, file_id) == "queued"  # not worked on for a disabled account

    on = await client.patch(f"/api/admin/users/{bea_id}", json={"status": "active"})
    assert on.status_code == 200
    await ingestor.process(file_id)
    assert await _status(feature, file_id) == "ready"
