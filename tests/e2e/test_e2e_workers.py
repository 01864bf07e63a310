"""Two real ``parley serve`` workers on one PostgreSQL database: a reader that
reconnects to the other worker gets what it missed and the live tail, a Stop sent
to the other worker stops the turn, with Redis, without it, and while Redis is
down (then back).

No browser: the clients are plain HTTP (the web app's reconnect is the same GET
with ``Last-Event-ID``, covered by ``test_e2e_resume``). The model is the scripted
upstream, paced so the answer is still streaming when the reader moves.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ehelpers import (
    PASSWORD,
    Proc,
    Upstream,
    api_signup,
    base_env,
    free_port,
    start_parley,
    unique_email,
    upstream_env,
)

pytestmark = pytest.mark.e2e

WORDS = " ".join(f"w{i:03d}" for i in range(60))
LONG = " ".join(f"s{i:03d}" for i in range(400))
WAIT_S = 60.0  # longest wait for a condition (a bound on a hang, not a timing check)
EXITED = (0, -15)  # uvicorn ends with the SIGTERM it handled once it shut down cleanly


@dataclass
class Event:
    id: int | None
    name: str
    data: dict[str, Any]


def events(response: httpx.Response) -> Iterator[Event]:
    """The response's Server-Sent Events, as they arrive."""
    seq: int | None = None
    name = "message"
    data: list[str] = []
    for line in response.iter_lines():
        if not line:
            if data:
                yield Event(seq, name, json.loads("\n".join(data)))
            seq, name, data = None, "message", []
            continue
        field, _, value = line.partition(": ")
        if field == "id":
            seq = int(value)
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)


def text_of(seen: list[Event]) -> str:
    return "".join(e.data["text"] for e in seen if e.name == "text")


class OwnRedis:
    """A redis-server of this test's own (it is stopped and started again)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.tmp)]
        log = (self.tmp / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            time.sleep(0.05)
        pytest.fail("redis-server did not start", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    server = request.getfixturevalue("pg_server")
    url = server.create(f"workers_{uuid.uuid4().hex[:8]}")
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@contextlib.contextmanager
def two_workers(
    upstream: Upstream, pg_url: str, tmp: Path, redis_url: str | None
) -> Iterator[tuple[str, str]]:
    env = upstream_env(upstream) | {"PARLEY_DATABASE_URL": pg_url}
    if redis_url:
        env["PARLEY_REDIS_URL"] = redis_url
    procs: list[Proc] = []
    try:
        a_proc, a = start_parley("worker-a", tmp / "a", env, tmp)
        procs.append(a_proc)
        b_proc, b = start_parley("worker-b", tmp / "b", env, tmp)
        procs.append(b_proc)
        yield a, b
    finally:
        for proc in procs:
            proc.stop()


@contextlib.contextmanager
def signed_in(base: str) -> Iterator[httpx.Client]:
    """A client signed in on ``base`` (its session works on every worker)."""
    account = api_signup(base, email=unique_email("workers"))
    with httpx.Client(timeout=httpx.Timeout(WAIT_S)) as client:
        r = client.post(
            f"{base}/api/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = client.cookies["parley_csrf"]
        yield client


def new_chat(client: httpx.Client, base: str) -> str:
    r = client.post(f"{base}/api/conversations", json={})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def start_and_leave(
    client: httpx.Client, base: str, chat: str, texts: int
) -> tuple[str, list[Event]]:
    """Ask on ``base``; read until ``texts`` text events arrived, then drop the
    connection (the turn goes on). Returns the answer's id and what was read."""
    seen: list[Event] = []
    with client.stream(
        "POST", f"{base}/api/conversations/{chat}/messages", json={"content": "Count"}
    ) as r:
        assert r.status_code == 200, r.read()
        for event in events(r):
            seen.append(event)
            if sum(e.name == "text" for e in seen) >= texts:
                break
    assert seen[0].name == "start"
    return str(seen[0].data["assistant_message"]["id"]), seen


