"""Text embeddings, shared by knowledge retrieval and memory recall.

A package of its own (below the features, needing only ``parley.config``) so
that neither feature imports the other to get vectors, and one loaded model
serves both. An ``Embedder`` turns texts into L2-normalized float32 vectors
(one row per text), so cosine similarity is a dot product. Implementations:
the embedded all-MiniLM-L6-v2 (``minilm``: offline, ONNX Runtime or numpy, no
torch) and any
OpenAI-compatible ``/v1/embeddings`` endpoint. ``build_embedder(settings)``
picks one from the ``embedding_*`` settings.

A remote endpoint costs money per call, so ``OpenAIEmbedder`` reports each HTTP
call it makes (``EmbedCall``: texts, the endpoint's token count, latency,
outcome) to its ``on_call`` hook; the usage ledger (``parley.usage.metering``,
a layer above) sets that hook. The embedded model costs nothing and reports none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from parley.config import Settings
from parley.container import Key
from parley.embeddings.minilm import MINILM_NAME, MiniLM
from parley.engine.tokens import estimate_tokens

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "EMBEDDER",
    "EmbedCall",
    "Embedder",
    "EmbeddingError",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "build_embedder",
    "normalize",
    "public_name",
]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """``name`` identifies the model (stored beside vectors, so a change re-indexes)."""

    name: str
    dim: int

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


class EmbeddingError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """One request to a remote embeddings endpoint (``OpenAIEmbedder.on_call``):
    ``input_tokens`` is the endpoint's count, else an estimate (never zero);
    ``outcome`` is ``ok`` or ``embeddings_failed``."""

    model: str
    texts: int
    input_tokens: int
    latency_ms: float
    outcome: str
    counted: bool = False


EmbedReport = Callable[[EmbedCall], None]


# The server's embedder on the services box, for ``POST /v1/embeddings``: provided by
# the knowledge feature, whose embedder (``build_embedder``) is the one that indexes
# files, so the API serves the same vectors the search uses.
EMBEDDER: Key[Embedder] = Key("embedder")


def public_name(embedder: Embedder) -> str:
    """The model name clients see (``all-MiniLM-L6-v2``, ``text-embedding-3-small``):
    the embedder's name without its kind (``openai:``, ``local:``)."""
    return embedder.name.split(":", 1)[-1]


def normalize(vectors: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32)


# Two threads: a question's embedding need not wait for a whole ingestion batch, and
# few threads keep few malloc arenas (memory) around.
_EMBED_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="parley-embed")
_MODELS: dict[str, MiniLM] = {}
_MODELS_LOCK = threading.Lock()


def _shared_minilm(model_dir: Path | None, runtime: str = "auto") -> MiniLM:
    """One loaded copy per process (and runtime), whichever feature asks first."""
    key = f"{model_dir or ''}|{runtime}"
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = MiniLM(model_dir, runtime)
        return model


class LocalEmbedder:
    """all-MiniLM-L6-v2 in-process (ONNX Runtime, or numpy: ``minilm``). Loads on first
    use; runs in a thread."""

    def __init__(
        self, model_dir: Path | None = None, batch_size: int = 32, runtime: str = "auto"
    ) -> None:
        self.model = _shared_minilm(model_dir, runtime)
        self.name = MINILM_NAME if model_dir is None else f"local:{model_dir.name}"
        self.dim = 384  # BERT-small family; the loaded config has the final word
        self.batch_size = batch_size

    @property
    def available(self) -> bool:
        return self.model.available

    def warm(self) -> None:
        """Prepare fast question embedding in the background (``MiniLM.warm``):
        called by memory recall the first time it embeds a question (it embeds one
        every turn); nothing is loaded before that, so an idle server stays small."""
        if self.model.available:
            threading.Thread(target=self.model.warm, name="parley-warm", daemon=True).start()

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            loop = asyncio.get_running_loop()
            vectors = await loop.run_in_executor(
                _EMBED_POOL, self.model.encode, texts, self.batch_size
            )
        except RuntimeError as exc:
            raise EmbeddingError(str(exc)) from exc
        self.dim = int(vectors.shape[1])
        return vectors


class OpenAIEmbedder:
    """Any OpenAI-compatible ``POST /v1/embeddings`` (OpenAI, vLLM, Ollama, llama.cpp...)."""

    def __init__(
        self,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
    ) -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=2
        )
        self.name = f"openai:{model}"
        self.model = model
        self.dim = 0  # known after the first answer
        self.batch_size = batch_size
        # Told about every request (the usage ledger's meter sets it); must not raise.
        self.on_call: EmbedReport | None = None

    def _report(self, batch: list[str], tokens: int, started: float, outcome: str) -> None:
        if self.on_call is None:
            return
        counted = tokens <= 0
        if counted:
            tokens = sum(max(1, estimate_tokens(text)) for text in batch)
        elapsed = (time.monotonic() - started) * 1000
        try:
            self.on_call(EmbedCall(self.model, len(batch), tokens, elapsed, outcome, counted))
        except Exception:
            log.exception("could not report an embeddings call")

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + self.batch_size]]
            started = time.monotonic()
            try:
                response = await self.client.embeddings.create(
                    model=self.model, input=batch, encoding_format="float"
                )
            except Exception as exc:
                self._report(batch, 0, started, "embeddings_failed")
                raise EmbeddingError(f"The embeddings endpoint failed: {exc}") from exc
            usage = getattr(response, "usage", None)
            self._report(batch, int(getattr(usage, "prompt_tokens", 0) or 0), started, "ok")
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbeddingError("The embeddings endpoint returned the wrong number of rows.")
            rows.extend(list(item.embedding) for item in data)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = normalize(np.asarray(rows, dtype=np.float32))
        self.dim = int(vectors.shape[1])
        return vectors


def build_embedder(settings: Settings) -> LocalEmbedder | OpenAIEmbedder:
    """The configured embedder: the embedded MiniLM, or an OpenAI-compatible endpoint.

    ``PARLEY_EMBEDDING_PROVIDER=openai`` with ``PARLEY_EMBEDDING_BASE_URL`` (default
    OpenAI's), ``PARLEY_EMBEDDING_MODEL`` and ``PARLEY_EMBEDDING_API_KEY`` (or the
    ``OPENAI_API_KEY`` environment variable) selects an endpoint.
    """
    if settings.embedding_provider == "openai":
        import os

        return OpenAIEmbedder(
            settings.embedding_base_url,
            settings.embedding_model or "text-embedding-3-small",
            settings.embedding_api_key or os.environ.get("OPENAI_API_KEY"),
            batch_size=max(1, settings.embedding_batch * 2),
        )
    model_dir = (
        Path(settings.embedding_model).expanduser()
        if settings.embedding_model
        and (Path(settings.embedding_model).expanduser() / "model.safetensors").is_file()
        else None
    )
    return LocalEmbedder(
        model_dir, batch_size=settings.embedding_batch, runtime=settings.embedding_runtime
    )
