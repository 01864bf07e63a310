"""The security review's findings (issue 11), each kept as the attack that found it.

- bodies: nothing is read before the caller is known (bytes counted where the
  app receives them), uploads in flight are capped, an aborted upload leaves
  no temporary file;
- stored JSON: a deep value is refused, a bad stored one never takes down a
  listing;
- revocation: disabling a user, deleting an account or revoking a key stops
  what runs for them within a second;
- small ones: a NUL byte in a static path, a provider Test against the wrong
  kind of server.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import update
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apihelpers import Client, make_client, parse_sse, signup
from parley.config import Settings
from parley.messages import ToolCall
from parley.providers.base import Provider
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage import Database
from parley.storage.tables import User

BIG = 45 * 2**20  # the review's upload: 45 MB, under the 50 MiB file limit


class CountingApp:
    """Counts the request-body bytes the app pulls from the server, per path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.received: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received[path] = self.received.get(path, 0) + len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@dataclass
class Served:
    base: str
    port: int
    key: str  # the admin's API key
    counter: CountingApp
    settings: Settings
    app: Any
    cookies: dict[str, str] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(
    settings: Settings, extra_providers: list[Provider], features: list[Any] | None
) -> Iterator[Served]:
    """A real server (uvicorn in a thread) whose app counts the body bytes it reads."""
    from parley.api.app import create_app

    app = create_app(settings, extra_providers=extra_providers, features=features)
    counter = CountingApp(app)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(counter, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base) as c:
        made = c.post(
            "/api/auth/signup", json={"email": "root@example.com", "password": "12345678"}
        )
        assert made.status_code == 201, made.text
        csrf = c.cookies["parley_csrf"]
        key = c.post("/api/keys", json={"name": "t"}, headers={"X-CSRF-Token": csrf}).json()["key"]
        cookies = dict(c.cookies)
    counter.received.clear()  # only what the test itself sends counts
    try:
        yield Served(base, port, key, counter, settings, app, cookies)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _raw_request(
    port: int, path: str, headers: dict[str, str], declared: int, sent: bytes
) -> socket.socket:
    """A request that declares ``declared`` body bytes but has sent only ``sent``."""
    sock = socket.create_connection(("127.0.0.1", port))
    lines = [f"POST {path} HTTP/1.1", "Host: parley.test", f"Content-Length: {declared}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
    return sock


def _status_of(sock: socket.socket, timeout: float = 5.0) -> tuple[int, bytes]:
    """The response's status, read while the body is still unsent (fails on a timeout:
    a server waiting for the rest of the body has not answered)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), rest


MULTIPART_HEAD = (
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
)


def _multipart(text: bytes) -> bytes:
    return MULTIPART_HEAD + text + b"\r\n--b--\r\n"


# ------------------------------------------------------------------ bodies


def test_an_anonymous_upload_is_refused_before_its_body_is_read(served: Served) -> None:
    sock = _raw_request(
        served.port,
        "/api/files",
        {"Content-Type": "multipart/form-data; boundary=b"},
        BIG,
        MULTIPART_HEAD + b"x" * 65536,
    )
    try:
        status, body = _status_of(sock)
    finally:
        sock.close()
    assert status == 401
    assert b"Sign in" in body
    assert served.counter.received.get("/api/files", 0) == 0


def test_a_session_without_its_csrf_token_is_refused_before_the_body(served: Served) -> None:
    cookie = f"parley_session={served.cookies['parley_session']}"
    sock = _raw_request(
        served.port,
        "/api/files",
        {"Content-Type": "multipart/form-data; boundary=b", "Cookie": cookie},
        BIG,
        MULTIPART_HEAD,
    )
    try:
        status, body = _status_of(sock)
    finally:
        sock.close()
    assert status == 403 and b"csrf_failed" in body
    assert served.counter.received.get("/api/files", 0) == 0


# Routes anyone may call with a body (signing up, signing in).
PUBLIC_BODIES = {("POST", "/api/auth/signup"), ("POST", "/api/auth/login")}


def _operations_with_a_body(app: Any) -> list[tuple[str, str]]:
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation and (method.upper(), path) not in PUBLIC_BODIES:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "x1", path)))
    return found


def test_every_route_with_a_body_knows_its_caller_before_reading_it(served: Served) -> None:
    """The review's attack on every operation of the OpenAPI document that takes a body."""
    operations = _operations_with_a_body(served.app)
    assert len(operations) > 20  # the walk found the API, not an empty document
    for method, path in operations:
        sock = socket.create_connection(("127.0.0.1", served.port))
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: parley.test\r\n"
            "Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"a": "')
        try:
            status, body = _status_of(sock)
        finally:
            sock.close()
        assert status == 401, (method, path, status, body[:200])
        assert served.counter.received.get(path, 0) == 0, (method, path)


def _open_fds_to_deleted_files() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                count += 1
        except OSError:
            pass
    return count


def _wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("overrides", [{"files_uploads_per_user": 1}])
def test_uploads_in_flight_are_capped_and_an_aborted_one_leaves_nothing(
    served: Served,
) -> None:
    auth = {"Authorization": f"Bearer {served.key}"}
    files_dir = served.settings.data_dir / "files"
    baseline_fds = _open_fds_to_deleted_files()
    # Two megabytes of a 45 MB upload: the server is receiving it (its slot is taken).
    sock = _raw_request(
        served.port,
        "/api/files",
        {"Content-Type": "multipart/form-data; boundary=b", **auth},
        BIG,
        MULTIPART_HEAD + b"y" * (2 * 2**20),
    )
    try:
        _wait_until(
            lambda: served.counter.received.get("/api/files", 0) > 2**20, "the upload to start"
        )
        with httpx.Client(base_url=served.base, headers=auth, timeout=30) as http:
            second = http.post("/api/files", files={"file": ("a.txt", b"hello there")})
            assert second.status_code == 429, second.text
            assert second.json()["code"] == "too_many_requests"
            assert "wait for one to finish" in second.json()["detail"]
    finally:
        sock.close()  # the client goes away mid-upload
    with httpx.Client(base_url=served.base, headers=auth, timeout=30) as http:

        def slot_free() -> bool:
            r = http.post("/api/files", files={"file": ("b.txt", b"general kenobi")})
            return r.status_code == 201

        _wait_until(slot_free, "the aborted upload's slot to be given back")
    leftovers = [p.name for p in files_dir.rglob(".upload-*")] if files_dir.exists() else []
    assert leftovers == []
    _wait_until(
        lambda: _open_fds_to_deleted_files() <= baseline_fds, "the spooled body to be removed"
    )


# ------------------------------------------------------------------ stored JSON


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_deep_preferences_are_refused(client: Client, user: dict[str, Any]) -> None:
    refused = await client.patch("/api/me", json={"preferences": _nested(300)})
    assert refused.status_code == 422
    assert "nested more than" in refused.json()["detail"]
    assert (await client.get("/api/auth/me")).status_code == 200
    fine = await client.patch("/api/me", json={"preferences": {"theme": "dark"}})
    assert fine.status_code == 200 and fine.json()["user"]["preferences"] == {"theme": "dark"}


async def test_a_bad_stored_value_never_takes_down_a_listing(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    other = (
        await client.post(
            "/api/admin/users", json={"email": "bo@example.com", "password": "correct horse"}
        )
    ).json()["user"]
    broken = (
        await client.post(
            "/api/admin/users", json={"email": "cy@example.com", "password": "correct horse"}
        )
    ).json()["user"]
    database: Database = app.state.services.require(Database)
    async with database.session() as session:  # rows written before values were checked
        await session.execute(
            update(User).where(User.id == user["id"]).values(preferences=_nested(300))
        )
        await session.execute(update(User).where(User.id == broken["id"]).values(role="wizard"))
        await session.commit()

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["preferences"] == {}
    assert me.json()["user"]["preferences_invalid"] is True

    listing = await client.get("/api/admin/users")
    assert listing.status_code == 200
    listed = {u["id"] for u in listing.json()["items"]}
    assert {user["id"], other["id"]} <= listed and broken["id"] not in listed
    assert [p["id"] for p in listing.json()["problems"]] == [broken["id"]]

    saved = await client.patch("/api/me", json={"preferences": {"theme": "light"}})
    assert saved.status_code == 200
    assert saved.json()["user"]["preferences"] == {"theme": "light"}
    assert saved.json()["user"]["preferences_invalid"] is False


async def test_tool_arguments_nested_too_deep_are_an_error_not_a_crash(
    client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    deep = "{" + '"a":{' * 5000 + "}" * 5000 + "}"
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("call_1", "calculator", deep)]),
        Reply(text="That did not work."),
    )
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    sent = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "go"})
    events = parse_sse(sent.text)
    results = [data for name, data in events if name == "tool_result"]
    assert results and results[0]["is_error"] is True
    assert "nested" in results[0]["output"]
    done = dict(events)["done"]
    assert done["message"]["status"] == "complete"
    view = await client.get(f"/api/conversations/{conv['id']}")
    assert view.status_code == 200


