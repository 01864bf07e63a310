"""A small synchronous client of Parley's own HTTP API (the routes the web app uses).

Every failure is a ``ClientError`` carrying one line for the terminal: the server
is down (and how to start it), the key is refused (run ``parley login``), or the
problem's own ``detail``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2

__all__ = ["DEFAULT_URL", "ClientError", "NotSignedIn", "ParleyClient", "ServerDown"]

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = httpx2.Timeout(30.0, read=None)  # a turn may think (or run tools) for minutes


class ClientError(Exception):
    """One line to show the user."""


class ServerDown(ClientError):
    pass


class NotSignedIn(ClientError):
    pass


def _problem(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(detail, list) and detail:  # a validation error
            first = detail[0]
            if isinstance(first, dict):
                return str(first.get("msg", "invalid request"))
    return f"HTTP {response.status_code} {response.reason_phrase}"


class ParleyClient:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx2.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ plumbing

    def _down(self, exc: Exception) -> ServerDown:
        return ServerDown(
            f"Cannot reach Parley at {self.url}: start it with `parley serve`, or pass --url "
            "(or set PARLEY_URL) for another server."
        )

    def _check(self, response: httpx2.Response) -> httpx2.Response:
        if response.status_code == 401:
            raise NotSignedIn(
                f"Not signed in to {self.url} (the API key is missing, revoked or wrong): "
                "run `parley login`."
            )
        if response.status_code >= 400:
            raise ClientError(_problem(response))
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx2.TransportError as exc:
            raise self._down(exc) from None
        self._check(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # ------------------------------------------------------------ account

    def login(self, email: str, password: str, key_name: str) -> dict[str, Any]:
        """Sign in with a password, create an API key, end the session: the new key."""
        try:
            answer = self.http.post("/api/auth/login", json={"email": email, "password": password})
        except httpx2.TransportError as exc:
            raise self._down(exc) from None
        if answer.status_code == 401:
            raise ClientError("Wrong email or password.")
        self._check(answer)
        csrf = {"X-CSRF-Token": self.http.cookies.get("parley_csrf") or ""}
        key = self.request("POST", "/api/keys", json={"name": key_name}, headers=csrf)
        self.request("POST", "/api/auth/logout", headers=csrf)
        self.http.cookies.clear()
        return dict(key)

    def me(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/auth/me")["user"])

    # ------------------------------------------------------------ models and conversations

    def models(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/models"))

    def conversations(self, limit: int = 20) -> list[dict[str, Any]]:
        page = self.request("GET", "/api/conversations", params={"limit": limit})
        return list(page["items"])

    def create_conversation(self, model: str | None = None) -> dict[str, Any]:
        body = {"model": model} if model else {}
        return dict(self.request("POST", "/api/conversations", json=body))

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/conversations/{conversation_id}"))

    def set_model(self, conversation_id: str, model: str) -> dict[str, Any]:
        return dict(
            self.request("PATCH", f"/api/conversations/{conversation_id}", json={"model": model})
        )

    # ------------------------------------------------------------ turns

    @contextmanager
    def send(
        self, conversation_id: str, content: str, model: str | None = None
    ) -> Iterator[Iterator[tuple[str, dict[str, Any]]]]:
        """The turn's events as ``(name, data)``, read as they arrive."""
        body: dict[str, Any] = {"content": content}
        if model:
            body["model"] = model
        try:
            with self.http.stream(
                "POST", f"/api/conversations/{conversation_id}/messages", json=body
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                yield _events(response)
        except httpx2.TransportError as exc:
            raise self._down(exc) from None

    def stop(self, conversation_id: str) -> None:
        self.request("POST", f"/api/conversations/{conversation_id}/stop")

    def decide_tool_call(self, conversation_id: str, call_id: str, approve: bool) -> None:
        self.request(
            "POST",
            f"/api/conversations/{conversation_id}/tool-calls/{call_id}",
            json={"approve": approve},
        )

    # ------------------------------------------------------------ files

    def upload(self, path: Path, conversation_id: str) -> dict[str, Any]:
        with path.open("rb") as fh:
            return dict(
                self.request(
                    "POST",
                    "/api/files",
                    files={"file": (path.name, fh)},
                    data={"conversation_id": conversation_id},
                )
            )

    def file(self, file_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/files/{file_id}"))


def _events(response: httpx2.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events: ``event:`` and ``data:`` lines, a blank line ends one."""
    name, data = "message", list[str]()
    for line in response.iter_lines():
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = {"raw": "\n".join(data)}
                yield name, payload if isinstance(payload, dict) else {"value": payload}
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
