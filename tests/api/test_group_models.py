"""Which models each group may pick (Admin → Groups): the picker's list, starting a
chat, changing its model, each turn and ``/v1`` with a raw model follow the union
of the user's groups' lists, at once; a shared assistant on another model still
answers through the assistant."""

from __future__ import annotations

from typing import Any

import pytest

from apihelpers import Client, make_client, parse_sse, signup
from parley.providers.scripted import ScriptedModel

CHEAP, RICH = "scripted/cheap", "scripted/scripted"


@pytest.fixture
def cheap() -> ScriptedModel:
    return ScriptedModel(default="The cheap model answers.")


@pytest.fixture
def scripted_models(scripted: ScriptedModel, cheap: ScriptedModel) -> dict[str, ScriptedModel]:
    return {"scripted": scripted, "cheap": cheap}


async def _picker(client: Client) -> list[str]:
    listed = await client.get("/api/models")
    assert listed.status_code == 200, listed.text
    return [m["ref"] for m in listed.json()["items"] if not m.get("auto")]


async def _answer(client: Client, conv: str, **extra: Any) -> dict[str, Any]:
    sent = await client.post(f"/api/conversations/{conv}/messages", json={"content": "hi"} | extra)
    if sent.status_code != 200:
        body: dict[str, Any] = sent.json()
        return body
    events = dict(parse_sse(sent.text))
    assert "done" in events, sent.text
    message: dict[str, Any] = events["done"]["message"]
    return message


async def test_a_groups_models_limit_what_its_members_pick(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    assert {CHEAP, RICH} <= set(await _picker(client))
    group = (await client.post("/api/admin/groups", json={"name": "Interns"})).json()["id"]
    unknown = await client.put(f"/api/admin/groups/{group}/models", json={"models": ["x/y"]})
    assert unknown.status_code == 422 and "x/y" in unknown.json()["detail"]
    limited = await client.put(f"/api/admin/groups/{group}/models", json={"models": [CHEAP]})
    assert limited.status_code == 200 and limited.json()["models"] == [CHEAP]
    listed = (await client.get("/api/admin/groups")).json()["items"]
    assert [g["models"] for g in listed if g["id"] == group] == [[CHEAP]]
    made = await client.post(
        "/api/assistants",
        json={"config": {"name": "Rich helper", "instructions": "Be rich.", "model": RICH}},
    )
    assistant = made.json()["id"]
    await client.post(
        f"/api/assistants/{assistant}/shares", json={"kind": "group", "group_id": group}
    )

    async with make_client(app) as bob:
        bob_user = await signup(bob, "bob@example.com")
        assert {CHEAP, RICH} <= set(await _picker(bob))  # in no group yet: every model
        await client.put(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        assert await _picker(bob) == [CHEAP]
        assert (await bob.get("/api/models")).json()["default"] == CHEAP

        # starting a chat on, switching to, or answering with another model: refused
        refused = await bob.post("/api/conversations", json={"model": RICH})
        assert refused.status_code == 403 and refused.json()["code"] == "model_not_allowed"
        assert RICH in refused.json()["detail"] and "administrator" in refused.json()["detail"]
        conv = (await bob.post("/api/conversations", json={"model": CHEAP})).json()["id"]
        switched = await bob.patch(f"/api/conversations/{conv}", json={"model": RICH})
        assert switched.status_code == 403
        assert (await _answer(bob, conv))["model"] == CHEAP
        assert (await _answer(bob, conv, model=RICH))["code"] == "model_not_allowed"
        # a chat with no model answers with the first model bob may pick
        bare = (await bob.post("/api/conversations", json={})).json()["id"]
        assert (await _answer(bob, bare))["model"] == CHEAP

        # the shared assistant's model is usable through the assistant
        chat = await bob.post(f"/api/assistants/{assistant}/chats", json={})
        assert chat.status_code == 201, chat.text
        answered = await _answer(bob, chat.json()["conversation_id"])
        assert answered["model"] == RICH, answered

        # /v1 with a raw model follows the same list
        key = (await bob.post("/api/keys", json={"name": "k"})).json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        models = [m["id"] for m in (await bob.get("/v1/models", headers=auth)).json()["data"]]
        assert CHEAP in models and RICH not in models
        for path, body in (
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/responses", {"input": "hi"}),
        ):
            refused = await bob.post(path, json=body | {"model": RICH}, headers=auth)
            assert refused.status_code == 403, (path, refused.text)
            ok = await bob.post(path, json=body | {"model": CHEAP}, headers=auth)
            assert ok.status_code == 200, (path, ok.text)

        # an assistant bob builds on a model he may not pick does not open it
        own = await bob.post("/api/assistants", json={"config": {"name": "Sneaky", "model": RICH}})
        assert own.status_code == 201, own.text
        sneaky = await bob.post(f"/api/assistants/{own.json()['id']}/chats", json={})
        sent = await _answer(bob, sneaky.json()["conversation_id"])
        assert sent["code"] == "model_not_allowed", sent

        # a second group that limits nothing: every model again (the union)
        other = (await client.post("/api/admin/groups", json={"name": "All"})).json()["id"]
        await client.put(f"/api/admin/groups/{other}/members/{bob_user['id']}")
        assert {CHEAP, RICH} <= set(await _picker(bob))
        await client.delete(f"/api/admin/groups/{other}/members/{bob_user['id']}")
        assert await _picker(bob) == [CHEAP]
        # removed from the group: at the next request
        await client.delete(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        assert {CHEAP, RICH} <= set(await _picker(bob))
        assert (await _answer(bob, conv, model=RICH))["model"] == RICH

        # the admin is never limited, even in a limited group
        await client.put(f"/api/admin/groups/{group}/members/{user['id']}")
        assert {CHEAP, RICH} <= set(await _picker(client))
        # clearing the list: the group limits nothing
        await client.put(f"/api/admin/groups/{group}/members/{bob_user['id']}")
        cleared = await client.put(f"/api/admin/groups/{group}/models", json={"models": []})
        assert cleared.json()["models"] == []
        assert {CHEAP, RICH} <= set(await _picker(bob))
