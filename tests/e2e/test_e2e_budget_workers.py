"""Two real ``parley serve`` processes sharing one PostgreSQL database: 200
``/v1/chat/completions`` requests at once, split between them, against a budget
worth ten requests. The reservations are in the database, so neither worker can
spend what the other reserved: the budget is never passed, and spending stops
within one request's worst case of it."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ehelpers import Upstream, api_signup, start_parley, upstream_env

pytestmark = pytest.mark.e2e

ESTIMATE = 0.1  # max_tokens 100 at 1000 per million output tokens (input is free)
ANSWER_TOKENS = 90  # each answer costs 0.09: close to its worst case


async def _burst(bases: list[str], key: str, count: int) -> list[int]:
    body = {
        "model": "openai/scripted-model",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,
    }
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        calls = [
            client.post(
                f"{bases[i % len(bases)]}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            for i in range(count)
        ]
        return [r.status_code for r in await asyncio.gather(*calls)]


def test_two_workers_on_postgresql_cannot_overspend(
    upstream: Upstream, e2e_tmp: Path, pg_server: Any
) -> None:
    url = pg_server.create("budgets_" + uuid.uuid4().hex[:8])
    env = {**upstream_env(upstream), "PARLEY_DATABASE_URL": url}
    a, base_a = start_parley("budgets-a", e2e_tmp / "budgets-a", env, e2e_tmp)
    b, base_b = start_parley("budgets-b", e2e_tmp / "budgets-b", env, e2e_tmp)
    try:
        admin = api_signup(base_a, "Admin")  # the first account: an administrator
        with admin.api(base_a) as client:
            me = client.get("/api/auth/me").json()["user"]
            key = client.post("/api/keys", json={"name": "burst"}).json()["key"]
            priced = client.put(
                "/api/admin/prices",
                json={
                    "model": "openai/scripted-model",
                    "input_price": 0,
                    "cached_input_price": 0,
                    "output_price": 1000,
                },
            )
            assert priced.status_code == 200, priced.text
            made = client.post(
                "/api/admin/budgets",
                json={
                    "scope": "user",
                    "scope_id": me["id"],
                    "kind": "cost",
                    "period": "total",
                    "amount": 10 * ESTIMATE,
                },
            )
            assert made.status_code == 201, made.text
        upstream.script(*({"tokens": ANSWER_TOKENS} for _ in range(200)))
        time.sleep(2.5)  # both workers re-read prices and limits (every 2 s)

        # in a thread of its own: a browser test before this one can leave this thread
        # with a running event loop (Playwright's), where asyncio.run refuses to start
        with ThreadPoolExecutor(1) as pool:
            statuses = pool.submit(asyncio.run, _burst([base_a, base_b], key, 200)).result()
        assert set(statuses) <= {200, 429}, statuses

        with admin.api(base_b) as client:
            deadline = time.monotonic() + 20
            while True:  # settles run just after each answer
                budget = client.get("/api/admin/budgets").json()["items"][0]
                if budget["reserved"] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        answered = statuses.count(200)
        assert budget["reserved"] == 0
        assert budget["spent"] == pytest.approx(answered * ANSWER_TOKENS * 1000 / 1e6)
        assert budget["spent"] <= 10 * ESTIMATE + 1e-9  # never over the budget
        assert budget["spent"] >= 10 * ESTIMATE - ESTIMATE - 1e-9  # within one estimate
        assert 10 <= answered <= 11
        assert len(upstream.chat_requests()) == answered  # refused calls reach no model
    finally:
        a.stop()
        b.stop()
        pg_server.drop(url)
