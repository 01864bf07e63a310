"""API test fixtures: the app, client and user of ``tests/conftest.py`` (every
default feature, the ``scripted`` model), and a real HTTP server for SDK tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from parley.config import Settings
from parley.providers.base import Provider


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(
    settings: Settings, extra_providers: list[Provider], features: list[Any] | None
) -> Iterator[tuple[str, str]]:
    """A real `parley` HTTP server in a thread; yields (base_url, api_key)."""
    from parley.api.app import create_app

    app = create_app(settings, extra_providers=extra_providers, features=features)
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
