"""Test doubles at the model boundary, shipped so every layer tests the same way.

``ScriptedUpstream`` is a real HTTP server speaking the OpenAI-compatible API
(``GET /v1/models``, ``POST /v1/chat/completions`` streamed or not) and
Anthropic's ``POST /v1/messages``. Tests script replies (text, reasoning, tool
calls, failures, pacing) and the real provider adapters talk to it over TCP, so
the SDKs, SSE parsing, error mapping and cancellation are all exercised.

It is built for benchmarks too: a raw ASGI app on uvicorn (httptools, uvloop)
with chunk bytes encoded once per reply (and cached for the default token
stream), so it streams thousands of tokens per request to hundreds of
concurrent clients without becoming the bottleneck.

Run it in a background thread (``with ScriptedUpstream() as up``) or as its own
process: ``python -m parley.providers.testing --port 9100 --default-tokens 2000``,
scripted over HTTP with ``POST /_script`` (a JSON list of replies) and inspected
with ``GET /_requests``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from parley.providers._upstream import RecordedRequest, UpstreamApp, UpstreamReply
from parley.providers.scripted import Reply, ScriptedModel, ScriptedProvider

__all__ = [
    "RecordedRequest",
    "Reply",
    "ScriptedModel",
    "ScriptedProvider",
    "ScriptedUpstream",
    "UpstreamReply",
    "block_external_model_requests",
    "write_tiny_gguf",
]


# ------------------------------------------------------------------ server


class ScriptedUpstream:
    """A scripted OpenAI/Anthropic-compatible HTTP server on 127.0.0.1.

    ``with ScriptedUpstream() as up:`` serves from a background thread;
    ``up.base_url`` is the OpenAI base URL (".../v1"), ``up.root_url`` the
    Anthropic one; ``up.enqueue(UpstreamReply(...))`` scripts the next answers
    (FIFO), and when the script is empty every request gets the default reply.
    ``ollama=True`` also answers Ollama's ``GET /api/tags`` with the models.
    """

    def __init__(
        self,
        *,
        default_text: str = "Hello from the scripted upstream.",
        default_tokens: int | None = None,
        models: list[str] | None = None,
        api_key: str | None = None,
        events_per_write: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
        ollama: bool = False,
    ) -> None:
        self.app = UpstreamApp(
            ollama=ollama,
            default_text=default_text,
            default_tokens=default_tokens,
            models=list(models or ["scripted-model"]),
            api_key=api_key,
            events_per_write=events_per_write,
        )
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.app.requests)

    def enqueue(self, *replies: UpstreamReply) -> None:
        self.app.script.extend(replies)

    def reset(self) -> None:
        self.app.script.clear()
        self.app.requests.clear()

    def _make_server(self) -> Any:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            http="httptools",
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_graceful_shutdown=1,
        )
        return uvicorn.Server(config)

    def serve_forever(self) -> None:
        """Serve in the current thread until interrupted (the CLI entry point)."""
        self._server = self._make_server()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> ScriptedUpstream:
        self._server = self._make_server()
        server = self._server

        def run() -> None:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(server.serve(sockets=[self._sock]))

        self._thread = threading.Thread(target=run, name="scripted-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scripted upstream failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> ScriptedUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        return asyncio.new_event_loop
    return uvloop.new_event_loop


# ------------------------------------------------------------------- guard


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def block_external_model_requests() -> Iterator[None]:
    """Fail fast on any connection to a non-loopback host (tests must never
    reach a real model API): patches httpx2 transports, which the openai and
    anthropic SDKs use, and plain socket connects as a backstop."""
    import httpx2

    def check(host: str) -> None:
        if not _is_loopback(host):
            raise httpx2.ConnectError(f"blocked in tests: connection to non-loopback host {host!r}")

    real_async = httpx2.AsyncHTTPTransport.handle_async_request
    real_sync = httpx2.HTTPTransport.handle_request
    real_connect = socket.socket.connect

    async def guarded_async(self: Any, request: Any) -> Any:
        check(request.url.host)
        return await real_async(self, request)

    def guarded_sync(self: Any, request: Any) -> Any:
        check(request.url.host)
        return real_sync(self, request)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(str(address[0]))
        real_connect(self, address)

    httpx2.AsyncHTTPTransport.handle_async_request = guarded_async  # type: ignore[method-assign]
    httpx2.HTTPTransport.handle_request = guarded_sync  # type: ignore[method-assign]
    socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        httpx2.AsyncHTTPTransport.handle_async_request = real_async  # type: ignore[method-assign]
        httpx2.HTTPTransport.handle_request = real_sync  # type: ignore[method-assign]
        socket.socket.connect = real_connect  # type: ignore[method-assign]


# ------------------------------------------------------------ tiny GGUF


def write_tiny_gguf(path: str | Path, *, n_embd: int = 32, n_ctx: int = 512, seed: int = 0) -> Path:
    """Write a random-weight llama-architecture GGUF (~100 KB) that llama.cpp
    loads in milliseconds: tests of the local provider's loading, streaming,
    queueing and cancellation code without real weights. Needs ``gguf`` (dev extra).
    """
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    n_ff, n_head = 2 * n_embd, 2
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    letters = [c for ch in "abcdefghijklmnopqrstuvwxyz" for c in (ch, "\u2581" + ch)] + ["\u2581"]
    tokens += letters
    types += [gguf.TokenType.NORMAL] * len(letters)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * 3 + [-1000.0] * 256 + [-1.0 - i for i in range(len(letters))])
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_chat_template(
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    )

    def weights(*shape: int) -> Any:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    vocab = len(tokens)
    writer.add_tensor("token_embd.weight", weights(vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    writer.add_tensor("output.weight", weights(vocab, n_embd))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", weights(n_embd, n_embd))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, np.float32))
    writer.add_tensor("blk.0.ffn_gate.weight", weights(n_ff, n_embd))
    writer.add_tensor("blk.0.ffn_up.weight", weights(n_ff, n_embd))
    writer.add_tensor("blk.0.ffn_down.weight", weights(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a scripted OpenAI-compatible upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--default-tokens", type=int, default=None)
    parser.add_argument("--default-text", default="Hello from the scripted upstream.")
    parser.add_argument("--models", default="scripted-model", help="comma-separated model ids")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--events-per-write", type=int, default=8)
    parser.add_argument("--ollama", action="store_true", help="also answer GET /api/tags")
    args = parser.parse_args(argv)
    upstream = ScriptedUpstream(
        default_text=args.default_text,
        default_tokens=args.default_tokens,
        models=[m for m in args.models.split(",") if m],
        api_key=args.api_key,
        events_per_write=args.events_per_write,
        host=args.host,
        port=args.port,
        ollama=args.ollama,
    )
    print(f"scripted upstream listening on {upstream.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        upstream.serve_forever()


if __name__ == "__main__":
    main()
