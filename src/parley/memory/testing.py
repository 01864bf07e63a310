"""A deterministic ``Embedder`` for tests and benchmarks: hashed bag of words.

Texts sharing meaningful words get similar vectors (cosine = word overlap),
so semantic recall can be exercised without loading a model, and results
never depend on the machine.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from parley.memory.text import content_words

__all__ = ["HashingEmbedder"]


class HashingEmbedder:
    def __init__(self, dim: int = 256, name: str = "test:hashing") -> None:
        self.dim = dim
        self.name = name
        self.calls = 0

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in content_words(text, generic=False):
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)
