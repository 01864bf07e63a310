"""A local stand-in for Hugging Face's file URLs, for the model download tests.

A real HTTP server on a free loopback port that serves
``/{owner}/{repo}/resolve/{revision}/{file}`` the way Hugging Face does for
LFS files: ``HEAD`` and ``GET`` answer ``302`` to a CDN path with the file's
SHA-256 in ``X-Linked-Etag`` and its size in ``X-Linked-Size``; the CDN path
serves the bytes with ``Range`` support (``206``), ``ETag`` and
``Content-Length``. Switches for the failures a download must survive:

- ``cut_after``: the next ``cuts`` bodies stop after that many bytes and the
  connection is closed (the announced ``Content-Length`` is not reached);
- ``hold_after``: the body pauses after that many bytes until ``release()``
  (a test looks at progress, or cancels, mid-download);
- ``wrong_sha``: the published checksum is not the file's;
- ``direct``: no redirect; the resolve URL serves the bytes with ``ETag``.

``requests`` records ``(method, path, range header)`` of every request.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class FakeFile:
    data: bytes
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()


class FakeHuggingFace:
    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files: dict[str, FakeFile] = {}
        for path, data in (files or {}).items():
            self.add(path, data)
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut_after: int | None = None
        self.cuts = 0
        self.hold_after: int | None = None
        self.wrong_sha = False
        self.direct = False
        self.chunk = 64 * 1024
        self._held = threading.Event()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # files -------------------------------------------------------------

    def add(self, path: str, data: bytes) -> FakeFile:
        """``path`` is ``owner/repo/file``; served under any revision."""
        self.files[path] = FakeFile(data)
        return self.files[path]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # holding a body mid-way -----------------------------------------------

    def wait_held(self, timeout: float = 10.0) -> bool:
        """True once a body paused at ``hold_after`` bytes."""
        return self._held.wait(timeout)

    def release(self) -> None:
        self.hold_after = None
        self._release.set()

    # server ------------------------------------------------------------

    def __enter__(self) -> FakeHuggingFace:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                fake._handle(self, body=False)

            def do_GET(self) -> None:
                fake._handle(self, body=True)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # answers -------------------------------------------------------------

    def _published_sha(self, item: FakeFile) -> str:
        return hashlib.sha256(b"not the file").hexdigest() if self.wrong_sha else item.sha256

    def _handle(self, h: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = h.path.split("?", 1)[0]
        self.requests.append((h.command, path, h.headers.get("Range")))
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[2] == "resolve":
            item = self.files.get(f"{parts[0]}/{parts[1]}/{parts[4]}")
            if item is None:
                return self._plain(h, 404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
            if self.direct:
                return self._serve(h, item, body=body, etag=self._published_sha(item))
            headers = {
                "Location": f"/cdn/{item.sha256}",
                "X-Linked-Etag": f'"{self._published_sha(item)}"',
                "X-Linked-Size": str(len(item.data)),
                "ETag": '"a1b2c3-git-blob"',  # the pointer file's, not the content's
            }
            return self._plain(h, 302, b"", headers)
        if len(parts) == 2 and parts[0] == "cdn":
            for item in self.files.values():
                if item.sha256 == parts[1]:
                    return self._serve(h, item, body=body, etag=item.sha256)
        return self._plain(h, 404, b"Not found", {})

    def _plain(
        self, h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]
    ) -> None:
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _serve(self, h: BaseHTTPRequestHandler, item: FakeFile, *, body: bool, etag: str) -> None:
        start = 0
        wanted = h.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[6:-1])
            if start >= len(item.data):
                return self._plain(h, 416, b"", {"Content-Range": f"bytes */{len(item.data)}"})
        data = item.data[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(item.data) - 1}/{len(item.data)}")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("ETag", f'"{etag}"')
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if not body:
            return
        cut = self.cut_after if self.cuts > 0 else None
        if cut is not None:
            self.cuts -= 1
        sent = 0
        while sent < len(data):
            if self.hold_after is not None and start + sent >= self.hold_after:
                self._held.set()
                self._release.wait(30)
            piece = data[sent : sent + self.chunk]
            if cut is not None and sent + len(piece) > cut:
                h.wfile.write(piece[: max(cut - sent, 0)])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                h.wfile.write(piece)
            except OSError:  # the client went away (a cancelled download)
                return
            sent += len(piece)
