"""Accounts, sessions, CSRF, API keys, rate limits and problem documents."""

from __future__ import annotations

from typing import Any

from apihelpers import Client, make_client, signup


async def test_first_account_is_admin_and_second_is_not(app: Any) -> None:
    async with make_client(app) as first, make_client(app) as second:
        config = (await first.get("/api/auth/config")).json()
        assert config == {"signup": "open", "has_users": False, "currency": "USD"}
        assert (await signup(first, "root@example.com"))["role"] == "admin"
        assert (await signup(second, "bob@example.com"))["role"] == "user"


async def test_session_cookie_is_httponly_and_csrf_cookie_is_readable(client: Client) -> None:
    response = await client.post(
        "/api/auth/signup", json={"email": "a@example.com", "password": "long enough", "name": "A"}
    )
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("parley_session="))
    csrf = next(c for c in cookies if c.startswith("parley_csrf="))
    assert "HttpOnly" in session and "SameSite=lax" in session
    assert "HttpOnly" not in csrf
    assert (await client.get("/api/auth/me")).json()["user"]["email"] == "a@example.com"


async def test_cookie_write_without_csrf_token_is_refused(client: Client, user: Any) -> None:
    response = await client.post("/api/conversations", json={}, headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "csrf_failed"
    # the real token works
    assert (await client.post("/api/conversations", json={})).status_code == 201


async def test_wrong_password_and_rate_limit(app: Any, settings: Any) -> None:
    async with make_client(app) as c:
        await signup(c, "r@example.com", "right password")
    async with make_client(app) as c:
        for _ in range(settings.login_attempts_per_window):
            bad = await c.post(
                "/api/auth/login", json={"email": "r@example.com", "password": "nope nope"}
            )
            assert bad.status_code == 401
            assert bad.json()["detail"] == "Wrong email or password."
        locked = await c.post(
            "/api/auth/login", json={"email": "r@example.com", "password": "right password"}
        )
        assert locked.status_code == 429
        assert "Retry-After" in locked.headers


async def test_logout_ends_session(client: Client, user: Any) -> None:
    assert (await client.post("/api/auth/logout")).status_code == 204
    after = await client.get("/api/auth/me")
    assert after.status_code == 401
    assert after.json()["code"] == "not_signed_in"


async def test_api_key_shown_once_works_only_in_authorization_header(
    app: Any, client: Client, user: Any
) -> None:
    created = (await client.post("/api/keys", json={"name": "laptop"})).json()
    key = created["key"]
    assert key.startswith("pk-")
    listed = (await client.get("/api/keys")).json()["items"]
    assert listed[0]["prefix"] == key[:10] and "key" not in listed[0]
    async with make_client(app) as bare:
        ok = await bare.get("/api/conversations", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        # the same key in an alternate header is ignored
        alt = await bare.get("/api/conversations", headers={"x-api-key": key})
        assert alt.status_code == 401
        # revoked keys stop working at once
        assert (await client.delete(f"/api/keys/{created['id']}")).status_code == 204
        gone = await bare.get("/api/conversations", headers={"Authorization": f"Bearer {key}"})
        assert gone.status_code == 401
        assert gone.json()["code"] == "invalid_api_key"
    listed = (await client.get("/api/keys")).json()["items"]
    assert listed[0]["last_used_at"] is not None and listed[0]["revoked_at"] is not None


async def test_disabled_user_loses_session_and_keys(app: Any) -> None:
    async with make_client(app) as admin, make_client(app) as bob:
        await signup(admin, "admin@example.com")
        bob_user = await signup(bob, "bob@example.com")
        key = (await bob.post("/api/keys", json={})).json()["key"]
        r = await admin.patch(f"/api/admin/users/{bob_user['id']}", json={"status": "disabled"})
        assert r.status_code == 200
        assert (await bob.get("/api/auth/me")).status_code == 401
        r = await bob.get("/api/conversations", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401


async def test_signup_modes(app: Any) -> None:
    async with make_client(app) as admin, make_client(app) as other:
        await signup(admin, "admin@example.com")
        await admin.patch("/api/admin/settings", json={"signup": "closed"})
        closed = await other.post(
            "/api/auth/signup", json={"email": "x@example.com", "password": "12345678"}
        )
        assert closed.status_code == 403 and closed.json()["code"] == "signup_closed"
        await admin.patch("/api/admin/settings", json={"signup": "approval"})
        pending = await other.post(
            "/api/auth/signup", json={"email": "x@example.com", "password": "12345678"}
        )
        assert pending.status_code == 202 and pending.json()["user"]["status"] == "pending"
        login = await other.post(
            "/api/auth/login", json={"email": "x@example.com", "password": "12345678"}
        )
        assert login.status_code == 403 and login.json()["code"] == "pending"


async def test_problem_documents(client: Client, user: Any, settings: Any) -> None:
    bad = await client.post("/api/conversations", json={"title": 5, "nope": 1})
    assert bad.status_code == 422
    body = bad.json()
    assert body["status"] == 422 and body["code"] == "invalid_request" and body["detail"]
    assert (await client.get("/api/nowhere")).json()["status"] == 404
    big = "x" * (settings.max_body_bytes + 10)
    too_big = await client.post(
        "/api/conversations", content=big, headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "body_too_large"
    weak = await client.post(
        "/api/me/password", json={"current_password": "correct horse", "new_password": "x"}
    )
    assert weak.status_code == 422 and "at least" in weak.json()["detail"]


async def test_security_headers_and_openapi(client: Client) -> None:
    response = await client.get("/api/health")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    spec = (await client.get("/openapi.json")).json()
    assert "/api/conversations/{conversation_id}/messages" in spec["paths"]
    assert "/v1/chat/completions" in spec["paths"]


async def test_settings_export_and_delete_account(client: Client, user: Any) -> None:
    r = await client.patch(
        "/api/me",
        json={"timezone": "Europe/Paris", "about_me": "I cook.", "preferences": {"theme": "dark"}},
    )
    assert r.json()["user"]["timezone"] == "Europe/Paris"
    assert (await client.patch("/api/me", json={"timezone": "Mars/Olympus"})).status_code == 422
    assert (await client.patch("/api/me", json={"timezone": "Europe"})).status_code == 422
    await client.post("/api/conversations", json={"title": "Exported"})
    export = await client.get("/api/me/export")
    assert "attachment" in export.headers["content-disposition"]
    data = export.json()
    assert data["user"]["about_me"] == "I cook." and data["conversations"][0]["title"] == "Exported"
    assert "password_hash" not in str(data)
    # the only admin cannot delete themselves
    assert (
        await client.request("DELETE", "/api/me", json={"password": "correct horse"})
    ).status_code == 409


async def test_docs_page_works_offline(client: Client) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/static-docs/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    asset = await client.get("/static-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
