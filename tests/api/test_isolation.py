"""The cross-user sweep: every route of the OpenAPI document, called with a
second user's credentials and the first user's ids, finds nothing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from apihelpers import ledger_rows, make_client, parse_sse, signup

# Routes that never take another user's object: public, or about the caller only.
NO_FOREIGN_IDS = {"/api/auth/config", "/api/auth/signup", "/api/auth/login", "/api/health"}


async def test_second_user_sees_404_for_every_route_with_first_users_ids(app: Any) -> None:
    async with make_client(app) as alice, make_client(app) as bob:
        await signup(alice, "alice@example.com")
        bob_user = await signup(bob, "bob@example.com")
        conv = (await alice.post("/api/conversations", json={"model": "scripted/scripted"})).json()[
            "id"
        ]
        events = parse_sse(
            (
                await alice.post(
                    f"/api/conversations/{conv}/messages", json={"content": "secret plans"}
                )
            ).text
        )
        message = dict(events)["done"]["message"]["id"]
        key = (await alice.post("/api/keys", json={})).json()["id"]
        bob_key = (await bob.post("/api/keys", json={})).json()["key"]
        ids = {"conversation_id": conv, "message_id": message, "key_id": key}
        ids["call_id"] = "call_1"  # tool-call confirmations (parley.web_tools)
        ids.update(await _knowledge_ids(alice, conv))  # files and collections (parley.knowledge)
        memory = await alice.post("/api/memories", json={"text": "My vault word is pelican"})
        ids["memory_id"] = memory.json()["id"]  # saved memories (parley.memory)
        ids.update(await _memory_ids(alice, ids["memory_id"]))  # history, forget requests
        ids["output_id"] = await _sandbox_output_id(app, alice, conv)  # (parley.sandbox)
        ids.update(await _responses_ids(alice, conv))  # /v1 responses and items
        ids.update(await _assistant_ids(alice))  # assistants and their versions
        ids["image_id"] = await _image_id(alice, conv)  # a generated image (parley.images)
        ids.update(await _sharing_ids(alice, ids))  # a share of it, a project, a member
        # a stored chat completion (/v1, store: true), reachable with alice's key only
        alice_key = (await alice.post("/api/keys", json={"name": "alice's"})).json()["key"]
        alice_other_key = (await alice.post("/api/keys", json={"name": "other"})).json()["key"]
        # alice's own key limited to another project of hers: her chats and responses
        # outside it are refused (parley.auth.scopes), her stored completions unknown
        elsewhere = (await alice.post("/api/projects", json={"name": "Elsewhere"})).json()["id"]
        alice_project_key = (
            await alice.post(
                "/api/keys", json={"name": "elsewhere", "scopes": {"projects": [elsewhere]}}
            )
        ).json()["key"]
        relayed = await alice.post(
            "/v1/chat/completions",
            json={
                "model": "scripted/scripted",
                "messages": [{"role": "user", "content": "hi"}],
                "store": True,
            },
            headers={"Authorization": f"Bearer {alice_key}"},
        )
        assert relayed.status_code == 200, relayed.text
        ids["completion_id"] = relayed.json()["id"]

        spec = (await bob.get("/openapi.json")).json()
        checked = 0
        for path, operations in spec["paths"].items():
            params = re.findall(r"{(\w+)}", path)
            if not params or path.startswith("/api/admin"):
                continue
            url = path
            for p in params:
                assert p in ids, f"sweep does not know how to fill {{{p}}} in {path}"
                url = url.replace("{" + p + "}", ids[p])
            for method in operations:
                body: dict[str, Any] = {
                    "content": "x",
                    "message_id": message,
                    "title": "x",
                    "feedback": 1,
                }
                # /v1 takes API keys only (a cookie is 401 there); another key of the
                # same user is a stranger to a stored completion (responses and
                # conversations are the user's chats: any of their keys reaches them)
                auths = {"cookie": None, "key": bob_key}
                if path.startswith("/v1/chat/completions/"):
                    auths["alice's other key"] = alice_other_key
                if path.startswith("/v1/"):
                    auths["alice's key for another project"] = alice_project_key
                for auth, token in auths.items():
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    if method.upper() in ("GET", "DELETE"):
                        r = await bob.request(method.upper(), url, headers=headers)
                    else:
                        r = await bob.request(
                            method.upper(), url, json=_body_for(path, body), headers=headers
                        )
                    expected = 401 if path.startswith("/v1/") and token is None else 404
                    if token == alice_project_key and not path.startswith("/v1/chat/"):
                        expected = 403  # her own chat, outside the key's project
                    assert r.status_code == expected, (
                        f"{method.upper()} {path} as bob ({auth}): {r.status_code} {r.text[:200]}"
                    )
                    if expected == 403:  # says which limit applies
                        assert r.json()["error"]["code"] == "project_scope", r.text
                    checked += 1
        assert checked >= 16

        # list and search routes return only bob's own data
        assert (await bob.get("/api/conversations")).json()["items"] == []
        assert (await bob.get("/api/assistants")).json()["items"] == []
        assert (await bob.get("/api/assistant-gallery")).json()["items"] == []
        assert (await bob.get("/api/projects")).json()["items"] == []
        # alice's assistant is no model of bob's over /v1 either
        bob_auth = {"Authorization": f"Bearer {bob_key}"}
        bob_models = (await bob.get("/v1/models", headers=bob_auth)).json()["data"]
        assert not any(m["id"].startswith("assistant/") for m in bob_models)
        stolen = await bob.post(
            "/v1/chat/completions",
            json={"model": "assistant/vault", "messages": [{"role": "user", "content": "hi"}]},
            headers=bob_auth,
        )
        assert stolen.status_code == 404, stolen.text
        assert (await bob.get("/api/search", params={"q": "secret"})).json()["items"] == []
        assert all(k["id"] != key for k in (await bob.get("/api/keys")).json()["items"])
        assert (await bob.get("/api/files")).json()["items"] == []
        assert (await bob.get("/api/collections")).json()["items"] == []
        assert (await bob.get("/api/images")).json()["items"] == []
        assert (await bob.get("/api/images", params={"conversation_id": conv})).json()[
            "items"
        ] == []
        found = await bob.post("/api/knowledge/search", json={"query": "secret plans"})
        assert found.json()["items"] == []
        assert (await bob.get("/api/memories", params={"q": "pelican"})).json()["items"] == []
        bob_conv = (await bob.post("/api/conversations", json={})).json()["id"]
        asked = await bob.post(
            f"/api/conversations/{bob_conv}/messages", json={"content": "my vault word pelican?"}
        )
        assert dict(parse_sse(asked.text))["done"]["message"]["sources"] == []
        # usage (every model call: alice's chats, /v1 calls...) is summed per user only
        rows = await ledger_rows(app)
        bobs = [row for row in rows if row.user_id == bob_user["id"]]
        mine = (await alice.get("/api/me/usage")).json()
        theirs = (await bob.get("/api/me/usage")).json()
        assert sum(m["requests"] for m in mine["by_model"]) == len(rows) - len(bobs) >= 3
        assert sum(m["requests"] for m in theirs["by_model"]) == len(bobs) >= 1
        assert [k["key"] for k in theirs["by_key"]] == [None]  # bob used no key
        # admin routes are closed to bob
        assert (await bob.get("/api/admin/users")).status_code == 403
        assert (
            await bob.patch(f"/api/admin/users/{bob_user['id']}", json={"role": "admin"})
        ).status_code == 403
        # budgets (parley.budgets): alice's own budget (she is the admin) is not in bob's
        # view, and bob can neither change nor delete it by its id
        alice_id = (await alice.get("/api/auth/me")).json()["user"]["id"]
        budget = await alice.post(
            "/api/admin/budgets",
            json={"scope": "user", "scope_id": alice_id, "kind": "cost", "amount": 100},
        )
        assert budget.status_code == 201, budget.text
        budget_id = budget.json()["id"]
        assert (await bob.get("/api/me/budgets")).json()["items"] == []
        assert (await bob.get("/api/admin/budgets")).status_code == 403
        limit = {"scope": "user", "scope_id": bob_user["id"], "kind": "cost", "amount": 1e9}
        assert (await bob.post("/api/admin/budgets", json=limit)).status_code == 403
        assert (await bob.patch(f"/api/admin/budgets/{budget_id}", json=limit)).status_code == 403
        assert (await bob.delete(f"/api/admin/budgets/{budget_id}")).status_code == 403
        assert [b["id"] for b in (await alice.get("/api/me/budgets")).json()["items"]] == [
            budget_id
        ]
        # and alice's data is intact
        stored = await alice.get(
            f"/v1/chat/completions/{ids['completion_id']}",
            headers={"Authorization": f"Bearer {alice_key}"},
        )
        assert stored.status_code == 200 and stored.json()["metadata"] is None
        view = (await alice.get(f"/api/conversations/{conv}")).json()
        assert view["messages"][0]["content"] == "secret plans"


def _body_for(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path.endswith("/variations"):
        return {}
    if path.endswith(("/images", "/edits")):
        return {"prompt": "x"}
    if path.endswith("/shares"):
        return {"kind": "everyone", "role": "edit"}
    if "/shares/" in path:
        return {"role": "edit"}
    if path.endswith("/owner"):
        return {"email": "bob@example.com"}
    if path.endswith("/duplicate"):
        return {}
    if path.startswith("/api/projects/"):
        if path.endswith("/members"):
            return {"email": "bob@example.com", "role": "editor"}
        if path.endswith("/chats"):
            return {}
        return {"name": "x"}
    if path.startswith("/api/assistants/"):
        if path.endswith("/versions"):
            return {"config": {"name": "x"}}
        if path.endswith("/publish"):
            return {"version": 1}
        if path.endswith(("/chats", "/restore")):
            return {}
        return {"slug": "x"}
    if path.startswith("/v1/conversations/"):
        if path.endswith("/items"):
            return {"items": [{"role": "user", "content": "x"}]}
        return {"metadata": {"k": "v"}}
    if path.startswith("/v1/responses/"):
        return {}
    if path.startswith("/v1/chat/completions/"):
        return {"metadata": {"x": "y"}}
    if path.endswith("/branch"):
        return {"message_id": body["message_id"]}
    if path.endswith(("/messages", "/edit")):
        return {"content": body["content"]}
    if path.startswith("/api/messages/"):
        return {"feedback": body["feedback"]}
    if path.endswith(("/regenerate", "/stop")):
        return {}
    if "/tool-calls/" in path:
        return {"approve": True}
    if path.startswith("/api/memories/"):
        return {"text": "x"}
    return {"title": body["title"]}


async def _image_id(alice: Any, conv: str) -> str:
    """An image alice made in her chat with the composer's image mode (she is the
    admin, so she adds the scripted provider first)."""
    from parley.images.testing import ScriptedImages

    with ScriptedImages() as server:
        added = await alice.post(
            "/api/admin/images/providers",
            json={"name": "drawer", "kind": "openai", "base_url": server.base_url},
        )
        assert added.status_code == 201, added.text
        made = await alice.post(f"/api/conversations/{conv}/images", json={"prompt": "secret"})
        assert made.status_code == 201, made.text
    return str(made.json()["items"][0]["id"])


async def _assistant_ids(alice: Any) -> dict[str, str]:
    """An assistant of alice's with a chat (parley.assistants)."""
    made = await alice.post(
        "/api/assistants", json={"config": {"name": "Vault", "instructions": "secret"}}
    )
    assert made.status_code == 201, made.text
    started = await alice.post(f"/api/assistants/{made.json()['id']}/chats", json={})
    assert started.status_code == 201, started.text
    return {"assistant_id": made.json()["id"], "number": "1"}


