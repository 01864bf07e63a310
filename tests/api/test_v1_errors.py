"""Every ``/v1`` error is OpenAI-shaped (``{"error": {message, type, param, code}}``),
so the official SDK raises its own exception classes with a readable message;
the native API keeps its problem documents."""

from __future__ import annotations

import httpx
import openai
import pytest

from parley.errors import ProviderRateLimited, ProviderTimeout
from parley.providers.scripted import Reply, ScriptedModel
from v1helpers import browser, make_key

HI = [{"role": "user", "content": "hi"}]


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def test_a_missing_or_wrong_key_is_an_authentication_error(live: tuple[str, str]) -> None:
    base, _key = live
    with pytest.raises(openai.AuthenticationError) as wrong:
        _sdk(base, "pk-wrong").models.list()
    assert wrong.value.status_code == 401
    assert wrong.value.type == "authentication_error" and wrong.value.code == "invalid_api_key"
    assert "not valid" in wrong.value.message

    raw = httpx.get(base + "/models")  # no Authorization at all
    assert raw.status_code == 401
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.json() == {
        "error": {
            "message": "This endpoint takes a Parley API key: 'Authorization: Bearer pk-...'.",
            "type": "authentication_error",
            "param": None,
            "code": "missing_api_key",
        }
    }


def test_a_revoked_key_is_refused(live: tuple[str, str]) -> None:
    base, _key = live
    with browser(base) as web:
        made = make_key(web, name="short-lived")
        assert web.delete(f"/api/keys/{made['id']}").status_code == 204
    with pytest.raises(openai.AuthenticationError) as info:
        _sdk(base, made["key"]).models.list()
    assert "revoked" in info.value.message


def test_unknown_model_is_not_found_naming_the_param(live: tuple[str, str]) -> None:
    base, key = live
    with pytest.raises(openai.NotFoundError) as info:
        _sdk(base, key).chat.completions.create(model="nope", messages=HI)  # type: ignore[arg-type]
    assert info.value.type == "not_found_error" and info.value.code == "model_not_found"
    assert info.value.param == "model"
    assert "GET /v1/models" in info.value.message


def test_an_invalid_request_is_a_bad_request_naming_the_field(live: tuple[str, str]) -> None:
    base, key = live
    with pytest.raises(openai.BadRequestError) as info:
        _sdk(base, key).chat.completions.create(
            model="scripted/scripted",
            messages=[{"role": "wizard", "content": "x"}],  # type: ignore[list-item, misc]
        )
    assert info.value.status_code == 400
    assert info.value.type == "invalid_request_error"
    assert info.value.param == "messages[0].role"
    assert "messages[0].role" in info.value.message

    with pytest.raises(openai.BadRequestError) as empty:
        _sdk(base, key).chat.completions.create(model="scripted/scripted", messages=[])
    assert empty.value.param == "messages"


def test_a_key_without_the_scope_is_a_permission_error(live: tuple[str, str]) -> None:
    base, _key = live
    with browser(base) as web:
        embed_only = make_key(web, scopes={"endpoints": ["embeddings"]})["key"]
    with pytest.raises(openai.PermissionDeniedError) as info:
        _sdk(base, embed_only).chat.completions.create(model="scripted/scripted", messages=HI)
    assert info.value.type == "permission_error" and info.value.code == "key_scope"
    assert "chat" in info.value.message and "embeddings" in info.value.message


def test_provider_failures_are_rate_limit_and_server_errors(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    client = _sdk(base, key)
    scripted.enqueue(Reply(error=ProviderRateLimited("The provider says: slow down.")))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="scripted/scripted", messages=HI)
    assert limited.value.type == "rate_limit_error"
    assert limited.value.code == "provider_rate_limited"
    scripted.enqueue(Reply(error=ProviderTimeout("The provider did not answer in time.")))
    with pytest.raises(openai.InternalServerError) as slow:
        client.chat.completions.create(model="scripted/scripted", messages=HI)
    assert slow.value.status_code == 504 and slow.value.type == "server_error"
    assert slow.value.message.endswith("The provider did not answer in time.")


def test_unknown_routes_and_big_bodies_are_openai_shaped_too(live: tuple[str, str]) -> None:
    base, key = live
    auth = {"Authorization": f"Bearer {key}"}
    missing = httpx.get(base + "/no-such-thing", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    huge = httpx.post(
        base + "/chat/completions",
        headers=auth,
        content=b'{"model": "x", "messages": [], "pad": "' + b"x" * 2_000_000 + b'"}',
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "body_too_large"
    assert huge.json()["error"]["type"] == "invalid_request_error"


def test_the_native_api_keeps_problem_documents(live: tuple[str, str]) -> None:
    base, _key = live
    with browser(base) as web:
        missing = web.get("/api/conversations/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "not_found" and "error" not in missing.json()
