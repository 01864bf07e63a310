"""Helpers for files-and-knowledge tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from apihelpers import Client

Upload = Callable[..., Any]


async def wait_ready(client: Client, file_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll a file until it is ready or failed; returns its last state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body: dict[str, Any] = (await client.get(f"/api/files/{file_id}")).json()
        if body["status"] in ("ready", "failed"):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)
