"""Helpers for the tools tests: a local web server with scripted routes (the API
client, sign-up and SSE parser are ``apihelpers``', re-exported here).

``LocalWeb`` is a real HTTP server on 127.0.0.1 (stdlib, in a thread) so the
fetcher, the search clients and the MCP client go through real sockets.
Routes map a path to a function of the request returning a ``Page``; every
request is recorded (path, headers) for assertions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from apihelpers import Client, make_client, parse_sse, signup

__all__ = ["Client", "LocalWeb", "Page", "Seen", "article", "make_client", "parse_sse", "signup"]


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
