"""API test fixtures: a real app on a real database (both backends), driven
over ASGI with httpx, and a scripted model at the model boundary."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from apihelpers import Client, make_client, signup
from parley.api.app import create_app
from parley.config import load_settings
from parley.providers.scripted import ScriptedModel, ScriptedProvider


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Hello from the scripted model.")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Any:
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        local_model_enabled=False,
        flush_interval_s=0.05,
        providers=[],
    )


@pytest.fixture
async def app(settings: Any, scripted: ScriptedModel) -> AsyncIterator[Any]:
    application = create_app(
        settings, extra_providers=[ScriptedProvider("scripted", {"scripted": scripted})]
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Client]:
    async with make_client(app) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    return await signup(client)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(settings: Any, scripted: ScriptedModel) -> Iterator[tuple[str, str]]:
    """A real `parley` HTTP server in a thread; yields (base_url, api_key)."""
    app = create_app(
        settings, extra_providers=[ScriptedProvider("scripted", {"scripted": scripted})]
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=base) as c:
        signup = c.post(
            "/api/auth/signup", json={"email": "sdk@example.com", "password": "12345678"}
        )
        csrf = c.cookies["parley_csrf"]
        assert signup.status_code == 201
        key = c.post("/api/keys", json={"name": "sdk"}, headers={"X-CSRF-Token": csrf}).json()[
            "key"
        ]
    try:
        yield base + "/v1", key
    finally:
        server.should_exit = True
        thread.join(timeout=10)
