"""Helpers for the assistants tests: make one, chat in one of its chats, wait for a file."""

from __future__ import annotations

import asyncio
from typing import Any

from apihelpers import Client, parse_sse


def config(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Pirate",
        "avatar": "🏴‍☠️",
        "instructions": "Talk like a pirate.",
    }
    return base | fields


async def create(client: Client, **fields: Any) -> dict[str, Any]:
    slug = fields.pop("slug", None)
    body: dict[str, Any] = {"config": config(**fields)}
    if slug:
        body["slug"] = slug
    made = await client.post("/api/assistants", json=body)
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


async def start(client: Client, assistant_id: str, preview: bool = False) -> str:
    made = await client.post(f"/api/assistants/{assistant_id}/chats", json={"preview": preview})
    assert made.status_code == 201, made.text
    conversation_id: str = made.json()["conversation_id"]
    return conversation_id


async def ask(client: Client, conversation_id: str, text: str) -> dict[str, Any]:
    """Send ``text`` in the chat: the stored answer (``done``'s message)."""
    sent = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"content": text}
    )
    assert sent.status_code == 200, sent.text
    events = dict(parse_sse(sent.text))
    assert "done" in events, sent.text
    message: dict[str, Any] = events["done"]["message"]
    return message


async def ready_file(client: Client, name: str, data: bytes) -> str:
    """A file in the user's library, indexed."""
    made = await client.post("/api/files", files={"file": (name, data, "text/plain")})
    assert made.status_code == 201, made.text
    file_id: str = made.json()["id"]
    for _ in range(400):
        if (await client.get(f"/api/files/{file_id}")).json()["status"] == "ready":
            return file_id
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was not indexed")