def reattach(
    client: httpx.Client, base: str, chat: str, message: str, last: int, stop_after: int = 0
) -> list[Event]:
    """The events after ``last`` from ``base``, to the end of the stream (or the
    first ``stop_after`` ones)."""
    url = f"{base}/api/conversations/{chat}/messages/{message}/events"
    seen: list[Event] = []
    with client.stream("GET", url, headers={"Last-Event-ID": str(last)}) as r:
        assert r.status_code == 200, r.read()
        for event in events(r):
            seen.append(event)
            if stop_after and len(seen) >= stop_after:
                break
    return seen


def assert_in_order(before: list[Event], after: list[Event]) -> None:
    """Ids strictly increasing across both reads (no duplicate, nothing twice);
    the final ``done`` (read from the stored message) may have none."""
    ids = [e.id for e in before + after if e.id is not None]
    assert ids == sorted(set(ids)), ids


def stored(client: httpx.Client, base: str, chat: str, message: str) -> dict[str, Any]:
    r = client.get(f"{base}/api/conversations/{chat}")
    assert r.status_code == 200, r.text
    return next(m for m in r.json()["messages"] if m["id"] == message)


def stop_on_other_worker(
    client: httpx.Client, upstream: Upstream, a: str, b: str
) -> dict[str, Any]:
    """Start a long answer on ``a``, press Stop on ``b``; the stream on ``a`` ends
    with ``done`` (cancelled) long before the answer would have."""
    upstream.script({"text": LONG, "rate": 10})
    chat = new_chat(client, a)
    seen: list[Event] = []
    with client.stream(
        "POST", f"{a}/api/conversations/{chat}/messages", json={"content": "Go on"}
    ) as r:
        for event in events(r):
            seen.append(event)
            if sum(e.name == "text" for e in seen) == 3:
                stop = client.post(f"{b}/api/conversations/{chat}/stop")
                assert stop.status_code == 204, stop.text
    done = [e for e in seen if e.name == "done"]
    assert done, [e.name for e in seen]
    assert done[0].data["finish_reason"] == "cancelled"
    message = done[0].data["message"]
    assert message["status"] == "cancelled"
    assert "s399" not in message["content"]  # stopped, not finished
    return message


def wait_redis_ok(client: httpx.Client, *bases: str) -> None:
    deadline = time.monotonic() + WAIT_S
    for base in bases:
        while True:
            body = client.get(f"{base}/healthz/ready").json()
            if body["redis"] == "ok":
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.2)


# ---------------------------------------------------------------- with Redis


def test_reconnect_to_other_worker_over_redis_and_stop_from_it(
    upstream: Upstream, pg_url: str, own_redis: OwnRedis, tmp_path: Path
) -> None:
    with two_workers(upstream, pg_url, tmp_path, own_redis.url) as (a, b), signed_in(a) as client:
        ready = client.get(f"{b}/healthz/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "database": "ok",
            "migrations": "ok",
            "redis": "ok",
        }
        assert client.get(f"{a}/healthz/live").json()["status"] == "alive"

        upstream.script({"text": WORDS, "rate": 15})
        chat = new_chat(client, a)
        message, before = start_and_leave(client, a, chat, texts=5)
        last = before[-1].id
        assert last is not None
        after = reattach(client, b, chat, message, last)

        # The missed events first, from the very next id, then the tail: all text
        # events, no resync (nothing was lost), no duplicates, in order.
        assert after[0].id == last + 1, after[:3]
        assert "resync" not in [e.name for e in after]
        assert_in_order(before, after)
        done = [e for e in after if e.name == "done"]
        assert len(done) == 1
        assert (text_of(before) + text_of(after)).strip() == WORDS
        assert done[0].data["message"]["content"] == WORDS
        assert stored(client, b, chat, message)["status"] == "complete"

        stop_on_other_worker(client, upstream, a, b)


# ---------------------------------------------------------------- without Redis


