"""Helpers for API tests: a CSRF-aware client, sign-up, an SSE parser, and the
types of the app factory fixtures of ``tests/conftest.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from parley.config import Settings

# ``make_settings(**changes)`` and ``make_app(settings=None, **create_app_kwargs)``.
MakeSettings = Callable[..., Settings]
MakeApp = Callable[..., AbstractAsyncContextManager[Any]]


class Client(httpx.AsyncClient):
    """An httpx client that echoes the CSRF cookie like the web app does."""

    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:  # type: ignore[override]
        request = super().build_request(method, url, **kwargs)
        csrf = self.cookies.get("parley_csrf")
        if csrf and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            request.headers.setdefault("X-CSRF-Token", csrf)
        return request


def make_client(app: Any) -> Client:
    return Client(transport=httpx.ASGITransport(app=app), base_url="http://parley.test")


async def signup(
    client: Client, email: str = "ada@example.com", password: str = "correct horse"
) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/signup", json={"email": email, "password": password, "name": email.split("@")[0]}
    )
    assert response.status_code in (201, 202), response.text
    user: dict[str, Any] = response.json()["user"]
    return user


Frame = tuple[int | None, str, dict[str, Any]]  # an SSE frame: (id, event, data)


def parse_frames(text: str) -> list[Frame]:
    """Server-sent events with their ids (``None`` for a frame without one)."""
    out: list[Frame] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        seq: int | None = None
        name, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        out.append((seq, name, json.loads(data)))
    return out


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            events.append((name, json.loads(data)))
    return events


def last_turn_request(model: Any) -> Any:
    """The newest request that is a turn's (its system prompt is Parley's), not a
    memory extraction's or a title's."""
    for request in reversed(model.requests):
        if request.messages and request.messages[0].content.startswith("You are Parley"):
            return request
    raise AssertionError("no turn request")


async def ledger_rows(app: Any, timeout_s: float = 10.0) -> list[Any]:
    """The usage ledger's rows (oldest first) once the app's turns, their after-turn
    work and the rows being written in the background are all done."""
    import asyncio

    from sqlalchemy import select

    from parley.storage import Database
    from parley.turns import TurnService
    from parley.usage.ledger import UsageLedger
    from parley.usage.tables import UsageEvent

    services = app.state.services
    turns = services.require(TurnService)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while turns._tasks:
        assert asyncio.get_running_loop().time() < deadline, "turns did not finish"
        await asyncio.wait(set(turns._tasks), timeout=timeout_s)
    await services.require(UsageLedger).drain()
    async with services.require(Database).session() as session:
        found = await session.scalars(select(UsageEvent).order_by(UsageEvent.at, UsageEvent.id))
        return list(found)