# ------------------------------------------------------------------ revocation


async def _second_user(http: httpx.AsyncClient, email: str) -> tuple[str, str, str]:
    """A user made by the admin, signed in on their own client: (id, API key, key id)."""
    made = await http.post("/api/admin/users", json={"email": email, "password": "correct horse"})
    assert made.status_code == 201, made.text
    async with httpx.AsyncClient(base_url=str(http.base_url)) as own:
        signed = await own.post(
            "/api/auth/login", json={"email": email, "password": "correct horse"}
        )
        assert signed.status_code == 200, signed.text
        key = await own.post(
            "/api/keys", json={"name": "k"}, headers={"X-CSRF-Token": own.cookies["parley_csrf"]}
        )
        created = key.json()
        return made.json()["user"]["id"], created["key"], created["id"]


async def _stream_until_text(http: httpx.AsyncClient, key: str, then: Any) -> tuple[str, float]:
    """Send a message as ``key``'s user; once text streams, await ``then()``; the
    whole stream and the seconds from ``then`` to the stream's end."""
    headers = {"Authorization": f"Bearer {key}"}
    conv = (
        await http.post("/api/conversations", json={"model": "scripted/scripted"}, headers=headers)
    ).json()
    body, acted_at = "", 0.0
    async with http.stream(
        "POST",
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "work hard"},
        headers=headers,
    ) as response:
        async for chunk in response.aiter_text():
            body += chunk
            if not acted_at and "event: text" in body:
                await then()
                acted_at = time.monotonic()
    return body, time.monotonic() - acted_at


