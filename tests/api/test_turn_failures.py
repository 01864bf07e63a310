"""A turn whose record cannot be stored still ends its stream with a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from apihelpers import Client, parse_sse
from parley.storage.conversations import ConversationStore


async def test_storage_failure_at_the_end_still_ends_the_stream(
    client: Client, user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    original = ConversationStore.update_message

    async def failing(self: ConversationStore, message_id: str, **fields: Any) -> bool:
        if "status" in fields:
            raise RuntimeError("disk full")
        return await original(self, message_id, **fields)

    monkeypatch.setattr(ConversationStore, "update_message", failing)
    response = await client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "hello"}
    )
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "done"
    error = dict(events)["error"]
    assert error["code"] == "storage_error" and "could not be saved" in error["message"]
    # the user's message was committed before the model was called
    view = (await client.get(f"/api/conversations/{conv['id']}")).json()
    assert view["messages"][0]["content"] == "hello"
