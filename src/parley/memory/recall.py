"""Which saved memories enter this turn's context, and why.

Recall runs before every answer, so it is built to cost a few milliseconds at
ten thousand memories: each user's active memories live in a per-process
snapshot (texts, word postings, a float32 matrix, topic weights, profile flags)
that is reloaded only when the database says they changed (one aggregate query
per turn, so several workers stay consistent). Scoring is then a
matrix-vector product, a few set lookups and a partial sort.

A memory's score adds four parts (``Candidate`` keeps each, for the "why" view):

- **semantic**: cosine between the question and the memory (all-MiniLM-L6-v2
  by default);
- **keyword**: the share of the question's informative words the memory
  contains, each weighted by its idf over the user's memories. Stop words and
  generic verbs ("keep", "enjoy", "like", "have") count for nothing, so "What
  should I keep in the car?" does not pull in every "Keeps ...";
- **topic**: the question and the memory are about the same topic
  (``parley.memory.topics``);
- **profile**: a memory describing the person (home, diet, health, units,
  household...) weighted by how much the question is about its topic.

The relevance floor (``min_similarity``, setting ``memory_recall_floor``): only
memories whose score reaches it are injected, so "What is 1234*5678?" recalls
nothing and no "memories used" is shown. With the floor at 0, the newest
memories fill free slots as before. Without a question vector (no embedder, or
it was too slow: ``Ranking.mode == "keywords"``) only keyword matches are
recalled.

``RecallConfig.legacy()`` is the ranking Parley had before (reciprocal-rank
fusion of the cosine and keyword lists, recency fillers); the benchmark
``bench/memory_recall.py`` measures both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from parley.memory.store import Version
from parley.memory.tables import Memory
from parley.memory.text import content_words, words
from parley.memory.topics import GENERAL, LINKS, TOPICS, is_profile, topic_weights

__all__ = [
    "MIN_SIMILARITY",
    "RRF_K",
    "Candidate",
    "Ranking",
    "RecallConfig",
    "Scope",
    "Snapshot",
    "rank",
    "rank_memories",
]

RRF_K = 60
TOPIC_INDEX = {name: i for i, name in enumerate(TOPICS)}
MIN_SIMILARITY = 0.25
SEMANTIC_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
RECENCY_WEIGHT = 0.2
MAX_FILLERS = 3
# Verbs and question words that say nothing about the topic (compared stemmed).
GENERIC_VERBS = frozenset(
    words(
        """keep keeps kept enjoy enjoys like likes liked love loves loved have has had make
        makes made take takes took use uses used get gets got go goes went want wants need
        needs prefer prefers know tell think give good best new any tip tips idea ideas
        suggest recommend help way thing things something someone should could would try
        find put see look"""
    )
)


@dataclass(slots=True, frozen=True)
class RecallConfig:
    """The ranking's knobs; the defaults were chosen on the development split."""

    mode: Literal["scored", "legacy"] = "scored"
    keyword_weight: float = 0.35
    category_weight: float = 0.25
    profile_weight: float = 1.5
    generic_verbs: bool = True
    general_gate: float = 0.5  # a question this much "general knowledge" recalls nothing
    floor: float | None = None  # overrides the min_similarity the caller passes
    # (question topic, memory topic, weight): a question about the first also agrees
    # with memories about the second (``topics.LINKS``).
    links: tuple[tuple[str, str, float], ...] = LINKS
    plain_question: bool = True  # embed the question without "I"/"my" (text.question_text)

    @classmethod
    def legacy(cls) -> RecallConfig:
        return cls(mode="legacy", links=(), plain_question=False)


@dataclass(slots=True, frozen=True)
class Candidate:
    """One memory's score and its parts (``index`` into the snapshot)."""

    index: int
    semantic: float
    keyword: float
    topic: float
    profile: float
    score: float


@dataclass(slots=True)
class Ranking:
    """What recall chose: ``injected`` first (best first), then the best of the
    rest (for the "why" view); ``mode`` says whether the question had a vector."""

    injected: list[Candidate]
    others: list[Candidate]
    mode: Literal["semantic", "keywords"]
    floor: float
    fallback: bool = False  # the question had no vector in time: keywords only


@dataclass(slots=True, frozen=True)
class Scope:
    """The scopes of a turn; global memories are always eligible."""

    project_id: str | None = None
    assistant_id: str | None = None
    only: bool = False  # a project-only project: global memories are not read

    def allows(self, scope_type: str | None, scope_id: str | None) -> bool:
        if scope_type is None:
            return not self.only
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
    profile: npt.NDArray[np.bool_] | None = None
    topics: npt.NDArray[np.float32] | None = None  # rows of topic weights, once computed
    _eligible: dict[Scope, npt.NDArray[np.bool_]] = field(default_factory=dict)

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
        snap.profile = np.array([is_profile(t) for t in snap.texts], dtype=bool)
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
        self.topics = None

    def eligible(self, scope: Scope) -> npt.NDArray[np.bool_]:
        """Which memories this scope may recall (cached: a snapshot never changes
        its rows, only gains vectors)."""
        found = self._eligible.get(scope)
        if found is None:
            found = np.array([scope.allows(t, i) for t, i in self.scopes], dtype=bool)
            if len(self._eligible) > 64:
                self._eligible.clear()
            self._eligible[scope] = found
        return found

    def topic_rows(self, topics: npt.NDArray[np.float32] | None) -> npt.NDArray[np.float32] | None:
        """Each memory's topic weights (computed once per snapshot and topic set)."""
        if topics is None or self.vectors is None or self.vectors.shape[1] != topics.shape[1]:
            return None
        if self.topics is None or self.topics.shape[1] != topics.shape[0]:
            self.topics = topic_weights(self.vectors, topics)
        return self.topics


