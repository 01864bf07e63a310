"""Inspectable recall: why a question would recall what it recalls, and how often
recall had to fall back to keywords.

- ``POST /api/memory/recall/explain {query, project_id?, assistant_id?, limit?}`` ->
  the ranked candidates of the signed-in user's memories, each with its score
  and the parts of it (semantic, keyword, topic, profile), and which of them a
  turn would inject (same settings as a turn: ``memory_recall_k``, the floor,
  the embedding timeout). For debugging, for the evaluation, and for a user who
  wants to know why a memory was used.
- ``GET /api/memory/metrics`` (administrators) -> this process's recall counters:
  recalls, fallbacks to keywords because the question's embedding was too slow,
  embedding failures.

The "why" view under an answer does not call this route: each recalled memory
source stored on the answer carries its own ``why`` (what ranking said at the
time of the turn), so a reload shows the same explanation even after the
memories changed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from parley.http.bodies import Body
from parley.http.deps import AdminUser, CurrentUser, SettingsDep, service
from parley.http.guard import GuardedRoute
from parley.memory.recall import Candidate, Scope
from parley.memory.service import MemoryService

__all__ = ["recall_router"]

recall_router = APIRouter(route_class=GuardedRoute, prefix="/api/memory", tags=["memory"])
Memories = Annotated[MemoryService, Depends(service(MemoryService))]


class ExplainIn(Body):
    query: str = Field(min_length=1, max_length=4000)
    project_id: str | None = Field(default=None, max_length=32)
    assistant_id: str | None = Field(default=None, max_length=32)
    limit: int = Field(default=20, ge=1, le=100, description="candidates to list")


class ExplainedMemory(BaseModel):
    id: str
    text: str
    rank: int = Field(description="1 = best")
    injected: bool = Field(description="a turn with this question would put it in the context")
    score: float = Field(description="semantic + weighted keyword, topic and profile parts")
    semantic: float = Field(description="cosine between the question and the memory")
    keyword: float = Field(description="idf-weighted share of the question's words it contains")
    topic: float = Field(description="agreement of the question's and the memory's topics")
    profile: float = Field(description="profile memory (home, diet, health...) on this topic")


class RecallExplanation(BaseModel):
    query: str
    mode: Literal["semantic", "keywords"] = Field(
        description="'keywords' when the question had no vector (no embedder, or too slow)"
    )
    floor: float = Field(description="the score a memory needs to be injected (0: no floor)")
    k: int = Field(description="most memories a turn injects")
    candidates: list[ExplainedMemory]


class RecallMetrics(BaseModel):
    recalls: int
    keyword_fallbacks: int = Field(description="recalls whose question embedding was too slow")
    embed_failures: int


@recall_router.post("/recall/explain")
async def explain(
    body: ExplainIn, user: CurrentUser, memories: Memories, settings: SettingsDep
) -> RecallExplanation:
    snap, ranking = await memories.rank(
        user.id,
        body.query,
        Scope(body.project_id, body.assistant_id),
        settings.memory_recall_k,
        embed_timeout_s=settings.memory_embed_timeout_s,
        min_similarity=settings.memory_recall_floor,
        others=body.limit,
    )

    def item(c: Candidate, position: int, injected: bool) -> ExplainedMemory:
        return ExplainedMemory(
            id=snap.ids[c.index],
            text=snap.texts[c.index],
            rank=position,
            injected=injected,
            score=round(c.score, 4),
            semantic=round(c.semantic, 4),
            keyword=round(c.keyword, 4),
            topic=round(c.topic, 4),
            profile=round(c.profile, 4),
        )

    listed = [(c, True) for c in ranking.injected] + [(c, False) for c in ranking.others]
    return RecallExplanation(
        query=body.query,
        mode=ranking.mode,
        floor=ranking.floor,
        k=settings.memory_recall_k,
        candidates=[item(c, n, hit) for n, (c, hit) in enumerate(listed[: body.limit], start=1)],
    )


@recall_router.get("/metrics")
async def metrics(_: AdminUser, memories: Memories) -> RecallMetrics:
    stats = memories.stats
    return RecallMetrics(
        recalls=stats.recalls,
        keyword_fallbacks=stats.keyword_fallbacks,
        embed_failures=stats.embed_failures,
    )
