"""Helpers for the ``/v1`` tests: a signed-in browser client of the ``live`` server
(to make keys with scopes and expiries, and read usage), and key creation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

LIVE_EMAIL, LIVE_PASSWORD = "sdk@example.com", "12345678"  # the ``live`` fixture's account


@contextmanager
def browser(
    base: str, email: str = LIVE_EMAIL, password: str = LIVE_PASSWORD
) -> Iterator[httpx.Client]:
    """A cookie client of the live server (``base`` is its ``.../v1``), signed in."""
    with httpx.Client(base_url=base.removesuffix("/v1"), timeout=30) as client:
        signed = client.post("/api/auth/login", json={"email": email, "password": password})
        assert signed.status_code == 200, signed.text
        client.headers["X-CSRF-Token"] = client.cookies["parley_csrf"]
        yield client


def make_key(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A new key (``name``, ``expires_at``, ``scopes``): the created key's JSON."""
    fields.setdefault("name", "test key")
    created = client.post("/api/keys", json=fields)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def ready_file(web: httpx.Client, name: str, data: bytes) -> str:
    """Upload a text file through the web API and wait until it is indexed."""
    made = web.post("/api/files", files={"file": (name, data, "text/plain")})
    assert made.status_code == 201, made.text
    file_id: str = made.json()["id"]
    for _ in range(400):
        if web.get(f"/api/files/{file_id}").json()["status"] == "ready":
            return file_id
        time.sleep(0.05)
    raise AssertionError("the file was not indexed")
