"""``store: true`` keeps a chat completion as a Parley chat, and the stored-completions
routes read it back in OpenAI's shapes, for the key that made it only."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from parley.providers.scripted import Reply, ScriptedModel
from v1helpers import browser, make_key


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def test_a_stored_completion_is_a_chat_and_can_be_read_back(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    client = _sdk(base, key)
    scripted.enqueue("Paris is the capital of France.")
    made = client.chat.completions.create(
        model="scripted/scripted",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        store=True,
        metadata={"project": "geo", "run": "1"},
    )
    got = client.chat.completions.retrieve(made.id)
    assert got.id == made.id and got.choices[0].message.content == "Paris is the capital of France."
    assert got.metadata == {"project": "geo", "run": "1"} and got.model == "scripted/scripted"
    assert got.usage is not None and got.usage.completion_tokens > 0
    messages = client.chat.completions.messages.list(made.id)
    assert [(m.role, m.content) for m in messages.data] == [
        ("system", "Answer briefly."),
        ("user", "What is the capital of France?"),
    ]
    assert messages.data[0].id == f"{made.id}-0"

    with browser(base) as web:  # the same exchange is a chat in the sidebar
        chats = web.get("/api/conversations").json()["items"]
        assert [c["title"] for c in chats] == ["What is the capital of France?"]
        chat = web.get(f"/api/conversations/{chats[0]['id']}").json()
        usage = web.get("/api/me/usage").json()
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris is the capital of France."),
    ]
    assert chat["messages"][1]["model"] == "scripted/scripted"
    assert chat["messages"][1]["output_tokens"] == got.usage.completion_tokens
    assert usage["by_model"][0]["requests"] == 1

    updated = client.chat.completions.update(made.id, metadata={"project": "geo", "run": "2"})
    assert updated.metadata == {"project": "geo", "run": "2"}
    deleted = client.chat.completions.delete(made.id)
    assert deleted.deleted and deleted.id == made.id
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(made.id)
    with browser(base) as web:
        assert web.get("/api/conversations").json()["items"] == []


def test_a_streamed_completion_is_readable_once_the_stream_ends(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    scripted.enqueue(Reply(text="one two three", reasoning="thinking", chunk_size=1))

    async def run() -> tuple[str, str, str]:
        async with openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="scripted/scripted",
                messages=[{"role": "user", "content": "count"}],
                stream=True,
                store=True,
            )
            ident, text = "", ""
            async for chunk in stream:
                ident = chunk.id
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
            stored = await client.chat.completions.retrieve(ident)  # at once: no waiting
            return ident, text, stored.choices[0].message.content or ""

    ident, text, stored = asyncio.run(run())
    assert ident.startswith("chatcmpl-") and text == stored == "one two three"


def test_listing_pages_orders_and_filters(live: tuple[str, str], scripted: ScriptedModel) -> None:
    base, key = live
    client = _sdk(base, key)
    ids = []
    for n, tag in enumerate(["a", "b", "a"]):
        scripted.enqueue(f"answer {n}")
        ids.append(
            client.chat.completions.create(
                model="scripted/scripted",
                messages=[{"role": "user", "content": f"question {n}"}],
                store=True,
                metadata={"tag": tag},
            ).id
        )
        time.sleep(0.01)
    client.chat.completions.create(  # not stored
        model="scripted/scripted", messages=[{"role": "user", "content": "x"}]
    )
    first = client.chat.completions.list(limit=2)
    assert [c.id for c in first.data] == ids[:2] and first.has_more
    rest = client.chat.completions.list(limit=2, after=first.data[-1].id)
    assert [c.id for c in rest.data] == ids[2:] and not rest.has_more
    newest = client.chat.completions.list(order="desc", limit=1)
    assert [c.id for c in newest.data] == [ids[2]]
    tagged = client.chat.completions.list(metadata={"tag": "a"})
    assert [c.id for c in tagged.data] == [ids[0], ids[2]]
    assert [c.id for c in client.chat.completions.list(model="scripted/scripted")] == ids
    assert client.chat.completions.list(model="scripted/other").data == []


def test_another_key_or_user_gets_404(live: tuple[str, str], scripted: ScriptedModel) -> None:
    base, key = live
    made = _sdk(base, key).chat.completions.create(
        model="scripted/scripted", messages=[{"role": "user", "content": "mine"}], store=True
    )
    with browser(base) as web:
        second_key = make_key(web, name="second")["key"]
    with httpx.Client(base_url=base.removesuffix("/v1")) as mallory:
        joined = mallory.post(
            "/api/auth/signup", json={"email": "mallory@example.com", "password": "12345678"}
        )
        assert joined.status_code == 201, joined.text
        csrf = {"X-CSRF-Token": mallory.cookies["parley_csrf"]}
        theirs = mallory.post("/api/keys", json={"name": "m"}, headers=csrf).json()["key"]
    others = [second_key, theirs]
    for other in others:
        client = _sdk(base, other)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.update(made.id, metadata={"x": "y"})
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.messages.list(made.id)
        assert client.chat.completions.list().data == []
    assert _sdk(base, key).chat.completions.retrieve(made.id).id == made.id  # intact


def test_bad_metadata_is_refused(live: tuple[str, str]) -> None:
    base, key = live
    with pytest.raises(openai.BadRequestError) as info:
        _sdk(base, key).chat.completions.create(
            model="scripted/scripted",
            messages=[{"role": "user", "content": "x"}],
            store=True,
            metadata={f"k{i}": "v" for i in range(17)},
        )
    assert info.value.param == "metadata" and "16" in info.value.message
