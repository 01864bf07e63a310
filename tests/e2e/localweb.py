"""A local stand-in for the web in browser tests: a SearxNG-shaped search API
(``/search?format=json``) and the page its first result links to (``/otters``), on
127.0.0.1 in a thread, recording the queries and page reads it served."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["OTTER_PAGE", "LocalWeb"]

OTTER_PAGE = """<!doctype html><html><head><title>Why otters hold hands</title></head>
<body><nav>Home | About</nav><article><h1>Why otters hold hands</h1>
<p>Sea otters hold hands while they sleep so that they do not drift apart on the
currents. A group of resting otters is called a raft, and rafts can hold dozens of
animals. Mothers also hold their pups on their chests while floating.</p>
<p>Researchers observed the behaviour in Monterey Bay for several years.</p>
</article><footer>Copyright</footer></body></html>"""


class LocalWeb:
    """A SearxNG-shaped ``/search?format=json`` and a page at ``/otters`` on 127.0.0.1."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.fetched: list[str] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/search":
                    query = parse_qs(url.query)
                    if query.get("format") != ["json"]:
                        return self._send(400, "text/plain", b"format=json missing")
                    web.queries.append(query.get("q", [""])[0])
                    return self._send(200, "application/json", json.dumps(web.results()).encode())
                if url.path == "/otters":
                    web.fetched.append(url.path)
                    return self._send(200, "text/html; charset=utf-8", OTTER_PAGE.encode())
                self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def results(self) -> dict[str, Any]:
        return {
            "results": [
                {
                    "url": f"{self.base}/otters",
                    "title": "Why otters hold hands",
                    "content": "Sea otters hold hands while sleeping so they do not drift apart.",
                },
                {
                    "url": f"{self.base}/rafts",
                    "title": "Otter rafts",
                    "content": "A group of resting otters is called a raft.",
                },
                {"url": "javascript:alert(1)", "title": "evil", "content": "dropped"},
            ]
        }

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