def _slow_work(scripted: ScriptedModel) -> None:
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("c1", "calculator", '{"expression": "2+2"}')]),
        Reply(text="tick " * 2000, chunk_size=2, delay_s=0.02),  # about 20 s
        Reply(text="a later model call that must never happen"),
    )


async def test_disabling_a_user_stops_their_running_answer(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, admin_key = live
    root = base.removesuffix("/v1")
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=root, headers=admin, timeout=30) as http:
        user_id, key, _ = await _second_user(http, "dee@example.com")
        _slow_work(scripted)

        async def disable() -> None:
            r = await http.patch(f"/api/admin/users/{user_id}", json={"status": "disabled"})
            assert r.status_code == 200

        body, after = await _stream_until_text(http, key, disable)
    assert after < 5.0, f"the answer ran on for {after:.2f} s after the user was disabled"
    done = dict(parse_sse(body))["done"]
    assert done["message"]["status"] == "cancelled"
    await asyncio.sleep(0.3)  # no after-turn work (memory extraction) asks the model again
    assert scripted.pending == 1


async def test_revoking_a_key_stops_what_runs_with_it(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, admin_key = live
    root = base.removesuffix("/v1")
    async with httpx.AsyncClient(
        base_url=root, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as http:
        _user_id, key, key_id = await _second_user(http, "eve@example.com")
        _slow_work(scripted)

        async def revoke() -> None:
            r = await http.delete(f"/api/keys/{key_id}", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 204

        body, after = await _stream_until_text(http, key, revoke)
        assert after < 5.0, f"the answer ran on for {after:.2f} s after the key was revoked"
        assert dict(parse_sse(body))["done"]["message"]["status"] == "cancelled"


async def test_revoking_a_key_ends_its_openai_compatible_stream(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, admin_key = live
    root = base.removesuffix("/v1")
    async with httpx.AsyncClient(
        base_url=root, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as http:
        _user2, key2, key2_id = await _second_user(http, "fay@example.com")
        scripted.enqueue(Reply(text="tock " * 2000, chunk_size=2, delay_s=0.02))  # about 20 s
        text = ""
        started = 0.0
        async with http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "scripted/scripted",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"Authorization": f"Bearer {key2}"},
        ) as response:
            async for chunk in response.aiter_text():
                text += chunk
                if not started and "tock" in text:
                    gone = await http.delete(
                        f"/api/keys/{key2_id}", headers={"Authorization": f"Bearer {key2}"}
                    )
                    assert gone.status_code == 204
                    started = time.monotonic()
        assert time.monotonic() - started < 5.0  # the stream alone runs about 20 s
        assert "access_revoked" in text and text.rstrip().endswith("data: [DONE]")


# ------------------------------------------------------------------ small findings


async def test_a_nul_byte_in_a_page_path_is_a_problem_document(client: Client) -> None:
    for path in ("/index.html%00.txt", "/%00", "/assets/x%00.js", "/" + "a" * 5000):
        response = await client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json"), path


async def test_testing_an_anthropic_provider_against_an_openai_server_explains(
    client: Client, user: dict[str, Any]
) -> None:
    import json as _json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    shapes: list[Any] = [
        {"object": "list", "data": None},
        [1, 2],
        "text",
        {"data": "nope"},
    ]
    current: dict[str, Any] = {}

    class OpenAIShaped(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = _json.dumps(current["body"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), OpenAIShaped)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for shape in shapes:
            current["body"] = shape
            for kind in ("anthropic", "openai"):
                tested = await client.post(
                    "/api/admin/providers/test",
                    json={"kind": kind, "base_url": url, "api_key": "k"},
                )
                assert tested.status_code == 200, (kind, shape, tested.text)
                assert tested.json()["ok"] is False
                assert "unexpected data" in tested.json()["error"]
    finally:
        server.shutdown()
        thread.join(timeout=5)


# ------------------------------------------------------------------ deletion in the files


async def test_a_deleted_account_leaves_no_text_in_the_sqlite_files(
    make_app: Any, make_settings: Any, tmp_path: Any, scripted: ScriptedModel
) -> None:
    """The database's own files: freed pages zeroed, the log truncated, the
    full-text indexes rewritten without the deleted rows."""
    db_file = tmp_path / "own" / "parley.db"
    db_file.parent.mkdir()
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{db_file}")
    secret = "zebracorn-tapestry-41"
    scripted.enqueue(Reply(text=f"Noted: {secret} is safe with me."))
    async with make_app(settings=settings) as app:
        async with make_client(app) as admin:
            await signup(admin, "admin@example.com")
        async with make_client(app) as client:
            await signup(client, "leaver@example.com")
            conv = (
                await client.post("/api/conversations", json={"model": "scripted/scripted"})
            ).json()
            await client.post(
                f"/api/conversations/{conv['id']}/messages",
                json={"content": f"My vault code is {secret}."},
            )
            files = [p for p in db_file.parent.iterdir() if p.name.startswith("parley.db")]
            assert any(secret.encode() in p.read_bytes() for p in files)  # it was written
            gone = await client.request("DELETE", "/api/me", json={"password": "correct horse"})
            assert gone.status_code == 204
        holding = [
            p.name
            for p in db_file.parent.iterdir()
            if p.name.startswith("parley.db") and secret.encode() in p.read_bytes()
        ]
        assert holding == []
