"""Keyword statistics are each user's own, exact and immediately consistent (issue 13
item 9), on both backends, through the real upload, search and delete routes.

Another user's uploads of the very words Alice searches for must leave her results
byte-identical (order and scores); her own upload changes them at once and deleting it
restores them exactly; the same question asked again returns the same top 10. The
score-level check reads the keyword index's own scores (BM25 over her passages on
SQLite, ``ts_rank_cd`` on PostgreSQL), not only the fused ranks the route shows."""

from __future__ import annotations

import json
from typing import Any

from knhelpers import Upload, wait_ready

from apihelpers import Client, make_client, signup
from parley.knowledge.feature import KnowledgeFeature
from parley.knowledge.keyword import keyword_scored

QUERY = "walrus tusk harbour"


def _text(*paragraphs: str) -> bytes:
    return "\n\n".join(paragraphs).encode()


ALICE_FILES = {
    "ice.txt": _text(
        "The walrus sleeps on drifting ice near the harbour wall.",
        "Seagulls circle the fishing boats at dawn.",
        "A walrus tusk can grow to a metre; the tusk is a canine tooth.",
    ),
    "harbour.txt": _text(
        "The harbour master logs every boat that enters.",
        "Walrus herds rest on beaches in summer, tusk to tusk.",
        "Lighthouses guide ships past the rocks.",
    ),
    "other.txt": _text("Penguins live in the southern hemisphere.", "Krill is their food."),
}
# Bob's files are full of Alice's query words: instance-wide statistics would make them
# common (lowering their weight) and reorder or prune Alice's results.
BOB_FILES = {
    f"bob{i}.txt": _text(*[f"walrus walrus tusk walrus number {i}-{j}" for j in range(40)])
    for i in range(3)
}


async def _upload_all(client: Client, upload: Upload, files: dict[str, bytes]) -> list[str]:
    ids = []
    for name, data in files.items():
        response = await upload(name, data, c=client, content_type="text/plain")
        assert response.status_code in (200, 201, 202), response.text
        ids.append(response.json()["id"])
    for file_id in ids:
        assert (await wait_ready(client, file_id))["status"] == "ready"
    return ids


async def _search(client: Client, **scope: Any) -> str:
    """The route's answer for QUERY, as the exact JSON text of its items."""
    body = {"query": QUERY, "mode": "keyword", "limit": 10, **scope}
    response = await client.post("/api/knowledge/search", json=body)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    return json.dumps(items, sort_keys=True)


async def _scores(feature: KnowledgeFeature, user_id: str, file_ids: list[str] | None) -> str:
    """The keyword index's own (chunk id, score) list, exactly as floats' reprs."""
    async with feature.service.retriever.db.session() as session:
        found = await keyword_scored(session, user_id, QUERY, file_ids, 50)
    return repr(found)


async def test_another_users_uploads_and_deletes_never_change_alice_results(
    client: Client, app: Any, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature
) -> None:
    alice_files = await _upload_all(client, upload, ALICE_FILES)
    scoped = {"file_ids": alice_files[:2]}

    async def snapshot() -> tuple[str, str, str, str]:
        return (
            await _search(client),
            await _search(client, **scoped),
            await _scores(feature, user["id"], None),
            await _scores(feature, user["id"], alice_files[:2]),
        )

    before = await snapshot()
    found = json.loads(before[0])
    assert found and all(h["file_id"] in alice_files for h in found)
    assert "walrus" in found[0]["text"].lower()
    assert before[2] != "[]" and before[3] != "[]"
    assert await snapshot() == before  # asked again: the same top 10, the same scores

    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        bob_files = await _upload_all(bob, upload, BOB_FILES)
        bob_hits = json.loads(await _search(bob))
        assert bob_hits and all(h["file_id"] in bob_files for h in bob_hits)
        assert await snapshot() == before  # byte-identical with Bob's 120 walrus passages
        for file_id in bob_files:
            assert (await bob.delete(f"/api/files/{file_id}")).status_code == 204
        assert await _search(bob) == "[]"
    assert await snapshot() == before


async def test_alice_own_upload_counts_at_once_and_its_deletion_restores_exactly(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature, backend: str
) -> None:
    alice_files = await _upload_all(client, upload, ALICE_FILES)
    uid = user["id"]
    before = (
        await _scores(feature, uid, None),
        await _scores(feature, uid, alice_files),
        await _search(client),
    )
    # Her own walrus-heavy file counts at once (no cache to expire): its passages rank.
    extra = await _upload_all(client, upload, {"extra.txt": BOB_FILES["bob0.txt"]})
    assert await _scores(feature, uid, None) != before[0]
    assert extra[0] in await _search(client)
    if backend == "sqlite":
        # BM25 over her own passages: "walrus" is now common among them, so even the
        # scores of her first three files' passages change (ts_rank_cd has no statistics).
        assert await _scores(feature, uid, alice_files) != before[1]
    assert (await client.delete(f"/api/files/{extra[0]}")).status_code == 204
    after = (
        await _scores(feature, uid, None),
        await _scores(feature, uid, alice_files),
        await _search(client),
    )
    assert after == before
