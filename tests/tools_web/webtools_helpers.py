"""Helpers for the tools tests: a local web server with scripted routes, a
CSRF-aware API client, and an SSE parser.

``LocalWeb`` is a real HTTP server on 127.0.0.1 (stdlib, in a thread) so the
fetcher, the search clients and the MCP client go through real sockets.
Routes map a path to a function of the request returning a ``Page``; every
request is recorded (path, headers) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class Page:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunks: int = 1  # sent in this many pieces (with delay_s between them)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], Page]


class LocalWeb:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                web.seen.append(seen)
                route = web.routes.get(parts.path)
                page = route(seen) if route else Page("not found", 404, "text/plain")
                body = page.body.encode() if isinstance(page.body, str) else page.body
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in page.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                step = max(1, len(body) // page.chunks)
                for start in range(0, max(len(body), 1), step):
                    if page.delay_s:
                        time.sleep(page.delay_s)
                    try:
                        self.wfile.write(body[start : start + step])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> LocalWeb:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, path: str, page: Page | Route) -> None:
        self.routes[path] = page if callable(page) else (lambda _seen, p=page: p)

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def article(title: str, text: str) -> str:
    """A page with navigation chrome around one article (what extraction must cut)."""
    menu = "".join(f"<li><a href='/{i}'>Menu item {i}</a></li>" for i in range(8))
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n"))
    return (
        f"<html><head><title>{title}</title></head><body><nav><ul>{menu}</ul></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        "<footer>Copyright footer text</footer></body></html>"
    )


class Client(httpx.AsyncClient):
    """An httpx client that echoes the CSRF cookie like the web app does."""

    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:  # type: ignore[override]
        request = super().build_request(method, url, **kwargs)
        csrf = self.cookies.get("parley_csrf")
        if csrf and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            request.headers.setdefault("X-CSRF-Token", csrf)
        return request


def make_client(app: Any) -> Client:
    return Client(transport=httpx.ASGITransport(app=app), base_url="http://parley.test")


async def signup(client: Client, email: str) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/signup", json={"email": email, "password": "correct horse", "name": "x"}
    )
    assert response.status_code in (201, 202), response.text
    user: dict[str, Any] = response.json()["user"]
    return user


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            events.append((name, json.loads(data)))
    return events
