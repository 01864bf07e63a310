"""The wire side of ``ScriptedUpstream``: reply scripts, SSE encoding, the ASGI app.

Kept apart from ``parley.providers.testing`` (the public face) so each stays
small. Chunks are encoded once per reply and the default token stream is
cached, so the server is never the bottleneck of a streaming benchmark.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import struct
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Failure = Literal["400", "401", "403", "429", "500", "timeout", "cut", "malformed"]

_WORDS = re.compile(r"\s*\S+|\s+")
_FILLER = [" lorem", " ipsum", " dolor", " sit", " amet", " consectetur", " adipiscing", " elit"]


@dataclass(slots=True)
class UpstreamReply:
    """One scripted answer.

    ``text`` streams in word-sized tokens (or ``chunk_chars`` characters),
    ``tokens_per_chunk`` of them per SSE event; ``tokens`` (when set) replaces
    ``text`` with that many filler tokens. ``rate`` is events per second (None:
    as fast as possible). ``fail`` picks a failure: an HTTP status, ``timeout``
    (never answer), ``cut`` (end the body after ``cut_after`` events without a
    finish) or ``malformed`` (undecodable data after ``cut_after`` events).
    ``usage=False``: no usage chunk even when the client asks for one (servers that
    ignore ``stream_options``), so the client must count the tokens itself.
    """

    text: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    reasoning: str = ""
    chunk_chars: int | None = None
    tokens: int | None = None
    tokens_per_chunk: int = 1
    rate: float | None = None
    fail: Failure | None = None
    cut_after: int = 2
    delay: float = 0.0
    finish_reason: str | None = None
    retry_after: str | None = "1"  # the Retry-After header of a 429 (None: no header)
    usage: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UpstreamReply:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["tool_calls"] = [(str(n), str(a)) for n, a in values.get("tool_calls", [])]
        return cls(**values)


@dataclass(slots=True)
class RecordedRequest:
    """What a client sent, and how the exchange ended."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int = 0
    completed: bool = False
    disconnected: bool = False
    client: tuple[str, int] | None = None  # the peer: one connection, one address


def _pieces(reply: UpstreamReply) -> list[str]:
    """Split the reply's text into the token strings to stream."""
    if reply.tokens is not None:
        return [_FILLER[i % len(_FILLER)] for i in range(reply.tokens)]
    text = reply.text
    if reply.chunk_chars:
        step = reply.chunk_chars
        return [text[i : i + step] for i in range(0, len(text), step)]
    return _WORDS.findall(text)


def _group(pieces: list[str], per: int) -> list[str]:
    if per <= 1:
        return pieces
    return ["".join(pieces[i : i + per]) for i in range(0, len(pieces), per)]


def _split_args(arguments: str, size: int = 12) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def _prompt_tokens(body: Any) -> int:
    """A deterministic stand-in for prompt token counting (words + 1 per message)."""
    total = 0
    messages = body.get("messages", []) if isinstance(body, dict) else []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content blocks: count the text ones
            content = " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        total += 1 + len(str(content or "").split())
    system = body.get("system") if isinstance(body, dict) else None
    if system:
        total += len(str(system).split())
    return total


def _sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _event(name: str, data: Any) -> bytes:
    payload = json.dumps(data, separators=(",", ":")).encode()
    return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"


# ------------------------------------------------------------ OpenAI encoding


