"""What sharing and projects add to a turn, and the gallery, at a team's size.

``.venv/bin/python -m bench assistants [--quick]`` prints one table. On SQLite (a
temporary file) and PostgreSQL (a throwaway database on 127.0.0.1:5432) it loads
300 users, 100 groups (each user in 3), 1,000 assistants (each with a version),
10,000 shares (users, groups, a few "everyone" and links) and 100 projects with
members; the measured user chats with an assistant shared with one of their
groups, in a project they are a member of through another group.

- **Resolve for a turn**: everything sharing and projects ask on a turn of that
  chat, in the turn's session as ``TurnService.prepare`` does: the assistant's
  profile (``TURN_PROFILES``: the role from shares and groups, the version), the
  project's (``PROJECT_PROFILES``), and the knowledge the chat may search
  (``CONVERSATION_KNOWLEDGE``, ``SHARED_KNOWLEDGE``, ``PROJECT_KNOWLEDGE``).
  Baseline, same run: the owner's own assistant in a chat outside any project (the
  profile and ``CONVERSATION_KNOWLEDGE``: the shape every assistant chat had before
  sharing). Target: p95 added <= 5 ms. Also, load-independent: statements sent and
  this process's CPU per resolution.
- **Gallery**: ``GET /api/assistant-gallery``'s query (``SharingService.gallery``),
  unfiltered and searched. Target p95 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import Table, pct

USERS, GROUPS, ASSISTANTS, SHARES, PROJECTS = 300, 100, 1_000, 10_000, 100
TURN_TARGET_MS = 5.0
GALLERY_TARGET_MS = 50.0


async def _timed(call: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    for _ in range(5):
        await call()  # warm
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return pct(samples, 50), pct(samples, 95)


async def _fill(db: Any) -> dict[str, Any]:
    from sqlalchemy import insert

    from parley.assistants.tables import Assistant, AssistantShare, AssistantVersion
    from parley.groups.tables import Group, GroupMember
    from parley.projects.tables import Project, ProjectMember
    from parley.storage.tables import Conversation, User, new_id, utcnow

    rng = random.Random(16)
    now = utcnow()
    users = [new_id() for _ in range(USERS)]
    groups = [new_id() for _ in range(GROUPS)]
    assistants = [new_id() for _ in range(ASSISTANTS)]
    projects = [new_id() for _ in range(PROJECTS)]
    me = users[0]
    async with db.session() as session:
        await session.execute(
            insert(User),
            [
                {
                    "id": u,
                    "email": f"u{i}@example.com",
                    "name": f"User {i}",
                    "password_hash": "x",
                    "preferences": {},
                    "created_at": now,
                }
                for i, u in enumerate(users)
            ],
        )
        await session.execute(
            insert(Group),
            [
                {"id": g, "name": f"group {i}", "description": "", "created_at": now}
                for i, g in enumerate(groups)
            ],
        )
        members = {(g, u) for u in users for g in rng.sample(groups, 3)}
        await session.execute(
            insert(GroupMember),
            [{"group_id": g, "user_id": u, "created_at": now} for g, u in members],
        )
        versions = []
        rows = []
        for i, a in enumerate(assistants):
            v = new_id()
            versions.append(
                {
                    "id": v,
                    "assistant_id": a,
                    "number": 1,
                    "config": {
                        "name": f"Helper {i}",
                        "description": f"helps with topic {i}",
                        "instructions": "x" * 400,
                    },
                    "note": "",
                    "created_at": now,
                }
            )
            rows.append(
                {
                    "id": a,
                    "user_id": rng.choice(users[1:]) if i else me,
                    "slug": f"helper-{i}",
                    "name": f"Helper {i}",
                    "description": f"helps with topic {i}",
                    "featured": i % 97 == 0,
                    "draft_version_id": v,
                    "published_version_id": v,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        await session.execute(insert(Assistant), rows)
        await session.execute(insert(AssistantVersion), versions)
        shares: dict[tuple[str, str, str], dict[str, Any]] = {}
        while len(shares) < SHARES:
            a = rng.choice(assistants)
            kind = rng.choices(["user", "group", "everyone", "link"], [60, 37, 1, 2])[0]
            pid = {
                "user": lambda: rng.choice(users),
                "group": lambda: rng.choice(groups),
                "everyone": lambda: "",
                "link": lambda: new_id(),
            }[kind]()
            shares[(a, kind, pid)] = {
                "id": new_id(),
                "assistant_id": a,
                "principal_type": kind,
                "principal_id": pid,
                "role": rng.choice(["chat", "chat", "view", "edit"]),
                "created_at": now,
            }
        my_groups = [g for g, u in members if u == me]
        shared_id = assistants[1]
        shares[(shared_id, "group", my_groups[0])] = {
            "id": new_id(),
            "assistant_id": shared_id,
            "principal_type": "group",
            "principal_id": my_groups[0],
            "role": "chat",
            "created_at": now,
        }
        await session.execute(insert(AssistantShare), list(shares.values()))
        await session.execute(
            insert(Project),
            [
                {
                    "id": p,
                    "user_id": rng.choice(users[1:]),
                    "name": f"Project {i}",
                    "description": "",
                    "instructions": "Be thorough.",
                    "instructions_mode": "add",
                    "tools": [],
                    "memory": "project",
                    "created_at": now,
                    "updated_at": now,
                }
                for i, p in enumerate(projects)
            ],
        )
        await session.execute(
            insert(ProjectMember),
            [
                {
                    "id": new_id(),
                    "project_id": p,
                    "principal_type": "group",
                    "principal_id": g,
                    "role": "editor",
                    "created_at": now,
                }
                for p in projects
                for g in rng.sample(groups, 5)
            ]
            + [
                {
                    "id": new_id(),
                    "project_id": projects[0],
                    "principal_type": "group",
                    "principal_id": my_groups[1],
                    "role": "editor",
                    "created_at": now,
                }
            ],
        )
        convs = {}
        for name, assistant, project in (
            ("shared", shared_id, projects[0]),
            ("own", assistants[0], None),
        ):
            convs[name] = new_id()
            session.add(
                Conversation(
                    id=convs[name],
                    user_id=me,
                    title=name,
                    tools=[],
                    assistant_id=assistant,
                    project_id=project,
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()
    return {"me": me, "convs": convs}


async def _backend(table: Table, raw: dict[str, Any], label: str, url: str, n: int) -> None:
    from sqlalchemy import event, select, text

    from parley.assistants.access import Access
    from parley.assistants.service import AssistantService
    from parley.assistants.sharing import SharingService
    from parley.groups.service import GroupService
    from parley.projects.service import ProjectService
    from parley.storage.db import Database
    from parley.storage.tables import Conversation
    from parley.tools import ToolRegistry

    db = Database(url)
    try:
        await db.migrate()
        started = time.perf_counter()
        filled = await _fill(db)
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        print(f"[{label}] loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        groups = GroupService(db)
        lookup = groups.of_user
        in_groups = groups.of_user_query
        access = Access(lambda: lookup, lambda: in_groups)  # as the app wires them
        assistants = AssistantService(db, ToolRegistry(), None, access)  # type: ignore[arg-type]
        projects = ProjectService(
            db,
            lambda: lookup,
            ToolRegistry(),
            None,  # type: ignore[arg-type]
            lambda: in_groups,
        )
        sharing = SharingService(db, access)
        me = filled["me"]

        async def resolve(name: str, full: bool) -> None:
            conv_id = filled["convs"][name]
            async with db.session() as session:
                conv = await session.scalar(
                    select(Conversation).where(
                        Conversation.id == conv_id, Conversation.user_id == me
                    )
                )
                assert conv is not None
                await assistants.profile(session, me, conv)
                if full:
                    assert await projects.profile(session, me, conv) is not None
            await assistants.knowledge(me, conv_id)
            if full:
                await assistants.lent(me, conv_id)
                await projects.knowledge(me, conv_id)

        base = await _timed(lambda: resolve("own", False), n)
        shared = await _timed(lambda: resolve("shared", True), n)
        # Load-independent: statements sent and this process's CPU per resolution
        # (the machine this runs on is shared; wall-clock percentiles queue behind it).
        counted = {"n": 0}

        def count(*_: Any) -> None:
            counted["n"] += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        costs = {}
        for name, full in (("own", False), ("shared", True)):
            counted["n"] = 0
            cpu = time.process_time()
            for _ in range(50):
                await resolve(name, full)
            costs[name] = (counted["n"] / 50, (time.process_time() - cpu) * 1000 / 50)
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        table.add(
            f"{label} resolve a turn: statements / CPU ms of this process",
            f"{costs['shared'][0]:.0f} / {costs['shared'][1]:.2f} ms",
            f"{costs['own'][0]:.0f} / {costs['own'][1]:.2f} ms",
        )
        raw[f"{label}/cost"] = costs
        added = shared[1] - base[1]
        table.add(
            f"{label} resolve a turn (shared assistant, project, groups): p50 / p95",
            f"{shared[0]:.2f} / {shared[1]:.2f} ms",
            f"{base[0]:.2f} / {base[1]:.2f} ms",
            f"p95 added <= {TURN_TARGET_MS:.0f} ms",
            added <= TURN_TARGET_MS,
        )
        assert len(await sharing.gallery(me)) > 0
        listing = await _timed(lambda: sharing.gallery(me), n)
        searched = await _timed(lambda: sharing.gallery(me, "topic 1"), n)
        for what, (p50, p95) in (("gallery", listing), ("gallery, searched", searched)):
            table.add(
                f"{label} {what}: p50 / p95",
                f"{p50:.1f} / {p95:.1f} ms",
                "-",
                f"p95 <= {GALLERY_TARGET_MS:.0f} ms",
                p95 <= GALLERY_TARGET_MS,
            )
        raw[label] = {"turn": shared, "baseline": base, "gallery": listing, "search": searched}
    finally:
        await db.dispose()


async def measure(quick: bool) -> Table:
    from bench.knowledge_perf import _pg_database, _pg_drop

    n = 100 if quick else 400
    table = Table(
        "assistants",
        f"Sharing and projects: {ASSISTANTS:,} assistants, {SHARES:,} shares, {GROUPS} groups",
        baseline_label="own assistant, no project",
    )
    raw: dict[str, Any] = {"samples": n}
    with tempfile.TemporaryDirectory(prefix="parley-assistants-") as tmp:
        await _backend(table, raw, "SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", n)
    try:
        url, name = await _pg_database()
    except Exception as exc:
        table.notes.append(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")
    else:
        try:
            await _backend(table, raw, "PostgreSQL", url, n)
        finally:
            await _pg_drop(name)
    table.notes.append(
        "resolve: the turn's own session; the baseline is the same chat shape before "
        "sharing (own assistant: profile and knowledge only)"
    )
    table.raw = raw
    return table


def run(quick: bool) -> Table:
    return asyncio.run(measure(quick))