def test_reconnect_to_other_worker_without_redis_follows_the_stored_answer(
    upstream: Upstream, pg_url: str, tmp_path: Path
) -> None:
    with two_workers(upstream, pg_url, tmp_path, None) as (a, b), signed_in(a) as client:
        body = client.get(f"{b}/healthz/ready").json()
        assert body["status"] == "ready" and body["redis"] == "not_configured"

        upstream.script({"text": WORDS, "rate": 12})
        chat = new_chat(client, a)
        message, before = start_and_leave(client, a, chat, texts=5)
        last = before[-1].id
        assert last is not None

        # Worker B follows the stored answer: a resync (the answer so far, with the
        # id of the turn's event it includes), then ...
        first = reattach(client, b, chat, message, last, stop_after=1)[0]
        assert first.name == "resync", first
        assert first.id is not None and first.id > last
        assert WORDS.startswith(first.data["content"].strip())
        # ... its id is the turn's own: back on worker A, the events after it
        # continue the text exactly where that resync ended.
        rest = reattach(client, a, chat, message, first.id)
        if rest[0].name != "done":  # (unless the answer ended meanwhile)
            assert rest[0].id == first.id + 1
        assert_in_order([first], rest)
        assert (first.data["content"] + text_of(rest)).strip() == WORDS

        # A second reader on B from the start id follows it to the end.
        upstream.script({"text": WORDS, "rate": 12})
        chat = new_chat(client, a)
        message, before = start_and_leave(client, a, chat, texts=3)
        after = reattach(client, b, chat, message, before[-1].id or 0)
        assert [e.name for e in after if e.name not in ("resync",)] == ["done"]
        assert_in_order(before, after)
        assert after[-1].data["message"]["content"] == WORDS
        contents = [e.data["content"] for e in after if e.name == "resync"]
        assert all(WORDS.startswith(c.strip()) for c in contents)

        # A Stop pressed on B reaches the turn on A (a row A polls).
        stop_on_other_worker(client, upstream, a, b)


# ---------------------------------------------------------------- Redis away