# ------------------------------------------------------------------ legacy ranking


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


# ------------------------------------------------------------------ scored ranking


def _idf(snap: Snapshot, term: str) -> float:
    df = len(snap.postings.get(term, ()))
    return math.log(1 + (len(snap.ids) - df + 0.5) / (df + 0.5))


def keyword_scores(snap: Snapshot, query: str, generic_verbs: bool = True) -> dict[int, float]:
    """index -> idf-weighted share of the question's informative words it contains."""
    terms = content_words(query)
    if generic_verbs:
        terms -= GENERIC_VERBS
    weights = {term: _idf(snap, term) for term in terms}
    total = sum(weights.values())
    scores: dict[int, float] = {}
    if total <= 0:
        return scores
    for term, weight in weights.items():
        for index in snap.postings.get(term, ()):
            scores[index] = scores.get(index, 0.0) + weight / total
    return scores


def linked(
    asked: npt.NDArray[np.float32], links: tuple[tuple[str, str, float], ...]
) -> npt.NDArray[np.float32]:
    """The topic weight a question lends to linked memory topics."""
    extra = np.zeros_like(asked)
    for question, memory, weight in links:
        extra[TOPIC_INDEX[memory]] += weight * asked[TOPIC_INDEX[question]]
    return extra


def _top(score: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], count: int) -> list[int]:
    """Indices of the ``count`` best scores under ``mask``, best first."""
    candidates = np.flatnonzero(mask)
    if count <= 0 or not len(candidates):
        return []
    if len(candidates) > count:
        part = np.argpartition(-score[candidates], count - 1)[:count]
        candidates = candidates[part]
    return [int(i) for i in candidates[np.argsort(-score[candidates], kind="stable")]]


def rank(
    snap: Snapshot,
    query: str,
    query_vector: npt.NDArray[np.float32] | None,
    scope: Scope,
    k: int,
    min_similarity: float = 0.0,
    config: RecallConfig | None = None,
    topics: npt.NDArray[np.float32] | None = None,
    others: int = 0,
) -> Ranking:
    """At most ``k`` memories to inject (above the floor), plus the ``others``
    best of the rest; ``topics``: the embedded topic descriptions, if any."""
    config = config or RecallConfig()
    floor = config.floor if config.floor is not None else min_similarity
    sims = _similarities(snap, query_vector)
    mode: Literal["semantic", "keywords"] = "semantic" if sims is not None else "keywords"
    if not snap.ids or k <= 0:
        return Ranking([], [], mode, floor)
    if config.mode == "legacy":
        chosen = rank_memories(snap, query, query_vector, scope, k, min_similarity)
        cosines = [float(sims[i]) if sims is not None else 0.0 for i in chosen]
        return Ranking(
            [Candidate(i, s, 0.0, 0.0, 0.0, s) for i, s in zip(chosen, cosines, strict=True)],
            [],
            mode,
            floor,
        )
    n = len(snap.ids)
    eligible = snap.eligible(scope)
    keyword = np.zeros(n, dtype=np.float32)
    for index, value in keyword_scores(snap, query, config.generic_verbs).items():
        keyword[index] = value
    semantic = np.zeros(n, dtype=np.float32)
    topic = np.zeros(n, dtype=np.float32)
    general = 0.0
    if sims is not None and snap.has_vector is not None and query_vector is not None:
        semantic = np.where(snap.has_vector, sims, 0.0).astype(np.float32)
        rows = snap.topic_rows(topics)
        if rows is not None and topics is not None:
            asked = topic_weights(query_vector.reshape(1, -1).astype(np.float32), topics)[0]
            general = float(asked[GENERAL].sum())
            asked[GENERAL] = 0.0  # general knowledge agrees with no memory
            if config.links:
                asked = asked + linked(asked, config.links)
            topic = rows @ asked
        profile = np.where(snap.profile if snap.profile is not None else False, topic, 0.0)
        score = (
            semantic
            + config.keyword_weight * keyword
            + config.category_weight * topic
            + config.profile_weight * profile
        ).astype(np.float32)
        relevant = eligible & (score >= floor) if floor > 0 else eligible
        if floor > 0 and general >= config.general_gate:
            relevant = relevant & (keyword >= 0.5)  # a general question: only clear matches
    else:
        profile = np.zeros(n, dtype=np.float32)
        score = keyword
        relevant = eligible & (keyword > 0)
    chosen = _top(score, relevant, k)
    if floor <= 0 and mode == "keywords" and len(chosen) < k:
        # No floor and no vectors: the newest memories fill a few free slots.
        taken = set(chosen)
        fillers = [i for i in snap.order if eligible[i] and i not in taken]
        chosen += fillers[: min(MAX_FILLERS, k - len(chosen))]
    rest: list[int] = []
    if others > 0:
        taken = set(chosen)
        rest = [i for i in _top(score, eligible, others + len(chosen)) if i not in taken][:others]

    def candidate(i: int) -> Candidate:
        return Candidate(
            i,
            float(semantic[i]),
            float(keyword[i]),
            float(topic[i]),
            float(profile[i]),
            float(score[i]),
        )

    return Ranking([candidate(i) for i in chosen], [candidate(i) for i in rest], mode, floor)
