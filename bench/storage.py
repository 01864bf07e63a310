"""storage: Parley's own storage code under realistic volumes, SQLite and PostgreSQL.

For each backend: start Parley (``bench/_server.py``, a real HTTP server in its
own process) on a fresh database (SQLite in a temp dir; PostgreSQL in a
temporary database created and dropped here), sign up, then seed one user's
data with bulk SQLAlchemy core inserts into ``parley.storage.tables`` (the
migration's FTS5 triggers / generated tsvector columns index the rows as they
go in): 10,000 conversations, ~100,000 messages of Zipf-distributed words, and
one conversation whose active branch is 1,000 messages long.

Then, over HTTP with httpx:
- append: a turn (user message + a 20-token streamed reply from the scripted
  upstream, read until ``done``) to the 1,000-message conversation vs to a new
  one, alternating; ratio of medians.
- list: ``GET /api/conversations?limit=50`` (first page and the next page).
- search: ``GET /api/search`` with common, mid, rare, two-word and prefix queries.
Baseline column: ``GET /api/auth/me`` (auth + one row read) in the same run.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import client as cl
from bench.common import (
    Proc,
    Table,
    create_api_key,
    fmt,
    message_row,
    pct,
    start_parley,
    start_upstream,
    temp_dir,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BIG = 1000


@dataclass(frozen=True)
class Params:
    conversations: int
    messages: int
    turns: int
    list_requests: int
    search_passes: int


FULL = Params(10_000, 100_000, 15, 100, 3)
QUICK = Params(2_000, 20_000, 6, 40, 1)


class Words:
    """A fixed synthetic vocabulary with Zipf frequencies (rank 1 is commonest)."""

    def __init__(self, seed: int = 7, size: int = 6000) -> None:
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        seen: dict[str, None] = {}
        while len(seen) < size:
            n = self.rng.randint(4, 9)
            seen["".join(self.rng.choice(letters) for _ in range(n))] = None
        self.vocab = list(seen)
        weights = [1 / (i + 1) for i in range(size)]
        self.cum = _cumulative(weights)

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.vocab, cum_weights=self.cum, k=n))

    def queries(self) -> list[tuple[str, str]]:
        v = self.vocab
        return (
            [("common", v[i]) for i in (0, 2, 4, 6)]
            + [("mid", v[i]) for i in (150, 300, 450, 600)]
            + [("rare", v[i]) for i in (4000, 4500, 5000, 5500)]
            + [("two words", f"{v[i]} {v[i + 7]}") for i in (10, 200, 900, 2000)]
            + [("prefix", v[i][:4]) for i in (40, 500, 1500, 3000)]
        )


def _cumulative(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


# ------------------------------------------------------------------ seeding


async def seed(url: str, user_id: str, p: Params, words: Words) -> tuple[str, float]:
    """Bulk-insert the user's data; returns (big conversation id, seconds)."""
    from sqlalchemy import insert

    from parley.storage.db import Database
    from parley.storage.tables import Conversation, Message

    start = time.perf_counter()
    db = Database(url)
    base = datetime.now(UTC) - timedelta(days=400)
    per_conv = max(1, (p.messages - BIG) // (p.conversations - 1))
    big_id = uuid.uuid4().hex
    convs: list[dict[str, Any]] = []
    msgs: list[dict[str, Any]] = []
    tick = 0

    def stamp() -> datetime:
        nonlocal tick
        tick += 1
        return base + timedelta(seconds=tick)

    def conversation(conv_id: str, count: int) -> None:
        parent = None
        for i in range(count):
            msg_id = uuid.uuid4().hex
            at = stamp()
            role = "user" if i % 2 == 0 else "assistant"
            content = words.text(12 if i % 2 == 0 else 40)
            msgs.append(message_row(msg_id, conv_id, user_id, parent, role, content, at))
            parent = msg_id
        at = stamp()
        convs.append(
            {
                "id": conv_id,
                "user_id": user_id,
                "title": words.text(4),
                "title_generated": True,
                "tools": [],
                "pinned": False,
                "archived": False,
                "temporary": False,
                "active_leaf_id": parent,
                "created_at": at,
                "updated_at": at,
            }
        )

    conversation(big_id, BIG)
    for _ in range(p.conversations - 1):
        conversation(uuid.uuid4().hex, per_conv)
    try:
        async with db.engine.begin() as conn:
            for i in range(0, len(convs), 5000):
                await conn.execute(insert(Conversation.__table__), convs[i : i + 5000])
            for i in range(0, len(msgs), 5000):
                await conn.execute(insert(Message.__table__), msgs[i : i + 5000])
    finally:
        await db.dispose()
    return big_id, time.perf_counter() - start


# ------------------------------------------------------------------ measuring


async def timed_get(client: httpx.AsyncClient, url: str, **params: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    r = await client.get(url, params=params)
    ms = (time.perf_counter() - start) * 1000
    r.raise_for_status()
    return ms, r.json()


async def measure(
    parley: Proc, key: str, big_id: str, p: Params, words: Words, table: Table, label: str
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {key}"}
    raw: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=parley.url, headers=auth, timeout=120) as client:
        floor: list[float] = []

        async def me() -> None:
            floor.append((await timed_get(client, "/api/auth/me"))[0])

        # append: alternate big / new conversation
        big_url = f"{parley.url}/api/conversations/{big_id}/messages"
        body = {"content": "One more question, please.", "model": "openai/scripted-model"}

        async def turn(url: str) -> float:
            result = await cl.stream(client, url, body, auth, cl.NATIVE_TOKEN)
            if result.error:
                raise RuntimeError(f"turn failed: {result.error}")
            return result.total * 1000

        async def new_url() -> str:
            r = await client.post("/api/conversations", json={"model": "openai/scripted-model"})
            r.raise_for_status()
            return f"{parley.url}/api/conversations/{r.json()['id']}/messages"

        await turn(big_url)  # warm-up (and any one-off history summary)
        await turn(await new_url())
        big, new = [], []
        for _ in range(p.turns):
            big.append(await turn(big_url))
            new.append(await turn(await new_url()))
            await me()
        ratio = pct(big, 50) / pct(new, 50)
        table.add(f"{label}: append turn, {BIG}-msg conversation p50", fmt(pct(big, 50), "ms"))
        table.add(f"{label}: append turn, new conversation p50", fmt(pct(new, 50), "ms"))
        table.add(
            f"{label}: append ratio (p50 big / new)",
            fmt(ratio, "x", 2),
            "-",
            "<= 1.5x",
            ratio <= 1.5,
        )
        raw["append_big_ms"], raw["append_new_ms"] = big, new

        first: list[float] = []
        second: list[float] = []
        for _ in range(p.list_requests):
            ms, page = await timed_get(client, "/api/conversations", limit=50)
            first.append(ms)
            ms2, _ = await timed_get(
                client, "/api/conversations", limit=50, cursor=page["next_cursor"]
            )
            second.append(ms2)
            await me()
        total = p.conversations + 2 * p.turns + 2
        table.add(
            f"{label}: list 50 of {total:,} conversations p95",
            fmt(pct(first, 95), "ms"),
            fmt(pct(floor, 95), "ms"),
            "<= 50 ms",
            pct(first, 95) <= 50,
        )
        table.add(
            f"{label}: list, second page p95",
            fmt(pct(second, 95), "ms"),
            fmt(pct(floor, 95), "ms"),
            "<= 50 ms",
            pct(second, 95) <= 50,
        )
        raw["list_first_ms"], raw["list_second_ms"] = first, second

        queries = words.queries()
        for _, q in queries:  # warm-up pass
            await timed_get(client, "/api/search", q=q, limit=20)
        by_kind: dict[str, list[float]] = {}
        hits = 0
        for _ in range(p.search_passes):
            for kind, q in queries:
                ms, found = await timed_get(client, "/api/search", q=q, limit=20)
                by_kind.setdefault(kind, []).append(ms)
                hits += len(found["items"])
                await me()
        every = [ms for v in by_kind.values() for ms in v]
        table.add(
            f"{label}: search over {p.messages:,} messages p95",
            fmt(pct(every, 95), "ms"),
            fmt(pct(floor, 95), "ms"),
            "<= 100 ms",
            pct(every, 95) <= 100,
        )
        worst = max(by_kind, key=lambda k: pct(by_kind[k], 95))
        table.add(f"{label}: search slowest kind ({worst}) p95", fmt(pct(by_kind[worst], 95), "ms"))
        table.add(f"{label}: search max", fmt(max(every), "ms"))
        raw["search_ms"] = by_kind
        raw["search_hits"] = hits
        raw["floor_ms"] = floor
    return raw


# ------------------------------------------------------------------ backends


async def _pg(statement: str, database: str = "postgres") -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + database)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def run_backend(backend: str, p: Params, table: Table) -> None:
    work = temp_dir(f"storage-{backend}")
    words = Words()
    procs: list[Proc] = []
    db_name = f"parley_bench_{uuid.uuid4().hex[:10]}"
    env = {"PARLEY_LOCAL_MODEL_ENABLED": "false", "OPENAI_API_KEY": "sk-bench"}
    if backend == "postgresql":
        try:
            asyncio.run(_pg(f'CREATE DATABASE "{db_name}"'))
        except Exception as exc:
            table.add(f"{backend}: available", "no", "-", "-", None)
            table.notes.append(f"PostgreSQL unavailable: {exc}")
            return
        env["PARLEY_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db_name}"
    try:
        upstream = start_upstream(work, 20)
        procs.append(upstream)
        env["OPENAI_BASE_URL"] = upstream.url
        parley = start_parley(work, env=env)
        procs.append(parley)
        key = create_api_key(parley.url)
        me = httpx.get(f"{parley.url}/api/auth/me", headers={"Authorization": f"Bearer {key}"})
        user_id = me.json()["user"]["id"]
        url = env.get("PARLEY_DATABASE_URL") or f"sqlite+aiosqlite:///{work / 'data' / 'parley.db'}"
        big_id, seconds = asyncio.run(seed(url, user_id, p, words))
        if backend == "postgresql":  # what autovacuum does soon after a bulk load
            asyncio.run(_pg("ANALYZE", db_name))
        table.notes.append(
            f"{backend}: seeded {p.conversations:,} conversations / "
            f"{p.messages:,} messages in {seconds:.1f} s"
        )
        table.raw[backend] = asyncio.run(measure(parley, key, big_id, p, words, table, backend))
    finally:
        for proc in reversed(procs):
            proc.stop()
        if backend == "postgresql":
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


def run(quick: bool = False, backends: tuple[str, ...] = ("sqlite", "postgresql")) -> Table:
    p = QUICK if quick else FULL
    table = Table("storage", "storage: Parley's storage through its HTTP API", "GET /api/auth/me")
    for backend in backends:
        run_backend(backend, p, table)
    table.notes.append(
        "PostgreSQL is ANALYZEd after seeding (as autovacuum would soon do); without it the "
        "planner has no statistics and search / long-conversation turns take ~1 s"
    )
    table.notes.append(
        "over HTTP (httpx) against bench/_server.py in its own process; sequential requests; "
        "turn = POST .../messages until the done event (20-token reply from the scripted upstream)"
    )
    return table