def test_redis_stopped_mid_turn_degrades_then_recovers(
    upstream: Upstream, pg_url: str, own_redis: OwnRedis, tmp_path: Path
) -> None:
    with two_workers(upstream, pg_url, tmp_path, own_redis.url) as (a, b), signed_in(a) as client:
        upstream.script({"text": WORDS, "rate": 12})
        chat = new_chat(client, a)
        message, before = start_and_leave(client, a, chat, texts=5)
        own_redis.stop()

        # Degraded: B cannot read the Redis stream, so it follows the stored answer.
        ready = client.get(f"{b}/healthz/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        after = reattach(client, b, chat, message, before[-1].id or 0)
        assert after[-1].name == "done"
        assert after[-1].data["message"]["content"] == WORDS
        assert_in_order(before, after)
        # A Stop still crosses workers (through the database).
        stop_on_other_worker(client, upstream, a, b)

        # Redis back (empty: it kept nothing): the next turn streams through it again.
        own_redis.start()
        wait_redis_ok(client, a, b)
        upstream.script({"text": WORDS, "rate": 15})
        chat = new_chat(client, a)
        message, before = start_and_leave(client, a, chat, texts=5)
        last = before[-1].id or 0
        after = reattach(client, b, chat, message, last)
        assert after[0].id == last + 1 and after[0].name == "text", after[:2]
        assert "resync" not in [e.name for e in after]
        assert_in_order(before, after)
        assert (text_of(before) + text_of(after)).strip() == WORDS
        stop_on_other_worker(client, upstream, a, b)


# ---------------------------------------------------------------- shutdown


def test_shutdown_finishes_running_answers_within_the_grace_then_stops_them(
    upstream: Upstream, pg_url: str, tmp_path: Path
) -> None:
    env = upstream_env(upstream) | {"PARLEY_DATABASE_URL": pg_url, "PARLEY_SHUTDOWN_GRACE_S": "8"}
    b_proc, b = start_parley("worker-b", tmp_path / "b", env, tmp_path)
    try:
        with signed_in(b) as client:
            # 1. SIGTERM while an answer streams (4 s): the open stream goes on to
            # `done` and the answer is stored whole; then the worker exits.
            a_proc, a = start_parley("worker-a", tmp_path / "a", env, tmp_path)
            upstream.script({"text": WORDS, "rate": 15})
            chat = new_chat(client, a)
            seen: list[Event] = []
            with client.stream(
                "POST", f"{a}/api/conversations/{chat}/messages", json={"content": "Count"}
            ) as r:
                for event in events(r):
                    seen.append(event)
                    if sum(e.name == "text" for e in seen) == 5 and a_proc.popen.poll() is None:
                        a_proc.popen.terminate()
            assert any(e.name == "done" for e in seen), [e.name for e in seen]
            assert a_proc.popen.wait(timeout=WAIT_S) in EXITED
            message = str(seen[0].data["assistant_message"]["id"])
            row = stored(client, b, chat, message)
            assert (row["status"], row["content"]) == ("complete", WORDS)

            # 2. An answer longer than the grace (40 s), nobody reading: after 8 s it
            # is stopped and stored as it was (cancelled, its text kept), not left
            # streaming, and the worker exits.
            a_proc, a = start_parley("worker-a2", tmp_path / "a2", env, tmp_path)
            upstream.script({"text": LONG, "rate": 10})
            chat = new_chat(client, a)
            message, before = start_and_leave(client, a, chat, texts=3)
            a_proc.popen.terminate()
            assert a_proc.popen.wait(timeout=WAIT_S) in EXITED
            row = stored(client, b, chat, message)
            assert row["status"] == "cancelled", row["status"]
            assert row["content"].startswith(text_of(before).strip())
            assert "s399" not in row["content"]
    finally:
        b_proc.stop()


# ---------------------------------------------------------------- HAProxy


def haproxy_config(port: int, workers: list[str]) -> str:
    """``deploy/haproxy.cfg`` as shipped, pointed at this test's ports."""
    reference = (Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg").read_text()
    lines = []
    for line in reference.splitlines():
        stripped = line.strip()
        if stripped.startswith("server "):
            continue
        if stripped.startswith("bind "):
            line = f"    bind 127.0.0.1:{port}"
        elif stripped.startswith("log stdout"):
            continue  # the test's log is enough
        elif stripped.startswith("maxconn") and line.startswith("    maxconn"):
            line = "    maxconn 1000"  # within this machine's open-file limit
        lines.append(line)
    lines += [f"    server w{i} {w.removeprefix('http://')} check" for i, w in enumerate(workers)]
    return "\n".join(lines) + "\n"


def test_haproxy_in_front_of_two_workers(
    upstream: Upstream, pg_url: str, own_redis: OwnRedis, tmp_path: Path
) -> None:
    with two_workers(upstream, pg_url, tmp_path, own_redis.url) as (a, b):
        port = free_port()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_config(port, [a, b]))
        haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
        if haproxy is None:
            pytest.fail("haproxy is missing: apt-get install haproxy (.ci/run does)", pytrace=False)
        check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        proxy = Proc(
            "haproxy", [haproxy, "-db", "-f", str(cfg)], base_env(), tmp_path / "haproxy.log"
        )
        front = f"http://127.0.0.1:{port}"
        try:
            proxy.wait_http(f"{front}/healthz/ready", timeout=WAIT_S)
            with signed_in(front) as client:
                # A stream through the proxy, dropped and picked up three times: the
                # proxy sends each reconnect to either worker; the ids continue and
                # the text is whole.
                upstream.script({"text": WORDS, "rate": 15})
                chat = new_chat(client, front)
                message, seen = start_and_leave(client, front, chat, texts=4)
                for _ in range(3):
                    more = reattach(client, front, chat, message, seen[-1].id or 0, stop_after=4)
                    assert_in_order(seen, more)
                    seen += more
                    if seen[-1].name == "done":
                        break
                if seen[-1].name != "done":
                    seen += reattach(client, front, chat, message, seen[-1].id or 0)
                assert_in_order(seen, [])
                assert text_of(seen).strip() == WORDS
                assert seen[-1].name in ("done", "title") or any(e.name == "done" for e in seen)
                # Stop through the proxy reaches the turn, whichever worker runs it.
                stop_on_other_worker(client, upstream, front, front)
        finally:
            proxy.stop()
