"""API keys limited to projects, through the official openai SDK: a request runs in
the project (its instructions, files and project-only memory apply, as in a native
chat there), never reaches a chat outside it, and is refused with a problem that
says which limit applies; access is asked on every request."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from apihelpers import last_turn_request
from parley.providers.scripted import ScriptedModel
from v1helpers import browser, make_key, ready_file


def _sdk(base: str, key: str, project: str | None = None) -> openai.OpenAI:
    headers = {"X-Parley-Project": project} if project else None
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0, default_headers=headers)


def _project(web: httpx.Client, **fields: Any) -> str:
    made = web.post("/api/projects", json={"name": "Garden"} | fields)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _prompt(scripted: ScriptedModel) -> str:
    return str(last_turn_request(scripted).messages[0].content)


def _detail(exc: openai.APIStatusError) -> str:
    """The refusal's message (``/v1`` errors are OpenAI-shaped problem documents)."""
    return str(exc.response.json()["error"]["message"])


def test_a_project_key_answers_with_the_projects_context(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, plain_key = live
    with browser(base) as web:
        assert web.post("/api/memories", json={"text": "My favourite colour is green"}).is_success
        project = _project(web, instructions="Answer as a master gardener.", memory="project")
        seeds = ready_file(web, "seeds.txt", b"The tomato seeds go in the blue shed.")
        assert web.put(f"/api/projects/{project}/files/{seeds}").status_code == 204
        key = make_key(web, scopes={"projects": [project]})
        assert key["scopes"]["projects"] == [project]
        listed = [k for k in web.get("/api/keys").json()["items"] if k["id"] == key["id"]]
        assert listed[0]["scopes"]["projects"] == [project]

    # the key's only project: no header needed
    client = _sdk(base, key["key"])
    first = client.responses.create(
        model="scripted/scripted", input="Where are the tomato seeds? My favourite colour?"
    )
    prompt = _prompt(scripted)
    assert "master gardener" in prompt and "blue shed" in prompt
    assert "green" not in prompt  # project-only memory: the user's global memory stays out
    second = client.responses.create(
        model="scripted/scripted", input="And the beans?", previous_response_id=first.id
    )
    assert second.output_text
    with browser(base) as web:
        chats = web.get(f"/api/projects/{project}/chats").json()["items"]
        assert len(chats) == 1  # both answers in one chat, in the project

    # the same question with an unlimited key that names no project: none of it
    _sdk(base, plain_key).responses.create(
        model="scripted/scripted", input="Where are the tomato seeds? My favourite colour?"
    )
    prompt = _prompt(scripted)
    assert "master gardener" not in prompt and "blue shed" not in prompt and "green" in prompt
    # ... and naming the project, it works there as the project key does
    _sdk(base, plain_key, project).responses.create(
        model="scripted/scripted", input="Where are the tomato seeds?"
    )
    assert "blue shed" in _prompt(scripted)

    # a Conversation made with the key is in the project and continues there
    conv = client.conversations.create(items=[{"role": "user", "content": "Hello garden"}])
    client.responses.create(model="scripted/scripted", input="Seeds?", conversation=conv.id)
    assert "master gardener" in _prompt(scripted)

    # Chat Completions with a plain model is a relay: it cannot carry the project
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model="scripted/scripted", messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.code == "project_scope"
    assert "Responses API" in _detail(refused.value)


def test_a_project_key_is_refused_outside_its_project(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, plain_key = live
    with browser(base) as web:
        garden = _project(web)
        shed = _project(web, name="Shed")
        key = make_key(web, scopes={"projects": [garden]})["key"]
        both = make_key(web, scopes={"projects": [garden, shed]})["key"]
        bad = web.post("/api/keys", json={"name": "x", "scopes": {"projects": ["nope"]}})
        assert bad.status_code == 422 and "nope" in bad.json()["detail"]
        outside = web.post("/api/conversations", json={"title": "Private"}).json()["id"]
    plain = _sdk(base, plain_key)
    elsewhere = plain.responses.create(model="scripted/scripted", input="a private question")
    in_shed = _sdk(base, plain_key, shed).responses.create(model="scripted/scripted", input="x")
    client = _sdk(base, key)

    # another project named in the header: the key's project limit
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _sdk(base, key, shed).responses.create(model="scripted/scripted", input="hi")
    assert refused.value.code == "project_scope"
    assert garden in _detail(refused.value)
    # chats and responses outside the project: never read or continued
    calls = [
        lambda: client.conversations.retrieve(outside),
        lambda: client.conversations.items.list(outside),
        lambda: client.conversations.delete(outside),
        lambda: client.responses.create(
            model="scripted/scripted", input="more", conversation=outside
        ),
        lambda: client.responses.retrieve(elsewhere.id),
        lambda: client.responses.input_items.list(elsewhere.id),
        lambda: client.responses.delete(in_shed.id),
        lambda: client.responses.create(
            model="scripted/scripted", input="more", previous_response_id=elsewhere.id
        ),
    ]
    for call in calls:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            call()
        assert refused.value.code == "project_scope"
        detail = _detail(refused.value)
        assert garden in detail and "not in it" in detail
        assert "http" not in detail and "select" not in detail.lower()
    assert plain.responses.retrieve(elsewhere.id).id == elsewhere.id  # untouched

    # a key of two projects names one; with one named it works
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _sdk(base, both).responses.create(model="scripted/scripted", input="hi")
    assert "X-Parley-Project" in _detail(refused.value)
    assert _sdk(base, both, shed).responses.create(model="scripted/scripted", input="hi").id

    # the owner's access ends (the project is deleted): refused at the next request
    assert client.responses.create(model="scripted/scripted", input="still here?").id
    with browser(base) as web:
        assert web.delete(f"/api/projects/{garden}").status_code == 204
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model="scripted/scripted", input="and now?")
    assert gone.value.code == "project_not_found"


def test_a_member_who_leaves_a_project_loses_the_key_at_once(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, _ = live
    with httpx.Client(base_url=base.removesuffix("/v1")) as c:
        made = c.post("/api/auth/signup", json={"email": "bob@example.com", "password": "12345678"})
        assert made.status_code == 201, made.text
    with browser(base) as owner:
        project = _project(owner, instructions="Answer as a master gardener.")
        member = owner.post(
            f"/api/projects/{project}/members", json={"email": "bob@example.com", "role": "editor"}
        )
        assert member.status_code == 201, member.text
    with browser(base, "bob@example.com", "12345678") as bob:
        key = make_key(bob, scopes={"projects": [project]})["key"]
    client = _sdk(base, key)
    client.responses.create(model="scripted/scripted", input="hello")
    assert "master gardener" in _prompt(scripted)
    with browser(base) as owner:
        removed = owner.delete(f"/api/projects/{project}/members/{member.json()['id']}")
        assert removed.status_code == 204, removed.text
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model="scripted/scripted", input="hello again")
    assert gone.value.code == "project_not_found"
