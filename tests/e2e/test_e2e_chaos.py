"""The chaos test (issue 18): three ``parley serve`` workers behind HAProxy on one
PostgreSQL database, with the test's own Redis and SeaweedFS as the object store.

While many answers stream and a few files are being ingested:

1. one worker is killed with SIGKILL: every stream either completes through a
   reconnect (through HAProxy, with ``Last-Event-ID``) or ends with a clear error
   with its partial text kept; every user message is in the database afterwards;
   every uploaded file ends up indexed;
2. Redis is stopped for 10 s and started again: the service goes on (degraded)
   and new streams and reconnects work afterwards, without restarting workers.

The test prints what happened to every request (counts by outcome).

Scale: 200 answers (the issue's number; ``PARLEY_CHAOS_STREAMS`` changes it),
arriving 20 a second; the whole test takes ~2.5 minutes on 2 cores.

Not covered (reported as missing): restarting PostgreSQL (the machine's cluster is
shared with the suite) and a side-effecting tool call counted across the kill.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_e2e_workers
from bench.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS
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
from test_e2e_workers import Event, OwnRedis, events, haproxy_config

pytestmark = pytest.mark.e2e

# The workers test's fixtures: a throwaway PostgreSQL database, a Redis of our own.
pg_url = test_e2e_workers.pg_url
own_redis = test_e2e_workers.own_redis

# Answers streaming around the kill (the 200; 2 cores hold it).
STREAMS = int(os.environ.get("PARLEY_CHAOS_STREAMS", "200"))
FILES = 4
WORDS = " ".join(f"c{i:03d}" for i in range(80))
RATE = 6.0  # text events per second: each answer streams for ~13 s
ARRIVALS = 20.0  # new questions per second while the streams start
WAIT_S = 90.0  # a bound on a hang, not a timing check
BUCKET = "parley-chaos"


@dataclass
class Outcome:
    """What one request saw."""

    kind: str = "pending"
    detail: str = ""
    reconnects: int = 0
    text: str = ""
    message_id: str = ""
    chat: str = ""


@dataclass
class Cluster:
    front: str
    workers: list[tuple[Proc, str]] = field(default_factory=list)


@pytest.fixture
def seaweed(tmp_path: Path) -> Iterator[SeaweedFS]:
    s3 = SeaweedFS(tmp_path / "seaweed").start()
    try:
        s3.client().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield s3
    finally:
        s3.stop()


@contextlib.contextmanager
def cluster(
    upstream: Upstream, pg_url: str, redis: OwnRedis, s3: SeaweedFS, tmp: Path
) -> Iterator[Cluster]:
    env = upstream_env(upstream) | {
        "PARLEY_DATABASE_URL": pg_url,
        "PARLEY_REDIS_URL": redis.url,
        "PARLEY_STORAGE_BACKEND": "s3",
        "PARLEY_S3_ENDPOINT_URL": s3.endpoint,
        "PARLEY_S3_BUCKET": BUCKET,
        "PARLEY_S3_REGION": REGION,
        "PARLEY_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "PARLEY_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "PARLEY_S3_PATH_STYLE": "true",
        "PARLEY_EMBEDDING_PROVIDER": "none",
    }
    workers: list[tuple[Proc, str]] = []
    proxy: Proc | None = None
    try:
        for i in range(3):
            workers.append(start_parley(f"chaos-w{i}", tmp / f"w{i}", env, tmp))
        port = free_port()
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(haproxy_config(port, [b for _, b in workers]))
        haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
        if haproxy is None:
            pytest.fail("haproxy is missing: apt-get install haproxy (.ci/run does)", pytrace=False)
        proxy = Proc("haproxy", [haproxy, "-db", "-f", str(cfg)], base_env(), tmp / "haproxy.log")
        front = f"http://127.0.0.1:{port}"
        proxy.wait_http(f"{front}/healthz/ready", timeout=WAIT_S)
        yield Cluster(front, workers)
    finally:
        if proxy is not None:
            proxy.stop()
        for proc, _ in workers:
            proc.stop()


def client_for(front: str, email: str) -> httpx.Client:
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=STREAMS + 20)
    client = httpx.Client(timeout=httpx.Timeout(WAIT_S, connect=10), limits=limits)
    r = client.post(f"{front}/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = client.cookies["parley_csrf"]
    return client


def stream_one(
    client: httpx.Client, front: str, question: str, out: Outcome, delay: float = 0.0
) -> None:
    """Ask, read the answer, and on a cut reconnect through the proxy with
    ``Last-Event-ID`` until ``done``/``error`` (or give up after a few tries).
    ``delay``: users arrive over a few seconds, not in one instant."""
    time.sleep(delay)
    seen: list[Event] = []
    try:
        r = client.post(f"{front}/api/conversations", json={})
        if r.status_code != 201:
            out.kind, out.detail = "create_failed", f"{r.status_code}"
            return
        out.chat = str(r.json()["id"])
        url = f"{front}/api/conversations/{out.chat}/messages"
        with client.stream("POST", url, json={"content": question}) as s:
            if s.status_code != 200:
                out.kind, out.detail = "send_failed", f"{s.status_code}"
                return
            with contextlib.suppress(httpx.HTTPError):
                for event in events(s):
                    seen.append(event)
                    if event.name in ("done", "error"):
                        break
    except httpx.HTTPError as exc:
        out.kind, out.detail = "send_failed", repr(exc)
        return
    if not seen or seen[0].name != "start":
        # Cut before the turn began (its worker died first): the client saw it fail
        # and has nothing to keep; the question may or may not have been stored.
        out.kind = "cut_before_start"
        return
    out.message_id = str(seen[0].data["assistant_message"]["id"])
    while out.message_id and not any(e.name in ("done", "error") for e in seen):
        if out.reconnects >= 5:
            break
        out.reconnects += 1
        time.sleep(1.0)
        last = max((e.id for e in seen if e.id is not None), default=0)
        url = f"{front}/api/conversations/{out.chat}/messages/{out.message_id}/events"
        headers = {"Last-Event-ID": str(last)}
        with contextlib.suppress(httpx.HTTPError), client.stream("GET", url, headers=headers) as s:
            if s.status_code != 200:
                continue
            for event in events(s):
                seen.append(event)
                if event.name in ("done", "error"):
                    break
    ids = [e.id for e in seen if e.id is not None]
    if ids != sorted(set(ids)):
        out.kind, out.detail = "out_of_order", str(ids)
        return
    text = ""
    for e in seen:
        if e.name == "resync":
            text = str(e.data.get("content", ""))
        elif e.name == "text":
            text += str(e.data["text"])
    out.text = text
    done = [e for e in seen if e.name == "done"]
    errors = [e for e in seen if e.name == "error"]
    if done:
        message = done[-1].data["message"]
        out.text = str(message["content"])
        status = message["status"]
        if status == "complete" and message["content"].strip() == WORDS:
            out.kind = "completed" + ("_after_reconnect" if out.reconnects else "")
        elif status == "failed" and message.get("error_message"):
            out.kind, out.detail = "clear_error", str(message.get("error_code"))
        else:
            out.kind, out.detail = f"done_{status}", message["content"][-40:]
    elif errors:
        out.kind, out.detail = "clear_error", json.dumps(errors[-1].data)[:120]
    else:
        out.kind = "no_end"


def upload(client: httpx.Client, front: str, n: int) -> str:
    body = "\n\n".join(f"Chaos file {n}, paragraph {p}: " + "lorem ipsum " * 40 for p in range(30))
    r = client.post(f"{front}/api/files", files={"file": (f"chaos-{n}.md", body.encode())})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def report(title: str, outcomes: list[Outcome]) -> collections.Counter[str]:
    counts = collections.Counter(o.kind for o in outcomes)
    reconnected = sum(1 for o in outcomes if o.reconnects)
    print(f"\n{title}: {len(outcomes)} requests, {reconnected} reconnected")
    for kind, n in sorted(counts.items()):
        print(f"| {kind:28} | {n:4} |")
    for o in outcomes:
        if o.kind not in ("completed", "completed_after_reconnect"):
            print(f"    {o.kind}: chat {o.chat} message {o.message_id} {o.detail}")
    return counts


def run_streams(front: str, client: httpx.Client, count: int, tag: str) -> list[Outcome]:
    outcomes = [Outcome() for _ in range(count)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(stream_one, client, front, f"{tag} question {i}", outcomes[i])
            for i in range(count)
        ]
        for f in futures:
            f.result()
    return outcomes


def test_chaos_kill_a_worker_and_stop_redis(
    upstream: Upstream,
    pg_url: str,
    own_redis: OwnRedis,
    seaweed: SeaweedFS,
    tmp_path: Path,
) -> None:
    with cluster(upstream, pg_url, own_redis, seaweed, tmp_path) as c:
        email = unique_email("chaos")
        api_signup(c.front, email=email)
        client = client_for(c.front, email)
        try:
            # ------------------------------------------------ 1. kill -9 a worker
            upstream.script(*({"text": WORDS, "rate": RATE} for _ in range(STREAMS)))
            outcomes = [Outcome() for _ in range(STREAMS)]
            questions = [f"kill question {i}" for i in range(STREAMS)]
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=STREAMS)
            futures = [
                pool.submit(stream_one, client, c.front, questions[i], outcomes[i], i / ARRIVALS)
                for i in range(STREAMS)
            ]
            file_ids = [upload(client, c.front, n) for n in range(FILES)]
            # Kill once half the answers have started (the rest start after the kill).
            deadline = time.monotonic() + WAIT_S
            while sum(1 for o in outcomes if o.message_id) < STREAMS * 0.5:
                assert time.monotonic() < deadline, "the answers did not start"
                time.sleep(0.2)
            victim, _ = c.workers[1]
            os.kill(victim.popen.pid, signal.SIGKILL)
            victim.popen.wait(timeout=10)
            killed_at = time.monotonic()
            for f in futures:
                f.result()
            pool.shutdown()
            print(f"\nall streams ended {time.monotonic() - killed_at:.0f} s after the kill")
            counts = report("kill -9 one worker", outcomes)
            # The kill hit running answers: their readers had to reconnect.
            assert any(o.reconnects for o in outcomes), "no stream was on the killed worker"
            good = {"completed", "completed_after_reconnect", "clear_error", "cut_before_start"}
            assert set(counts) <= good, counts
            for o in outcomes:
                if o.kind == "clear_error":
                    # The partial text is kept: what the reader saw is in the stored answer.
                    stored = stored_message(client, c.front, o.chat, o.message_id)
                    assert stored["status"] in ("failed", "cancelled"), stored["status"]
                    assert stored["content"].startswith(o.text.strip()[: len(stored["content"])])
            # No user message lost: each question is stored in its conversation.
            for o, question in zip(outcomes, questions, strict=True):
                if o.kind == "cut_before_start":
                    continue
                r = get(client, f"{c.front}/api/conversations/{o.chat}")
                assert r.status_code == 200, r.text
                users = [m["content"] for m in r.json()["messages"] if m["role"] == "user"]
                assert users == [question], users
            # No ingestion job lost: every file ends up indexed.
            deadline = time.monotonic() + WAIT_S
            states: dict[str, str] = {}
            while time.monotonic() < deadline:
                states = {
                    f: get(client, f"{c.front}/api/files/{f}").json()["status"] for f in file_ids
                }
                if all(s in ("ready", "failed") for s in states.values()):
                    break
                time.sleep(1)
            print(f"files: {collections.Counter(states.values())}")
            assert set(states.values()) == {"ready"}, states

            # ------------------------------------------------ 2. Redis away 10 s
            own_redis.stop()
            upstream.script(*({"text": WORDS, "rate": RATE * 4} for _ in range(10)))
            degraded = run_streams(c.front, client, 10, "redis-down")
            counts = report("Redis stopped", degraded)
            assert set(counts) == {"completed"}, counts
            time.sleep(max(0.0, 10.0 - 1.0))
            own_redis.start()
            deadline = time.monotonic() + WAIT_S
            for _, base in c.workers[::2]:
                while httpx.get(f"{base}/healthz/ready", timeout=5).json()["redis"] != "ok":
                    assert time.monotonic() < deadline, "a worker did not reconnect to Redis"
                    time.sleep(0.5)
            upstream.script(*({"text": WORDS, "rate": RATE * 4} for _ in range(20)))
            after = run_streams(c.front, client, 20, "redis-back")
            counts = report("Redis back", after)
            assert set(counts) == {"completed"}, counts
        finally:
            client.close()


def get(client: httpx.Client, url: str) -> httpx.Response:
    """A GET through the proxy, tried again while it answers 503 (right after the
    kill its health checks may briefly count every worker out)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        r = client.get(url)
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(1)


def stored_message(client: httpx.Client, front: str, chat: str, message: str) -> dict[str, Any]:
    r = get(client, f"{front}/api/conversations/{chat}")
    assert r.status_code == 200, r.text
    return next(m for m in r.json()["messages"] if m["id"] == message)
