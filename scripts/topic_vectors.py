"""Embed the memory topics (``parley.memory.topics.TOPICS``) with the default
model and write ``src/parley/memory/topic_vectors.npz``, so recall never waits
for them. Run after changing a topic's description:

    PYTHONPATH=src .venv/bin/python scripts/topic_vectors.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parley.embeddings import LocalEmbedder
from parley.memory.topics import BUNDLED, TOPICS, descriptions_key


def main() -> None:
    embedder = LocalEmbedder()
    if not embedder.available:
        raise SystemExit("all-MiniLM-L6-v2 is not installed (make install)")
    vectors = embedder.model.encode(list(TOPICS.values())).astype(np.float32)
    arrays: dict[str, Any] = {f"{embedder.name}:{descriptions_key()}": vectors}
    np.savez_compressed(BUNDLED, **arrays)
    print(f"wrote {BUNDLED} ({vectors.shape[0]} topics x {vectors.shape[1]})")


if __name__ == "__main__":
    main()
