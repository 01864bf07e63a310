"""Which saved memories enter this turn's context: semantic + keyword + recency, fused.

Recall runs before every answer, so it is built to cost about a millisecond
at a thousand memories: each user's active memories live in a per-process
snapshot (texts, word sets, an inverted index, a float32 matrix) that is
reloaded only when the database says they changed (one aggregate query per
turn, so several workers stay consistent). Scoring is then a matrix-vector
product and a few set lookups.

Fusion is reciprocal-rank (RRF): a memory's score sums ``w / (60 + rank)``
over the semantic list (cosine above ``MIN_SIMILARITY``) and the keyword list
(BM25-style idf over the user's memories). Recency breaks ties among relevant
memories and fills a few remaining slots with the newest ones, so a
question the words do not connect ("what should I cook?") still sees what
the user said lately. Scoped memories (project / assistant) are eligible only
inside their scope.

The relevance floor (``min_similarity``, setting ``memory_recall_floor``): when
it is above zero and the question has a vector, a memory is eligible only if
its cosine to the question reaches the floor or it shares a keyword with it,
and the recency fillers must reach it too; so "What is 1234*5678?" recalls
nothing. Without a question vector (no embedder, or it was slow) only keyword
matches are recalled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from parley.memory.store import Version
from parley.memory.tables import Memory
from parley.memory.text import content_words

__all__ = ["MIN_SIMILARITY", "RRF_K", "Scope", "Snapshot", "rank_memories"]

RRF_K = 60
MIN_SIMILARITY = 0.25
SEMANTIC_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
RECENCY_WEIGHT = 0.2
MAX_FILLERS = 3


@dataclass(slots=True, frozen=True)
class Scope:
    """The scopes of a turn; global memories are always eligible."""

    project_id: str | None = None
    assistant_id: str | None = None

    def allows(self, scope_type: str | None, scope_id: str | None) -> bool:
        if scope_type is None:
            return True
        if scope_type == "project":
            return scope_id is not None and scope_id == self.project_id
        if scope_type == "assistant":
            return scope_id is not None and scope_id == self.assistant_id
        return False


@dataclass(slots=True)
class Snapshot:
    """One user's active memories, ready to score."""

    version: Version
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    scopes: list[tuple[str | None, str | None]] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # indices, newest first
    postings: dict[str, list[int]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)
    vectors: npt.NDArray[np.float32] | None = None
    has_vector: npt.NDArray[np.bool_] | None = None
    model: str | None = None

    @classmethod
    def build(cls, version: Version, rows: Sequence[Memory], model: str | None) -> Snapshot:
        snap = cls(version=version, model=model)
        rows = sorted(rows, key=lambda r: (r.updated_at, r.id), reverse=True)
        dim = 0
        blobs: list[bytes | None] = []
        for index, row in enumerate(rows):
            snap.ids.append(row.id)
            snap.texts.append(row.text)
            snap.scopes.append((row.scope_type, row.scope_id))
            snap.order.append(index)
            terms = content_words(row.text)
            snap.lengths.append(max(len(terms), 1))
            for term in terms:
                snap.postings.setdefault(term, []).append(index)
            usable = row.embedding is not None and model and row.embedding_model == model
            blob = row.embedding if usable else None
            blobs.append(blob)
            if blob is not None:
                dim = len(blob) // 4
        if dim and rows:
            matrix = np.zeros((len(rows), dim), dtype=np.float32)
            present = np.zeros(len(rows), dtype=bool)
            for index, blob in enumerate(blobs):
                if blob is not None and len(blob) == dim * 4:
                    matrix[index] = np.frombuffer(blob, dtype=np.float32)
                    present[index] = True
            snap.vectors, snap.has_vector = matrix, present
        return snap

    def missing_vectors(self) -> list[int]:
        if self.has_vector is None:
            return list(range(len(self.ids)))
        return [int(i) for i in np.flatnonzero(~self.has_vector)]

    def set_vectors(self, indices: list[int], vectors: npt.NDArray[np.float32]) -> None:
        """Fill vectors computed after the snapshot was built (in place)."""
        if not indices:
            return
        dim = int(vectors.shape[1])
        if self.vectors is None or self.vectors.shape[1] != dim:
            self.vectors = np.zeros((len(self.ids), dim), dtype=np.float32)
            self.has_vector = np.zeros(len(self.ids), dtype=bool)
        assert self.has_vector is not None
        self.vectors[indices] = vectors
        self.has_vector[indices] = True


def _keyword_ranking(snap: Snapshot, query: str, eligible: Any) -> list[int]:
    terms = content_words(query)
    if not terms:
        return []
    total = len(snap.ids)
    scores: dict[int, float] = {}
    for term in terms:
        posting = snap.postings.get(term)
        if not posting:
            continue
        idf = math.log(1 + (total - len(posting) + 0.5) / (len(posting) + 0.5))
        for index in posting:
            if eligible[index]:
                # Short memories that match are more specific than long ones.
                scores[index] = scores.get(index, 0.0) + idf / (0.5 + 0.5 * snap.lengths[index] / 6)
    return [index for index, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def _similarities(
    snap: Snapshot, query_vector: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.float32] | None:
    if query_vector is None or snap.vectors is None or snap.has_vector is None:
        return None
    if snap.vectors.shape[1] != query_vector.shape[-1]:
        return None
    sims: npt.NDArray[np.float32] = snap.vectors @ query_vector.reshape(-1)
    return sims


def _semantic_ranking(
    snap: Snapshot, sims: npt.NDArray[np.float32] | None, eligible: Any
) -> list[int]:
    if sims is None or snap.has_vector is None:
        return []
    mask = snap.has_vector & eligible & (sims >= MIN_SIMILARITY)
    candidates = np.flatnonzero(mask)
    return [int(i) for i in candidates[np.argsort(-sims[candidates], kind="stable")]]


def rank_memories(
    snap: Snapshot,
    query: str,
    query_vector: npt.NDArray[np.float32] | None,
    scope: Scope,
    k: int,
    min_similarity: float = 0.0,
) -> list[int]:
    """Indices into ``snap`` of at most ``k`` memories, best first; with
    ``min_similarity`` > 0, only those above the relevance floor (module doc)."""
    if not snap.ids or k <= 0:
        return []
    eligible = np.array([scope.allows(t, i) for t, i in snap.scopes], dtype=bool)
    sims = _similarities(snap, query_vector)
    keyword = _keyword_ranking(snap, query, eligible)
    if min_similarity > 0:
        relevant = np.zeros(len(snap.ids), dtype=bool)
        if sims is not None and snap.has_vector is not None:
            relevant = snap.has_vector & (sims >= min_similarity)
        relevant[keyword] = True
        eligible = eligible & relevant
        keyword = [index for index in keyword if eligible[index]]
    scores: dict[int, float] = {}
    for weight, ranking in (
        (SEMANTIC_WEIGHT, _semantic_ranking(snap, sims, eligible)),
        (KEYWORD_WEIGHT, keyword),
    ):
        for rank, index in enumerate(ranking[: 4 * k]):
            scores[index] = scores.get(index, 0.0) + weight / (RRF_K + rank)
    recency = {index: rank for rank, index in enumerate(i for i in snap.order if eligible[i])}
    for index in scores:
        scores[index] += RECENCY_WEIGHT / (RRF_K + recency[index])
    chosen = sorted(scores, key=lambda i: (-scores[i], recency[i]))[:k]
    fillers = [i for i in recency if i not in scores][: min(MAX_FILLERS, k - len(chosen))]
    return chosen + fillers
