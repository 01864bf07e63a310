"""Server-Sent Events framing for chat turn streams (the web app's `/api` chat routes).

Each event is framed once into bytes; text deltas (the per-token path) take a
shortcut that skips ``asdict``. Final records are expanded to message objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from starlette.responses import StreamingResponse

from parley.api.schemas import message_out
from parley.messages import Done, TextDelta, TurnEvent
from parley.turns import Final, TurnItem

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {_dumps(data)}\n\n".encode()


def encode(item: TurnEvent) -> bytes:
    if isinstance(item, TextDelta):
        return b'event: text\ndata: {"text":' + _dumps(item.text).encode() + b"}\n\n"
    payload = asdict(item)
    kind = payload.pop("type")
    return frame(kind, payload)


async def turn_stream(
    start: dict[str, Any], events: AsyncIterator[TurnItem]
) -> AsyncIterator[bytes]:
    yield frame("start", start)
    done: dict[str, Any] | None = None
    sent_done = False
    async for item in events:
        if isinstance(item, Final):
            sent_done = True
            done = done or {}
            done["message"] = message_out(item.message, item.siblings)
            done.setdefault("finish_reason", item.finish_reason)
            done.setdefault(
                "usage",
                {
                    "input_tokens": item.usage.input_tokens,
                    "output_tokens": item.usage.output_tokens,
                },
            )
            yield frame("done", done)
            if item.title:
                yield frame(
                    "title", {"conversation_id": item.message.conversation_id, "title": item.title}
                )
            continue
        if isinstance(item, Done):
            # Held back until the stored record is ready, so `done` carries it.
            done = {"finish_reason": item.finish_reason, "usage": asdict(item.usage)}
            continue
        yield encode(item)
    if not sent_done:
        # The record could not be stored; the stream still ends with `done`.
        yield frame(
            "done", {"finish_reason": "error", "usage": None, "message": None, **(done or {})}
        )


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)
