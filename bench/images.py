"""``python -m bench images``: what Parley adds to an image request, and what the
hostile-image checks cost.

Same run, same machine, interleaved: N ``POST /v1/images/generations`` (base64, 512x512) sent
straight to the scripted image server (the baseline: drawing and encoding the
picture) and the same through a real Parley server on SQLite (key check,
provider lookup, the provider call, ``pictures.inspect`` of the answer, the bytes
stored, the rows and the ledger row written, base64 back). Both servers run in
threads of this process (one GIL), so the difference is an upper bound of Parley's
own work. Then ``inspect`` alone on a normal picture, a truncated one and a
decompression bomb (refused from its header, before any pixel is decoded).
"""

from __future__ import annotations

import base64
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import Table, fmt, median, pct
from parley.errors import Refused
from parley.images.pictures import inspect
from parley.images.testing import ScriptedImages, bomb_png, draw

FULL, QUICK = 40, 10
SIZE = "512x512"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parley(data_dir: Path) -> tuple[str, object, threading.Thread]:
    import uvicorn

    from parley.api.app import create_app
    from parley.config import Settings

    settings = Settings(
        data_dir=data_dir, local_model_enabled=False, title_model="none", log_level="warning"
    )
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("Parley did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def _timed(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        r = client.post(
            url,
            json={"prompt": f"bench picture {i}", "size": SIZE, "response_format": "b64_json"},
            headers=headers,
        )
        out.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        assert base64.b64decode(r.json()["data"][0]["b64_json"]).startswith(b"\x89PNG")
    return out


def _check_ms(data: bytes, repeat: int) -> tuple[float, str]:
    times, outcome = [], "accepted"
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            inspect(data, max_bytes=20 << 20, max_pixels=40_000_000)
        except Refused as exc:
            outcome = exc.code
        times.append((time.perf_counter() - started) * 1000)
    return median(times), outcome


def run(quick: bool = False) -> Table:
    n = QUICK if quick else FULL
    table = Table(
        "images", "images: /v1/images/generations through Parley vs the provider directly", "direct"
    )
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp, ScriptedImages() as images:
        base, server, thread = _parley(Path(tmp))
        try:
            with httpx.Client(base_url=base, timeout=60) as admin:
                admin.post(
                    "/api/auth/signup", json={"email": "b@example.com", "password": "12345678"}
                )
                csrf = {"X-CSRF-Token": admin.cookies["parley_csrf"]}
                admin.post(
                    "/api/admin/images/providers",
                    json={"name": "bench", "kind": "openai", "base_url": images.base_url},
                    headers=csrf,
                ).raise_for_status()
                key = admin.post("/api/keys", json={"name": "bench"}, headers=csrf).json()["key"]
            with httpx.Client(timeout=60) as client:
                _timed(client, f"{images.base_url}/images/generations", {}, 2)  # warm up
                _timed(
                    client, f"{base}/v1/images/generations", {"Authorization": f"Bearer {key}"}, 2
                )
                # interleaved, so both see the same background noise
                direct, through = [], []
                auth = {"Authorization": f"Bearer {key}"}
                for _ in range(n):
                    direct += _timed(client, f"{images.base_url}/images/generations", {}, 1)
                    through += _timed(client, f"{base}/v1/images/generations", auth, 1)
        finally:
            server.should_exit = True  # type: ignore[attr-defined]
            thread.join(timeout=10)
    table.add(
        f"latency p50, {SIZE} ({n} requests)", fmt(median(through), "ms"), fmt(median(direct), "ms")
    )
    table.add("latency p95", fmt(pct(through, 95), "ms"), fmt(pct(direct, 95), "ms"))
    table.add("Parley's share p50", fmt(median(through) - median(direct), "ms"))
    normal = draw("a normal picture with some words on it", 1, 1024, 1024)
    for label, data in (
        ("1024x1024 PNG", normal),
        ("the same, truncated", normal[: len(normal) // 2]),
        ("100,000 x 100,000 bomb", bomb_png()),
    ):
        ms, outcome = _check_ms(data, 5 if quick else 20)
        table.add(f"inspect: {label} ({len(data):,} B)", f"{fmt(ms, 'ms', 2)} ({outcome})")
    table.notes.append(
        "both servers run in threads of one process (one GIL): the difference is an upper bound"
    )
    table.raw = {"direct_ms": direct, "parley_ms": through}
    return table


if __name__ == "__main__":
    print(run().render())
