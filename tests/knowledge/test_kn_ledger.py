"""With a remote embeddings endpoint, indexing a file and searching it are usage-ledger
rows (``embeddings``), one per request the endpoint got, charged to the file's
owner; another user's file is charged to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from knhelpers import Upload, wait_ready

from apihelpers import Client, ledger_rows, make_client, signup
from parley.providers.testing import ScriptedUpstream


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


@pytest.fixture
def overrides(upstream: ScriptedUpstream) -> dict[str, Any]:
    return {
        "knowledge_wait_s": 2.0,
        "embedding_provider": "openai",
        "embedding_base_url": upstream.base_url,
        "embedding_model": "scripted-embed",
        "embedding_api_key": "sk-test",
    }


def embedding_requests(upstream: ScriptedUpstream) -> int:
    return len([r for r in upstream.requests if r.path.endswith("/embeddings")])


async def test_indexing_and_searching_write_one_row_per_request(
    app: Any, client: Client, user: dict[str, Any], upload: Upload, upstream: ScriptedUpstream
) -> None:
    text = "\n\n".join(f"Paragraph {n} is about otters and their rafts." for n in range(40))
    r = await upload("otters.txt", text.encode(), content_type="text/plain")
    assert r.status_code in (200, 201, 202), r.text
    assert (await wait_ready(client, r.json()["id"]))["status"] == "ready"
    found = await client.post("/api/knowledge/search", json={"query": "otter rafts"})
    assert found.json()["items"], found.text
    rows = await ledger_rows(app)
    assert len(rows) == embedding_requests(upstream) >= 2  # the file's, then the query's
    for row in rows:
        assert (row.user_id, row.endpoint, row.provider, row.model, row.outcome) == (
            user["id"],
            "embeddings",
            "embeddings",
            "embeddings/scripted-embed",
            "ok",
        )
        assert row.input_tokens > 0  # the endpoint's count

    async with make_client(app) as other:
        bea = await signup(other, "bea@example.com")
        r = await upload("bees.txt", b"Bees dance to say where flowers are.", c=other)
        assert (await wait_ready(other, r.json()["id"]))["status"] == "ready"
    after = await ledger_rows(app)
    assert len(after) == embedding_requests(upstream)
    assert {row.user_id for row in after[len(rows) :]} == {bea["id"]}
