"""API keys with an expiry and scopes: made in the keys API (and the CLI), shown in
the list, enforced on ``/v1`` by endpoint group and by model, refused by the
native API when limited."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest

import parley
from parley.providers.scripted import ScriptedModel
from v1helpers import browser, make_key

HI = [{"role": "user", "content": "hi"}]
SOURCE = str(Path(parley.__file__).resolve().parents[1])


@pytest.fixture
def scripted_models(scripted: ScriptedModel) -> dict[str, ScriptedModel]:
    """Two models, so a key can be limited to one of them."""
    return {"scripted": scripted, "other": ScriptedModel(default="From the other model.")}


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def test_keys_show_their_expiry_and_scopes(live: tuple[str, str]) -> None:
    base, _key = live
    later = datetime.now(UTC) + timedelta(days=30)
    with browser(base) as web:
        p1 = web.post("/api/projects", json={"name": "P"}).json()["id"]  # one of the user's
        made = make_key(
            web,
            name="ci robot",
            expires_at=later.isoformat(),
            scopes={
                "endpoints": ["chat", "models"],
                "models": ["scripted/other"],
                "assistants": ["a1"],
                "projects": [p1],
            },
        )
        plain = make_key(web, name="everything")
        listed = {k["name"]: k for k in web.get("/api/keys").json()["items"]}
        past = web.post("/api/keys", json={"name": "x", "expires_at": "2020-01-01T00:00:00Z"})
        unknown = web.post("/api/keys", json={"name": "x", "scopes": {"endpoints": ["admin"]}})
    assert made["key"].startswith("pk-") and made["expires_at"].startswith(later.date().isoformat())
    shown = listed["ci robot"]
    assert shown["expires_at"] == made["expires_at"] and "key" not in shown
    assert shown["scopes"] == {
        "endpoints": ["chat", "models"],
        "models": ["scripted/other"],
        "assistants": ["a1"],
        "projects": [p1],
    }
    assert listed["everything"]["expires_at"] is None
    assert (
        listed["everything"]["scopes"]
        == plain["scopes"]
        == {"endpoints": [], "models": [], "assistants": [], "projects": []}
    )
    assert past.status_code == 422 and "past" in past.json()["detail"]
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_request"


def test_an_expired_key_is_refused_saying_when(live: tuple[str, str]) -> None:
    base, _key = live
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    with browser(base) as web:
        made = make_key(web, name="brief", expires_at=soon.isoformat())
    client = _sdk(base, made["key"])
    assert client.models.list().data  # works until it expires
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.3)
    with pytest.raises(openai.AuthenticationError) as info:
        client.models.list()
    assert info.value.code == "api_key_expired"
    assert f"expired on {soon:%Y-%m-%d %H:%M} UTC" in info.value.message


def test_endpoint_and_model_scopes_are_enforced(live: tuple[str, str]) -> None:
    base, _key = live
    with browser(base) as web:
        other_only = make_key(
            web, scopes={"endpoints": ["chat", "models"], "models": ["scripted/other"]}
        )["key"]
        chat_only = make_key(web, scopes={"endpoints": ["chat"]})["key"]
    limited = _sdk(base, other_only)
    assert [m.id for m in limited.models.list()] == ["scripted/other"]
    answer = limited.chat.completions.create(model="scripted/other", messages=HI)
    assert answer.choices[0].message.content == "From the other model."
    with pytest.raises(openai.PermissionDeniedError) as refused:
        limited.chat.completions.create(model="scripted/scripted", messages=HI)
    assert refused.value.code == "model_not_allowed" and refused.value.param == "model"
    assert "scripted/scripted" in refused.value.message

    chat = _sdk(base, chat_only)
    assert chat.chat.completions.create(model="scripted/scripted", messages=HI).choices
    with pytest.raises(openai.PermissionDeniedError) as no_models:
        chat.models.list()
    assert "models" in no_models.value.message


def test_a_limited_key_is_refused_by_the_native_api(live: tuple[str, str]) -> None:
    import httpx

    base, key = live
    root = base.removesuffix("/v1")
    with browser(base) as web:
        limited = make_key(web, scopes={"endpoints": ["chat"]})["key"]
    refused = httpx.get(root + "/api/conversations", headers={"Authorization": f"Bearer {limited}"})
    assert refused.status_code == 403 and refused.json()["code"] == "key_scope"
    allowed = httpx.get(root + "/api/conversations", headers={"Authorization": f"Bearer {key}"})
    assert allowed.status_code == 200


@pytest.mark.slow
def test_keys_with_expiry_and_scopes_from_the_command_line(tmp_path: Path) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parley.cli", "--data-dir", str(tmp_path / "data"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            # the parley this test imports (a worktree's, not the venv's editable one)
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": SOURCE},
            timeout=120,
            check=False,
        )

    assert run("users", "create", "root@example.com", "--password", "long password").returncode == 0
    made = run(
        "keys",
        "create",
        "--user",
        "root@example.com",
        "--name",
        "robot",
        "--expires-days",
        "7",
        "--scope",
        "chat,embeddings",
        "--scope",
        "model:scripted/scripted",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("pk-")
    listed = run("keys", "list", "--user", "root@example.com").stdout
    expiry = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%d")
    assert f"expires {expiry}" in listed
    assert "endpoints: chat,embeddings; models: scripted/scripted" in listed
    bad = run("keys", "create", "--user", "root@example.com", "--scope", "everything")
    assert bad.returncode == 2 and "Unknown scope 'everything'" in bad.stderr
