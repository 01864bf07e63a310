"""The memory ``ContextSource``: explicit requests first, then recall.

Before the model answers, an explicit "remember that ..." / "forget that ..."
in the user's message is carried out here, deterministically, so it works
with a model too small to call tools, and the model is told what was done
(it can then confirm instead of guessing). Then the relevant memories are
added in a ``<saved_memories>`` block within the token budget, and listed in
the answer's ``sources`` as ``{kind: "memory", id, title, why}`` (``why``: the
rank, score and score parts the "why" view shows; ``recall: "keywords"`` when
the question could not be embedded in time). Nothing relevant: no block.

Temporary chats and users who turned memory off get nothing and change nothing.
"""

from __future__ import annotations

import logging

from parley.engine.tokens import estimate_tokens
from parley.memory.recall import Candidate
from parley.memory.scopes import home_of, recall_scope
from parley.memory.service import MemoryService, memory_enabled
from parley.memory.text import parse_request, signals_change
from parley.messages import MemorySource, MemoryWhy, Source
from parley.turns.hooks import ContextBlock, TurnInfo

__all__ = ["MEMORY_HEADER", "MemoryContext", "why_of"]

log = logging.getLogger(__name__)

MEMORY_HEADER = (
    "Saved memories: facts the user shared in earlier conversations (written as "
    "they said them; 'I' is the user). Use them only when relevant, never mention "
    "this list unprompted, and prefer what the user says now if it disagrees."
)


def why_of(candidate: Candidate, rank: int, floor: float) -> MemoryWhy:
    """What the "why" view shows for one recalled memory (kept on the answer)."""
    return {
        "rank": rank,
        "score": round(candidate.score, 4),
        "semantic": round(candidate.semantic, 4),
        "keyword": round(candidate.keyword, 4),
        "topic": round(candidate.topic, 4),
        "profile": round(candidate.profile, 4),
        "floor": round(floor, 4),
    }


class MemoryContext:
    name = "memory"

    def __init__(
        self,
        service: MemoryService,
        *,
        k: int = 8,
        budget_tokens: int = 600,
        embed_timeout_s: float | None = 0.25,
        min_similarity: float = 0.0,
    ) -> None:
        self.service = service
        self.k = k
        self.budget_tokens = budget_tokens
        self.embed_timeout_s = embed_timeout_s
        self.min_similarity = min_similarity

    async def gather(self, info: TurnInfo, budget_tokens: int) -> list[ContextBlock]:
        if info.temporary or not memory_enabled(info.preferences):
            return []
        blocks: list[ContextBlock] = []
        handled: set[str] = set()
        request = parse_request(info.query)
        if request is not None:
            block = await self._remember(info, request.fact)
            handled = {s["id"] for s in block.sources if s["kind"] == "memory"}
            blocks.append(block)
        budget = min(budget_tokens, self.budget_tokens)
        snap, ranking = await self.service.rank(
            info.user_id,
            info.query,
            recall_scope(info),
            self.k,
            embed_timeout_s=self.embed_timeout_s,
            min_similarity=self.min_similarity,
        )
        lines: list[str] = []
        sources: list[Source] = []
        used = estimate_tokens(MEMORY_HEADER) + 10
        for position, candidate in enumerate(ranking.injected, start=1):
            memory_id, text = snap.ids[candidate.index], snap.texts[candidate.index]
            if memory_id in handled:
                continue
            line = f"- {text}"
            cost = estimate_tokens(line) + 1
            if used + cost > budget:
                break
            used += cost
            lines.append(line)
            source: MemorySource = {
                "kind": "memory",
                "id": memory_id,
                "title": text,
                "why": why_of(candidate, position, ranking.floor),
            }
            if ranking.fallback:
                source["recall"] = "keywords"
            sources.append(source)
        if lines:
            blocks.append(
                ContextBlock("saved_memories", MEMORY_HEADER + "\n" + "\n".join(lines), sources)
            )
        return blocks

    async def _remember(self, info: TurnInfo, fact: str) -> ContextBlock:
        """ "Remember that ..." carried out before the answer (forgetting asks first:
        ``parley.memory.forgetting``)."""
        scope = home_of(info)
        result = await self.service.remember(
            info.user_id,
            fact,
            source="explicit",
            conversation_id=info.conversation_id,
            message_id=info.user_message_id,
            scope=scope,
            changed=signals_change(fact),
        )
        verb = {"merged": "already saved", "updated": "updated"}.get(result.action, "saved")
        return ContextBlock(
            "memory_update",
            f"Done: this memory was {verb} as the user asked: {result.memory.text} "
            "Confirm briefly; do not call a tool to save it again.",
            [
                {
                    "kind": "memory",
                    "id": result.memory.id,
                    "title": result.memory.text,
                    "action": result.action,
                }
            ],
        )
