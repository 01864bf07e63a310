"""Server-Sent Events framing for chat turn streams (the web app's `/api` chat routes).

Each event is framed once into bytes; text deltas (the per-token path) take a
shortcut that skips ``asdict``. Final records are expanded to message objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any

from starlette.responses import StreamingResponse

from parley.api.schemas import message_out
from parley.messages import Done, TextDelta, TurnEvent, Usage, UsageEvent
from parley.storage.tables import Message as MessageRow
from parley.turns import Final, TurnItem
from parley.turns.events import Resync, TitleMade
from parley.turns.streams import Relayed

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def frame(event: str, data: Any, seq: int | None = None) -> bytes:
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {event}\ndata: {_dumps(data)}\n\n".encode()


def _tokens(usage: Usage) -> dict[str, int]:
    """Token counts as the stream carries them (cached input is the usage ledger's)."""
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def encode(item: TurnEvent, seq: int) -> bytes:
    if isinstance(item, TextDelta):
        return b'id: %d\nevent: text\ndata: {"text":' % seq + _dumps(item.text).encode() + b"}\n\n"
    if isinstance(item, UsageEvent):
        return frame("usage", {"usage": _tokens(item.usage)}, seq)
    payload = asdict(item)
    kind = payload.pop("type")
    return frame(kind, payload, seq)


def done_payload(
    message: MessageRow, siblings: list[str] | None, finish_reason: str | None
) -> dict[str, Any]:
    """``done`` from a stored message: a turn finished before the reader came back."""
    return {
        "finish_reason": finish_reason or message.finish_reason or message.status,
        "usage": {"input_tokens": message.input_tokens, "output_tokens": message.output_tokens},
        "message": message_out(message, siblings),
    }


async def turn_stream(
    start: dict[str, Any] | None,
    events: AsyncIterator[tuple[int, TurnItem]],
    stored: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
) -> AsyncIterator[bytes]:
    """Frame a turn's items, each with its sequence number as the SSE ``id``
    (``start`` is 0). A reader reattaching with ``Last-Event-ID`` gets the same
    frames with the same ids (``start=None`` then: it has it already); when what it
    missed holds no ``done`` (it had seen it), ``stored`` gives the ``done`` payload
    from the stored message, so every stream ends with one."""
    if start is not None:
        yield frame("start", start, 0)
    done: dict[str, Any] | None = None
    sent_done = False
    async for seq, item in events:
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
            yield frame("done", done, seq)
            continue
        if isinstance(item, TitleMade):
            yield frame(
                "title", {"conversation_id": item.conversation_id, "title": item.title}, seq
            )
            continue
        if isinstance(item, Done):
            # Held back until the stored record is ready, so `done` carries it.
            done = {"finish_reason": item.finish_reason, "usage": _tokens(item.usage)}
            continue
        if isinstance(item, Relayed):  # from another worker, framed as it was there
            yield frame(item.kind, item.payload, seq)
            continue
        if isinstance(item, Resync):
            state: dict[str, Any] = {
                "content": item.content,
                "reasoning": item.reasoning,
                "steps": item.steps,
                "sources": item.sources,
            }
            yield frame("resync", state, seq)
            continue
        yield encode(item, seq)
    if not sent_done and stored is not None:
        payload = await stored()
        if payload is not None:
            yield frame("done", payload)
            return
    if not sent_done:
        # The record could not be stored; the stream still ends with `done`.
        yield frame(
            "done", {"finish_reason": "error", "usage": None, "message": None, **(done or {})}
        )


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)
