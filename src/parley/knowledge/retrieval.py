"""Hybrid retrieval: keyword and dense candidates fused with reciprocal rank fusion.

``score(chunk) = sum over lists of weight / (k + rank)`` (``k = 20``; keyword weight
0.5, dense 1): a passage
near the top of either list rises, one near the top of both rises most, and
the two scores (bm25, cosine) never need calibrating against each other. A
``Reranker`` (e.g. a cross-encoder) may reorder the fused candidates; none is
installed by default. When the query cannot be embedded (the embedder failed),
retrieval degrades to keyword-only and logs why.

Opt-in ranking levers (``parley.knowledge.ranking``, measured by
``bench/knowledge_recall.py``): ``variants`` (the dense query is the mean of the
question's and its content words' embeddings), ``loose_keyword_weight`` (the keyword
list's weight for questions without a literal token), ``rrf_k``, and
``HeadingReranker`` as the ``reranker``. None is on by default: see
docs/design/retrieval.md for the ablation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import select

from parley.embeddings import Embedder, normalize
from parley.knowledge.index import VectorIndex, keyword_search
from parley.knowledge.ranking import content_query, is_exact
from parley.knowledge.tables import KnowledgeChunk, KnowledgeFile
from parley.storage.db import Database
from parley.usage.metering import Charge, billed_to

__all__ = ["Hit", "Reranker", "Retriever", "rrf"]

log = logging.getLogger(__name__)

# k = 20 (not the textbook 60) lets each list's top ranks count more than mid-ranked
# items found by both lists, and keyword ranks count half: bm25 over paraphrased
# questions is the noisier list. Chosen with bench/knowledge_eval.py (plain RRF,
# k = 60 and equal weights, lost recall@10 to dense-only there); see its sweep.
RRF_K = 20
KEYWORD_WEIGHT = 0.5
CANDIDATES = 50
Mode = Literal["hybrid", "keyword", "dense"]


@dataclass(slots=True)
class Hit:
    chunk_id: int
    file_id: str
    filename: str
    page: int | None
    section: str | None
    text: str
    char_start: int
    char_end: int
    ordinal: int
    score: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)


class Reranker(Protocol):
    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


def rrf(
    rankings: Sequence[Sequence[int]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """(Weighted) reciprocal rank fusion of ranked id lists: (id, score) best first, ties
    by first seen. ``weights`` scale each list's contribution (default 1 each)."""
    scores: dict[int, float] = {}
    for index, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[index]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


class Retriever:
    def __init__(
        self,
        db: Database,
        embedder: Embedder | None,
        index: VectorIndex,
        reranker: Reranker | None = None,
        keyword_weight: float = KEYWORD_WEIGHT,
        *,
        rrf_k: int = RRF_K,
        variants: bool = False,
        loose_keyword_weight: float | None = None,
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.index = index
        self.reranker = reranker
        self.keyword_weight = keyword_weight
        self.rrf_k = rrf_k
        self.variants = variants
        self.loose_keyword_weight = loose_keyword_weight

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        file_ids: Sequence[str] | None = None,
        limit: int = 8,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The user's passages best answering ``query``, within ``file_ids`` when given."""
        if not query.strip() or (file_ids is not None and not file_ids):
            return []

        async def by_keyword() -> list[int]:
            if mode not in ("hybrid", "keyword"):
                return []
            async with self.db.session() as session:
                return await keyword_search(session, user_id, query, file_ids, CANDIDATES)

        async def by_meaning() -> list[int]:
            if mode not in ("hybrid", "dense") or self.embedder is None:
                return []
            rewritten = content_query(query) if self.variants else None
            try:
                with billed_to(Charge(user_id, "embeddings")):  # a remote endpoint's cost
                    vectors = await self.embedder.embed(
                        [query] if rewritten is None else [query, rewritten]
                    )
                vector = normalize(vectors.mean(axis=0))[0]
            except Exception as exc:
                log.warning("query embedding failed (%s); keyword results only", exc)
                return []
            found = await self.index.search(
                user_id, self.embedder.name, vector, file_ids, CANDIDATES
            )
            return [chunk_id for chunk_id, _ in found]

        # The two lists are independent: the database works while numpy does.
        keyword, dense = await asyncio.gather(by_keyword(), by_meaning())
        weight = self.keyword_weight
        if self.loose_keyword_weight is not None and not is_exact(query):
            weight = self.loose_keyword_weight
        fused = rrf([keyword, dense], k=self.rrf_k, weights=[weight, 1.0])
        wanted = fused[: max(limit, CANDIDATES if self.reranker else limit)]
        hits = await self._load(user_id, wanted, keyword, dense)
        if self.reranker is not None and hits:
            hits = await self.reranker.rerank(query, hits)
        return hits[:limit]

    async def _load(
        self,
        user_id: str,
        wanted: list[tuple[int, float]],
        keyword: list[int],
        dense: list[int],
    ) -> list[Hit]:
        if not wanted:
            return []
        ids = [chunk_id for chunk_id, _ in wanted]
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(  # not the vector: only what a hit shows
                        KnowledgeChunk.id,
                        KnowledgeChunk.user_id,
                        KnowledgeChunk.file_id,
                        KnowledgeChunk.page,
                        KnowledgeChunk.section,
                        KnowledgeChunk.text,
                        KnowledgeChunk.char_start,
                        KnowledgeChunk.char_end,
                        KnowledgeChunk.ordinal,
                        KnowledgeFile.filename,
                        KnowledgeFile.user_id.label("owner"),
                    )
                    .join(KnowledgeFile, KnowledgeFile.id == KnowledgeChunk.file_id)
                    # By primary key only: with ``user_id = ?`` in SQL, SQLite chose the
                    # (user_id, embed_model) index and read all of the user's passages
                    # (~30 ms at 100,000). The owner is checked below instead.
                    .where(KnowledgeChunk.id.in_(ids))
                )
            ).all()
        by_id = {row.id: (row, row.filename) for row in rows if row.user_id == user_id == row.owner}
        keyword_rank = {cid: i + 1 for i, cid in enumerate(keyword)}
        dense_rank = {cid: i + 1 for i, cid in enumerate(dense)}
        hits: list[Hit] = []
        for chunk_id, score in wanted:
            found = by_id.get(chunk_id)
            if found is None:
                continue  # deleted since the index saw it
            chunk, filename = found
            ranks = {}
            if chunk_id in keyword_rank:
                ranks["keyword"] = keyword_rank[chunk_id]
            if chunk_id in dense_rank:
                ranks["dense"] = dense_rank[chunk_id]
            hits.append(
                Hit(
                    chunk_id=chunk.id,
                    file_id=chunk.file_id,
                    filename=filename,
                    page=chunk.page,
                    section=chunk.section,
                    text=chunk.text,
                    char_start=chunk.char_start,
                    char_end=chunk.char_end,
                    ordinal=chunk.ordinal,
                    score=score,
                    ranks=ranks,
                )
            )
        return hits
