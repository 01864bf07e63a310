"""``python -m bench budgets``: what budgets and rate limits add to time to first token.

One app per database (SQLite, then PostgreSQL), served in this process through
httpx's ASGI transport (no sockets: the numbers are Parley's own work, not the
network's), a scripted model that answers at once. Rounds alternate two modes in
the same run: **no limits**, and **limits**: five that bind every request (the
instance's monthly budget, the user's daily budget, the API key's weekly budget,
requests per minute and tokens per minute on the key), each far from being
reached. Each request measures the time from sending to its first streamed byte
of text on ``/v1/chat/completions`` (``stream: true``) and on the native chat
route (``POST /api/conversations/{id}/messages``: the first ``text`` event). The
target is the issue's: at most 2 ms more at p99 with limits than without.

With limits a model call costs a read of the budgets' counters when a chat turn is
prepared (``preflight``) and one transaction before the call (``reserve``); the
settle runs after the answer, off the path to the first token.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.budget_relay import relay_with_limits
from bench.common import Table, pct

TARGET_MS = 2.0
# the PostgreSQL server whose maintenance database creates the benchmark's (as the tests')
PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _settings(url: str, data: Path) -> Any:
    from parley.config import load_settings

    return load_settings(
        data_dir=data,
        database_url=url,
        local_model_enabled=False,
        providers=[],
        title_model="none",
        memory_auto=False,
        retry_attempts=1,
        flush_interval_s=0.05,
    )


async def _first_byte(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> float:
    """Milliseconds from sending to the first streamed text."""
    started = time.perf_counter()
    async with client.stream(method, url, **kw) as r:
        assert r.status_code == 200, r.status_code
        first = None
        async for chunk in r.aiter_text():
            if first is None and ('"content"' in chunk or "event: text" in chunk):
                first = (time.perf_counter() - started) * 1000
        assert first is not None, "no text streamed"
    return first


async def _limits(client: httpx.AsyncClient, user_id: str, key_id: str) -> list[str]:
    made = []
    for body in (
        {"scope": "instance", "kind": "cost", "period": "month", "amount": 1e6},
        {"scope": "user", "scope_id": user_id, "kind": "cost", "period": "day", "amount": 1e6},
        {"scope": "key", "scope_id": key_id, "kind": "cost", "period": "week", "amount": 1e6},
        {"scope": "key", "scope_id": key_id, "kind": "requests", "period": "minute", "amount": 1e6},
        {"scope": "key", "scope_id": key_id, "kind": "tokens", "period": "minute", "amount": 1e9},
    ):
        r = await client.post("/api/admin/budgets", json=body)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    return made


async def _measure(url: str, rounds: int, per_round: int) -> dict[str, dict[str, list[float]]]:
    from parley.api.app import create_app
    from parley.budgets.service import Budgets
    from parley.providers.base import ModelInfo
    from parley.providers.scripted import ScriptedModel, ScriptedProvider

    info = ModelInfo(provider="bench", name="m", input_price=1.0, output_price=2.0)
    model = ScriptedModel(default="An answer that streams at once.", info=info)
    with tempfile.TemporaryDirectory(prefix="parley-bench-budgets-") as tmp:
        app = create_app(
            _settings(url, Path(tmp)), extra_providers=[ScriptedProvider("bench", {"m": model})]
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                r = await client.post(
                    "/api/auth/signup",
                    json={
                        "email": "bench@example.com",
                        "password": "bench-password-1",
                        "name": "B",
                    },
                )
                user_id = r.json()["user"]["id"]
                client.headers["X-CSRF-Token"] = client.cookies["parley_csrf"]
                key = (await client.post("/api/keys", json={"name": "bench"})).json()
                conv = (await client.post("/api/conversations", json={"model": "bench/m"})).json()
                v1 = {
                    "model": "bench/m",
                    "stream": True,
                    "messages": [{"role": "user", "content": "hello"}],
                    "max_tokens": 50,
                }
                auth = {"Authorization": f"Bearer {key['key']}"}
                out: dict[str, dict[str, list[float]]] = {
                    mode: {"v1": [], "native": []} for mode in ("none", "limits")
                }
                budgets = app.state.services.get(Budgets)

                async def one_round(mode: str) -> None:
                    for _ in range(per_round):
                        out[mode]["v1"].append(
                            await _first_byte(
                                client, "POST", "/v1/chat/completions", json=v1, headers=auth
                            )
                        )
                        out[mode]["native"].append(
                            await _first_byte(
                                client,
                                "POST",
                                f"/api/conversations/{conv['id']}/messages",
                                json={"content": "hello"},
                            )
                        )

                await one_round("none")  # warm-up, discarded
                await one_round("limits")
                out = {mode: {"v1": [], "native": []} for mode in ("none", "limits")}
                for i in range(rounds):
                    order = ("none", "limits") if i % 2 == 0 else ("limits", "none")
                    for mode in order:
                        ids: list[str] = []
                        if mode == "limits":
                            ids = await _limits(client, user_id, key["id"])
                        await one_round(mode)
                        for budget_id in ids:
                            await client.delete(f"/api/admin/budgets/{budget_id}")
                        await budgets.drain()
                return out


def _pg_database() -> tuple[str, str]:
    import asyncpg
    from sqlalchemy.engine import make_url

    name = "parley_bench_budgets_" + uuid.uuid4().hex[:8]

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


def _drop_pg(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def _spread(values: dict[str, list[float]]) -> tuple[str, str, str, list[float]]:
    """(p50/p95/p99 with limits, the same without, the differences, the differences)."""
    qs = (50, 95, 99)
    limited = [pct(values["limits"], q) for q in qs]
    base = [pct(values["none"], q) for q in qs]
    extra = [a - b for a, b in zip(limited, base, strict=True)]

    def three(xs: list[float], sign: bool = False) -> str:
        return " / ".join(f"{x:+.2f}" if sign else f"{x:.2f}" for x in xs) + " ms"

    return three(limited), three(base), three(extra, sign=True), extra


def run(quick: bool) -> Table:
    rounds, per_round = (4, 15) if quick else (10, 30)
    table = Table(
        "budgets", "Budgets and rate limits: time to first token (p50 / p95 / p99)", "no limits"
    )
    backends: list[tuple[str, str, str | None]] = []
    with tempfile.TemporaryDirectory(prefix="parley-bench-sqlite-") as tmp:
        backends.append(("SQLite", f"sqlite:///{tmp}/bench.db", None))
        try:
            pg_url, pg_name = _pg_database()
            backends.append(("PostgreSQL", pg_url, pg_name))
        except Exception as exc:  # reported, not hidden
            table.notes.append(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}")
        for label, url, pg in backends:
            try:
                found = asyncio.run(_measure(url, rounds, per_round))
            finally:
                if pg is not None:
                    _drop_pg(pg)
            for route, name in (("v1", "/v1/chat/completions"), ("native", "native chat")):
                values = {mode: found[mode][route] for mode in ("none", "limits")}
                limited, base, extra, diff = _spread(values)
                table.add(f"{label} {name} TTFT", limited, base)
                table.add(
                    f"{label} {name} added by limits",
                    extra,
                    "-",
                    f"p99 <= +{TARGET_MS:g} ms",
                    diff[2] <= TARGET_MS,
                )
                table.raw[f"{label}-{route}"] = values
    table.notes.append(
        f"{rounds} alternating rounds x {per_round} requests per route and mode, one at a "
        "time, in-process ASGI (no network), a scripted model answering at once; "
        "'limits': five limits binding every request (3 budgets, requests and tokens per "
        f"minute). CPU count {os.cpu_count()}; a shared machine: compare columns, not runs."
    )
    if os.environ.get("BENCH_BUDGETS_RELAY", "1") != "0":
        relay_with_limits(quick, table)
    return table
