"""``/v1/responses`` in WebSocket mode: one socket, many responses, in turn.

The client sends ``{"type": "response.create", ...}`` (the body of ``POST
/v1/responses``); the server answers with the same events a stream carries, one
JSON message each, ending with ``response.completed`` (or ``incomplete``,
``failed``); then the next ``response.create`` may come, usually with the
previous response's id. A bad message gets ``{"type": "error", "status",
"error"}`` and the socket stays open; a bad key gets that error and the socket
closes (1008). Responses on one socket run one at a time, like OpenAI's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from parley.errors import ParleyError
from parley.http.deps import PROJECT_HEADER, in_project, websocket_api_key
from parley.http.problems import Problem, domain_status
from parley.responses.service import ResponsesService, Running
from parley.responses.wire import ResponseCreate

__all__ = ["serve_socket"]

log = logging.getLogger(__name__)

ERROR_TYPES = {401: "authentication_error", 404: "not_found_error", 409: "invalid_request_error"}


def _error(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {
        "type": "error",
        "status": status,
        "error": {"type": kind, "code": code, "message": message, "param": param},
    }


def _messages(chunk: bytes) -> list[str]:
    """The JSON of each SSE frame in ``chunk`` (``event: ...\\ndata: {...}\\n\\n``)."""
    out = []
    for block in chunk.split(b"\n\n"):
        at = block.find(b"data: ")
        if at >= 0:
            out.append(block[at + 6 :].decode())
    return out


async def _frames(running: Running) -> AsyncIterator[bytes]:
    assert running.frames is not None
    while (chunk := await running.frames.get()) is not None:
        yield chunk


async def serve_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        principal, services = await websocket_api_key(websocket)
    except Problem as exc:
        await websocket.send_json(_error(exc.status, exc.detail, exc.code))
        await websocket.close(code=1008)
        return
    responses = services.require(ResponsesService)
    while True:
        try:
            message = await websocket.receive_json()
        except WebSocketDisconnect:
            return
        except (json.JSONDecodeError, KeyError, ValueError):
            await websocket.send_json(_error(400, "Send JSON messages.", "invalid_json"))
            continue
        if not isinstance(message, dict) or message.get("type") != "response.create":
            await websocket.send_json(
                _error(400, 'Send {"type": "response.create", ...}.', "unknown_event", "type")
            )
            continue
        fields = {k: v for k, v in message.items() if k not in ("type", "stream")}
        try:
            body = ResponseCreate.model_validate(fields | {"stream": True})
            # the project is asked again for every response: access may have ended
            now = await in_project(principal, websocket.headers.get(PROJECT_HEADER), services)
            running = await responses.create(
                principal.user,
                principal.api_key_id,
                body,
                stream=True,
                may_use=principal.may_use_model,
                may_use_assistant=principal.scopes.allows_assistant,
                project=now.project_id,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            await websocket.send_json(
                _error(400, f"{where}: {first.get('msg', 'invalid')}", "invalid_request", where)
            )
            continue
        except ParleyError as exc:
            await websocket.send_json(_error(domain_status(exc), exc.message, exc.code))
            continue
        except Problem as exc:
            await websocket.send_json(_error(exc.status, exc.detail, exc.code))
            continue
        try:
            async for chunk in _frames(running):
                for text in _messages(chunk):
                    await websocket.send_text(text)
        except WebSocketDisconnect:
            return  # the response goes on and is stored; the client may GET it later