def _openai_chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    return _sse(
        {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def _openai_events(reply: UpstreamReply, model: str) -> tuple[list[bytes], int, str]:
    """Encoded chunks (without the usage chunk and [DONE]), completion tokens, finish."""
    events = [_openai_chunk(model, {"role": "assistant", "content": ""})]
    completion = 0
    if reply.reasoning:
        for piece in _group(_WORDS.findall(reply.reasoning), reply.tokens_per_chunk):
            events.append(_openai_chunk(model, {"reasoning_content": piece}))
            completion += 1
    pieces = _pieces(reply)
    completion += len(pieces)
    for piece in _group(pieces, reply.tokens_per_chunk):
        events.append(_openai_chunk(model, {"content": piece}))
    for index, (name, arguments) in enumerate(reply.tool_calls):
        head = {"index": index, "id": f"call_{index}", "type": "function"}
        head["function"] = {"name": name, "arguments": ""}
        events.append(_openai_chunk(model, {"tool_calls": [head]}))
        for part in _split_args(arguments):
            call = {"index": index, "function": {"arguments": part}}
            events.append(_openai_chunk(model, {"tool_calls": [call]}))
            completion += 1
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    events.append(_openai_chunk(model, {}, finish))
    return events, completion, finish


def _openai_usage(model: str, prompt: int, completion: int) -> bytes:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return _sse(
        {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        }
    )


def _openai_completion(reply: UpstreamReply, model: str, prompt: int) -> dict[str, Any]:
    pieces = _pieces(reply)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces) or None}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(reply.tool_calls)
        ]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    completion = len(pieces)
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Deterministic bag-of-words vectors (64 hashed dimensions): texts sharing words
    are close, so retrieval through an embeddings endpoint can be tested end to end."""
    texts = body.get("input") or []
    texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
    data = []
    for index, item in enumerate(texts):
        vector = [0.0] * 64
        for word in re.findall(r"\w+", item.lower()):
            vector[zlib.crc32(word.encode()) % 64] += 1.0
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        values = [v / norm for v in vector]
        embedding: Any = values
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model") or "scripted-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --------------------------------------------------------- Anthropic encoding


def _anthropic_events(reply: UpstreamReply, model: str, prompt: int) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": 1},
    }
    events = [_event("message_start", {"type": "message_start", "message": message})]
    index = 0
    completion = 0

    def block(kind: str, start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for delta in deltas:
            body = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(_event("content_block_delta", body))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if reply.reasoning:
        parts = _group(_WORDS.findall(reply.reasoning), reply.tokens_per_chunk)
        completion += len(parts)
        deltas = [{"type": "thinking_delta", "thinking": p} for p in parts]
        deltas.append({"type": "signature_delta", "signature": "c2lnbmF0dXJl"})
        block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, deltas)
    pieces = _pieces(reply)
    if pieces:
        completion += len(pieces)
        parts = _group(pieces, reply.tokens_per_chunk)
        block(
            "text", {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in parts]
        )
    for i, (name, arguments) in enumerate(reply.tool_calls):
        parts = _split_args(arguments)
        completion += len(parts)
        start = {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}
        block("tool_use", start, [{"type": "input_json_delta", "partial_json": p} for p in parts])
    stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": completion},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def _anthropic_message(reply: UpstreamReply, model: str, prompt: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append({"type": "thinking", "thinking": reply.reasoning, "signature": "c2ln"})
    pieces = _pieces(reply)
    if pieces:
        content.append({"type": "text", "text": "".join(pieces)})
    for i, (name, arguments) in enumerate(reply.tool_calls):
        content.append(
            {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": json.loads(arguments)}
        )
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": len(pieces)},
    }


_ERRORS = {
    "400": (400, "invalid_request_error", "Invalid value for 'messages'."),
    "403": (403, "permission_error", "This key may not use this model."),
    "401": (401, "authentication_error", "Incorrect API key provided."),
    "429": (429, "rate_limit_error", "Rate limit reached; retry after 1s."),
    "500": (500, "api_error", "The server had an error while processing your request."),
}


# ------------------------------------------------------------------- the app


class UpstreamApp:
    """The raw ASGI application; all state lives here and is thread-safe enough
    for the GIL (deque appends/pops are atomic)."""

    def __init__(
        self,
        *,
        default_text: str,
        default_tokens: int | None,
        models: list[str],
        api_key: str | None,
        events_per_write: int,
        ollama: bool = False,
    ) -> None:
        self.ollama = ollama  # also answer Ollama's own model list, GET /api/tags
        self.default_text = default_text
        self.default_tokens = default_tokens
        self.models = models
        self.api_key = api_key
        # extra fields of a model's /v1/models entry (vLLM's max_model_len, owned_by...)
        self.model_fields: dict[str, dict[str, Any]] = {}
        # Ollama's POST /api/show answer per model (absent: 404)
        self.ollama_show: dict[str, dict[str, Any]] = {}
        self.events_per_write = max(1, events_per_write)
        self.script: deque[UpstreamReply] = deque()
        self.requests: deque[RecordedRequest] = deque(maxlen=10_000)
        self._cache: dict[tuple[str, str], tuple[list[bytes], int, str]] = {}

    def next_reply(self) -> tuple[UpstreamReply, bool]:
        try:
            return self.script.popleft(), False
        except IndexError:
            if self.default_tokens is not None:
                return UpstreamReply(tokens=self.default_tokens), True
            return UpstreamReply(text=self.default_text), True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message: MutableMapping[str, Any] = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        peer = scope.get("client")
        record = RecordedRequest(
            scope["method"], path, headers, body, client=tuple(peer) if peer else None
        )
        if not path.startswith("/_"):
            self.requests.append(record)
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await self._route(scope["method"], path, headers, body, record, send, gone)
            record.completed = not gone.is_set()
        finally:
            record.disconnected = gone.is_set()
            watcher.cancel()

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        record: RecordedRequest,
        send: Send,
        gone: asyncio.Event,
    ) -> None:
        if path == "/_script" and method == "POST":
            items = body if isinstance(body, list) else [body]
            for item in items:
                self.script.append(UpstreamReply.from_dict(item))
            return await _json(send, 200, {"queued": len(self.script)})
        if path == "/_requests" and method == "GET":
            return await _json(send, 200, [asdict(r) for r in self.requests])
        if path == "/_requests" and method == "DELETE":
            self.requests.clear()
            self.script.clear()
            return await _json(send, 200, {})
        anthropic = path.endswith("/messages")
        if self.api_key is not None:
            given = headers.get("x-api-key") or headers.get("authorization", "")[7:]
            if given != self.api_key:
                record.status = 401
                return await _error(send, "401", anthropic)
        if path == "/api/show" and method == "POST":
            shown = self.ollama_show.get(str((body or {}).get("model")))
            record.status = 200 if shown is not None else 404
            if shown is None:
                return await _json(send, 404, {"error": "model not found"})
            return await _json(send, 200, shown)
        if self.ollama and path == "/api/tags" and method == "GET":
            tags = [{"name": m, "model": m, "size": 0, "details": {}} for m in self.models]
            return await _json(send, 200, {"models": tags})
        if path.endswith("/models") and method == "GET":
            data = [
                {
                    "id": m,
                    "object": "model",
                    "created": 0,
                    "owned_by": "scripted",
                    **self.model_fields.get(m, {}),
                }
                for m in self.models
            ]
            if anthropic or "anthropic-version" in headers:
                data = [
                    {
                        "id": m,
                        "type": "model",
                        "display_name": m,
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                    for m in self.models
                ]
                return await _json(
                    send, 200, {"data": data, "has_more": False, "first_id": None, "last_id": None}
                )
            return await _json(send, 200, {"object": "list", "data": data})
        if method == "POST" and path.endswith("/embeddings"):
            record.status = 200 if isinstance(body, dict) else 400
            if not isinstance(body, dict):
                return await _json(send, 400, {"error": {"message": "body must be an object"}})
            return await _json(send, 200, _embeddings(body))
        if method != "POST" or not (path.endswith("/chat/completions") or anthropic):
            record.status = 404
            return await _json(send, 404, {"error": {"message": f"no route {path}"}})
        if not isinstance(body, dict):
            record.status = 400
            return await _json(send, 400, {"error": {"message": "body must be a JSON object"}})
        reply, is_default = self.next_reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.fail in _ERRORS:
            record.status = int(reply.fail or 0)
            return await _error(send, reply.fail or "", anthropic, reply.retry_after)
        if reply.fail == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), 600)
            return await _json(send, 504, {"error": {"message": "timeout"}})
        record.status = 200
        model = str(body.get("model") or "scripted-model")
        prompt = _prompt_tokens(body)
        if not body.get("stream"):
            payload = (_anthropic_message if anthropic else _openai_completion)(
                reply, model, prompt
            )
            return await _json(send, 200, payload)
        if anthropic:
            events = _anthropic_events(reply, model, prompt)
            tail: list[bytes] = []
        else:
            key = (model, repr(reply))
            cached = self._cache.get(key) if is_default else None
            if cached is None:
                cached = _openai_events(reply, model)
                if is_default:
                    self._cache[key] = cached
            events, completion, _ = cached
            tail = []
            if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
                tail.append(_openai_usage(model, prompt, completion))
            tail.append(b"data: [DONE]\n\n")
        if reply.fail == "cut":
            events, tail = events[: reply.cut_after], []
        elif reply.fail == "malformed":
            broken = b'event: content_block_delta\ndata: {"type": [\n\n' if anthropic else b""
            events = [*events[: reply.cut_after], broken or b'data: {"choices": [\n\n']
            tail = []
        await self._stream(send, events + tail if tail else events, reply.rate, gone)

    async def _stream(
        self, send: Send, events: list[bytes], rate: float | None, gone: asyncio.Event
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        if rate is None:
            per = self.events_per_write
            for n, i in enumerate(range(0, len(events), per)):
                if gone.is_set():
                    return
                frame = b"".join(events[i : i + per]) if per > 1 else events[i]
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                if n % 16 == 15:
                    await asyncio.sleep(0)  # let other streams (and the disconnect watcher) run
        else:
            loop = asyncio.get_running_loop()
            interval = 1.0 / rate
            due = loop.time()
            for event in events:
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
                due += interval
                wait = due - loop.time()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gone.wait(), wait)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _json(send: Send, status: int, payload: Any, retry_after: str | None = "1") -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 429 and retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _error(send: Send, fail: str, anthropic: bool, retry_after: str | None = "1") -> None:
    status, kind, message = _ERRORS[fail]
    if anthropic:
        payload: Any = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        payload = {"error": {"message": message, "type": kind, "code": kind}}
    await _json(send, status, payload, retry_after)
