"""Helpers for the ``/v1`` tests: a signed-in browser client of the ``live`` server
(to make keys with scopes and expiries, and read usage), and key creation."""

from __future__ import annotations

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