async def _sharing_ids(alice: Any, ids: dict[str, str]) -> dict[str, str]:
    """Alice's assistant shared with a group bob is not in, and a project of hers
    with that group as a member, her chat and her file in it."""
    group = await alice.post("/api/admin/groups", json={"name": "vault crew"})
    assert group.status_code == 201, group.text
    share = await alice.post(
        f"/api/assistants/{ids['assistant_id']}/shares",
        json={"kind": "group", "group_id": group.json()["id"], "role": "edit"},
    )
    assert share.status_code == 201, share.text
    project = await alice.post(
        "/api/projects", json={"name": "Heist", "instructions": "secret", "memory": "project"}
    )
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    member = await alice.post(
        f"/api/projects/{project_id}/members",
        json={"group_id": group.json()["id"], "role": "editor"},
    )
    assert member.status_code == 201, member.text
    moved = await alice.put(f"/api/projects/{project_id}/chats/{ids['conversation_id']}")
    assert moved.status_code == 204, moved.text
    added = await alice.put(f"/api/projects/{project_id}/files/{ids['file_id']}")
    assert added.status_code == 204, added.text
    return {
        "share_id": share.json()["id"],
        "project_id": project_id,
        "member_id": member.json()["id"],
    }


async def _responses_ids(alice: Any, conv: str) -> dict[str, str]:
    """A response made with alice's key, and an item of her web chat (``conv``)."""
    key = (await alice.post("/api/keys", json={"name": "api"})).json()["key"]
    made = await alice.post(
        "/v1/responses",
        json={"model": "scripted/scripted", "input": "secret response"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert made.status_code == 200, made.text
    items = await alice.get(
        f"/v1/conversations/{conv}/items", headers={"Authorization": f"Bearer {key}"}
    )
    assert items.status_code == 200, items.text
    return {"response_id": made.json()["id"], "item_id": items.json()["data"][0]["id"]}


async def _knowledge_ids(alice: Any, conv: str) -> dict[str, str]:
    """A file (attached to ``conv``, indexed), one of its passages, and a collection."""
    collection = (await alice.post("/api/collections", json={"name": "c"})).json()["id"]
    upload = await alice.post(
        "/api/files",
        files={"file": ("plans.txt", b"secret plans for the heist", "text/plain")},
        data={"conversation_id": conv},
    )
    file_id = upload.json()["id"]
    for _ in range(400):
        if (await alice.get(f"/api/files/{file_id}")).json()["status"] == "ready":
            break
        await asyncio.sleep(0.05)
    hits = await alice.post("/api/knowledge/search", json={"query": "secret plans"})
    chunk_id = str(hits.json()["items"][0]["chunk_id"])
    return {"file_id": file_id, "chunk_id": chunk_id, "collection_id": collection}


async def _memory_ids(alice: Any, memory_id: str) -> dict[str, str]:
    """A version in the memory's history (an edit keeps the old text) and a pending
    request to forget it (asked in a chat, waiting for alice's confirmation)."""
    edited = await alice.patch(
        f"/api/memories/{memory_id}", json={"text": "My vault word is heron"}
    )
    assert edited.status_code == 200, edited.text
    history = (await alice.get(f"/api/memories/{memory_id}/history")).json()
    version_id = str(history["items"][0]["id"])
    conv = (await alice.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    asked = await alice.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "Can you forget my vault word?"},
    )
    sources = dict(parse_sse(asked.text))["done"]["message"]["sources"]
    requests = [s["request"] for s in sources if s.get("action") == "forget_proposed"]
    assert requests, sources
    return {"version_id": version_id, "request_id": str(requests[0])}


async def _sandbox_output_id(app: Any, client: Any, conv: str) -> str:
    """A code interpreter output owned by ``client``'s user, stored as the tool would."""
    owner = (await client.get("/api/auth/me")).json()["user"]["id"]
    store = app.state.features["sandbox"].store
    return str((await store.save(owner, conv, "plans.csv", b"secret plans")).id)
