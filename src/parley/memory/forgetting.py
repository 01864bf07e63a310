"""Forgetting in the user's words: find what they mean, ask, delete, allow undo.

``ForgetContext`` (a ``ContextSource``, before recall) recognises a request with
``parse_forget`` (no model involved), finds the memories it refers to
(``ForgetService.match``: the phrase's embedding against the user's write index,
plus its rare words, so "forget everything about my old job" finds the four
memories about Northwind) and records a pending ``ForgetRequest``. Nothing is
deleted yet: the memories go into the answer's ``sources`` with the action
``forget_proposed`` and the request's id, the chat shows them in a chip ("Forget
these 3 memories?", Approve / Cancel), and the model is told a chip asks the user.

Approving deletes them and keeps their rows (text, vector, history) in the request
for ``UNDO_S``; *Undo* puts them back with the same ids and the request waits
again (it can be approved once more). After the window the kept rows are erased
(on the next read of the request, and hourly by ``purge_expired``), so forgetting
really forgets. A request recognised but matching nothing is said so, and
extraction still sees the message.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from parley.memory.forget_words import ForgetAsk, parse_forget
from parley.memory.index import Entry
from parley.memory.scopes import home_of
from parley.memory.service import MemoryService, memory_enabled
from parley.memory.store import MemoryStore
from parley.memory.tables import ForgetRequest, Memory, MemoryVersion
from parley.memory.text import STOP_WORDS, content_words
from parley.messages import Source
from parley.storage.tables import new_id, utcnow
from parley.turns.hooks import ContextBlock, TurnInfo

__all__ = ["UNDO_S", "ForgetContext", "ForgetService", "Match"]

log = logging.getLogger(__name__)

UNDO_S = 600.0
MAX_MATCHES = 12
# Tuned on bench.forget_set.DEV with all-MiniLM-L6-v2 (see bench.forget_eval).
FACT_COSINE = 0.45  # one fact: the best match needs at least this...
FACT_MARGIN = 0.03  # ...and others within this of it are the same fact reworded
TOPIC_BEST = 0.35  # a topic: nothing unless the best match reaches this
TOPIC_COSINE = 0.34  # ...then every memory at least this close
TOPIC_MARGIN = 0.15  # ...and within this of the best one
WORD_FLOOR = 0.15  # a shared rare word counts only with at least this cosine
WORD_BONUS = 0.1  # added for the request's rare words found in the memory (all of them)
LINK_FLOOR = 0.1  # a memory naming the same entity joins a topic above this cosine
RARE = 0.2  # a word in more than this share of the user's memories is not "rare"
ENTITY_SPREAD = 4  # a name in more memories than this is not one entity's
# Words of the request that do not name a topic.
_VAGUE = frozenset(
    [
        "stuff",
        "thing",
        "things",
        "everything",
        "anything",
        "info",
        "information",
        "detail",
        "details",
        "memory",
        "memories",
        "fact",
        "facts",
        "note",
        "notes",
        "part",
        "bit",
        "old",
        "previous",
        "former",
        "ex",
        "whole",
    ]
)


@dataclass(slots=True)
class Match:
    memory: Memory
    score: float


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ForgetService:
    def __init__(self, memories: MemoryService) -> None:
        self.memories = memories

    # ------------------------------------------------------------ matching

    async def match(
        self, user_id: str, ask: ForgetAsk, scope: tuple[str | None, str | None] = (None, None)
    ) -> list[Match]:
        """The active memories ``ask`` refers to, best first."""
        found = await self.memories.embed([ask.phrase], user_id)
        vector = None if found is None else found[0]
        async with self.memories.db.session() as session:
            store = MemoryStore(session, user_id)
            index = await self.memories.write_index(store)
            entries = [
                e
                for e in index.entries.values()
                if e.status == "active"
                and e.replaces_id is None
                and (e.scope[0] is None or e.scope == scope)
            ]
            if not entries:
                return []
            cosines = index.cosines(vector) if vector is not None else {}
            words = content_words(ask.phrase, generic=False) - _VAGUE
            rare = {
                w for w in words if len(index.by_word.get(w, ())) <= max(2, RARE * len(entries))
            }
            scored: dict[str, float] = {}
            for entry in entries:
                cosine = cosines.get(entry.id, 0.0)
                shared = _shared(rare, entry.words)
                if vector is None:  # words alone: the share of the request's words found
                    scored[entry.id] = shared / len(rare) if rare else 0.0
                elif shared and cosine >= WORD_FLOOR:
                    scored[entry.id] = cosine + WORD_BONUS * shared / len(rare)
                else:
                    scored[entry.id] = cosine
            # Thresholds on the best cosine: a word bonus must not push the others out.
            best = max(cosines.values()) if cosines else max(scored.values())
            if ask.topic:
                if best < TOPIC_BEST:
                    return []
                floor = max(TOPIC_COSINE, best - TOPIC_MARGIN)
            else:
                if best < FACT_COSINE:
                    return []
                floor = best - FACT_MARGIN
            picked = {mid for mid, score in scored.items() if score >= floor}
            if ask.topic and picked:  # the same person, pet or place as the picked ones
                top = max(picked, key=lambda mid: scored[mid])
                picked |= _linked(picked, top, entries, cosines)
            chosen = sorted(((scored[mid], mid) for mid in picked), reverse=True)[:MAX_MATCHES]
            rows = {r.id: r for r in await store.get_many([mid for _, mid in chosen])}
        return [Match(rows[mid], score) for score, mid in chosen if mid in rows]

    # ------------------------------------------------------------ requests

    async def propose(
        self,
        user_id: str,
        ask: ForgetAsk,
        matches: list[Match],
        *,
        conversation_id: str | None = None,
        message_id: str | None = None,
    ) -> ForgetRequest:
        async with self.memories.db.session() as session:
            request = ForgetRequest(
                id=new_id(),
                user_id=user_id,
                phrase=ask.phrase,
                status="pending",
                memory_ids=[m.memory.id for m in matches],
                titles=[m.memory.text for m in matches],
                removed=None,
                conversation_id=conversation_id,
                message_id=message_id,
                created_at=utcnow(),
            )
            session.add(request)
            await session.commit()
            return request

    async def get(self, user_id: str, request_id: str) -> ForgetRequest | None:
        async with self.memories.db.session() as session:
            request = await self._load(session, user_id, request_id)
            if request is not None and self._expire(request):
                await session.commit()
            return request

    async def for_message(self, user_id: str, message_id: str) -> ForgetRequest | None:
        async with self.memories.db.session() as session:
            return await session.scalar(
                select(ForgetRequest).where(
                    ForgetRequest.user_id == user_id, ForgetRequest.message_id == message_id
                )
            )

    async def approve(self, user_id: str, request_id: str) -> ForgetRequest | None:
        """Delete the request's memories (those still there), keeping them for undo."""
        async with self.memories.db.session() as session:
            request = await self._load(session, user_id, request_id)
            if request is None or request.status != "pending":
                return request
            store = MemoryStore(session, user_id)
            rows = await store.get_many(list(request.memory_ids))
            kept: list[dict[str, Any]] = []
            for row in rows:
                versions = await store.versions(row.id)
                kept.append(_keep(row, versions))
                await store.delete(row.id)
            request.status = "approved"
            request.decided_at = utcnow()
            request.removed = kept
            request.titles = [r.text for r in rows] or list(request.titles)
            request.memory_ids = [r.id for r in rows] or list(request.memory_ids)
            await session.commit()
            return request

    async def cancel(self, user_id: str, request_id: str) -> ForgetRequest | None:
        async with self.memories.db.session() as session:
            request = await self._load(session, user_id, request_id)
            if request is None or request.status != "pending":
                return request
            request.status = "cancelled"
            request.decided_at = utcnow()
            await session.commit()
            return request

    async def undo(self, user_id: str, request_id: str) -> ForgetRequest | None:
        """Put an approved request's memories back (same ids) within ``UNDO_S``; the
        request waits for approval again."""
        async with self.memories.db.session() as session:
            request = await self._load(session, user_id, request_id)
            if request is None or request.status != "approved":
                return request
            if request.removed is None or self._expire(request):
                await session.commit()
                return request  # still "approved": too late (the route answers 409)
            present = {
                r.id for r in await MemoryStore(session, user_id).get_many(request.memory_ids)
            }
            for kept in request.removed or []:
                if kept["id"] in present:
                    continue
                session.add(_restore(kept, user_id))
                await session.flush()
                for version in kept.get("versions", []):
                    session.add(
                        MemoryVersion(
                            id=version["id"],
                            memory_id=kept["id"],
                            user_id=user_id,
                            text=version["text"],
                            reason=version["reason"],
                            replaced_at=datetime.fromisoformat(version["replaced_at"]),
                        )
                    )
            request.status = "pending"
            request.removed = None
            request.decided_at = None
            await session.commit()
            return request

    async def purge_expired(self) -> int:
        """Erase the rows kept for undo once the window has passed (all users)."""
        cutoff = utcnow() - timedelta(seconds=UNDO_S)
        async with self.memories.db.session() as session:
            result = await session.execute(
                update(ForgetRequest)
                .where(ForgetRequest.removed.is_not(None), ForgetRequest.decided_at < cutoff)
                .values(removed=None)
            )
            await session.commit()
            return int(getattr(result, "rowcount", 0))

    @staticmethod
    def undo_until(request: ForgetRequest) -> datetime | None:
        if request.status != "approved" or request.decided_at is None or not request.removed:
            return None
        return _as_utc(request.decided_at) + timedelta(seconds=UNDO_S)

    @staticmethod
    async def _load(session: Any, user_id: str, request_id: str) -> ForgetRequest | None:
        request: ForgetRequest | None = await session.scalar(
            select(ForgetRequest).where(
                ForgetRequest.id == request_id, ForgetRequest.user_id == user_id
            )
        )
        return request

    @staticmethod
    def _expire(request: ForgetRequest) -> bool:
        """Erase the kept rows of a request past its undo window (True: it changed)."""
        if request.removed is None or request.decided_at is None:
            return False
        if _as_utc(request.decided_at) + timedelta(seconds=UNDO_S) > datetime.now(UTC):
            return False
        request.removed = None
        return True


def _shared(rare: set[str], words: set[str]) -> int:
    """Rare request words found in a memory (6-letter prefixes: "diabetes"/"diabetic")."""
    return sum(
        1 for w in rare if w in words or (len(w) >= 6 and any(v[:6] == w[:6] for v in words))
    )


_NAME = re.compile(r"\b([A-Z][a-z]{2,})\b")


def _names(text: str) -> set[str]:
    """Capitalised words that are not function words ("Biscuit", "Northwind"): names."""
    return {m.lower() for m in _NAME.findall(text)} - STOP_WORDS


def _linked(
    picked: set[str], top: str, entries: list[Entry], cosines: dict[str, float]
) -> set[str]:
    """Memories naming an entity (a person, pet, company) that the best picked
    memory names, or that two picked memories name, when the name is rare among
    the user's memories: "forget my cat" picks "I have a cat named Biscuit", and
    "Biscuit is allergic to chicken" goes with it; "forget my debts" picking
    "I borrowed 2,000 from my brother Luis" does not take Luis's other memories."""
    names = {e.id: _names(e.text) for e in entries}
    spread: dict[str, int] = {}
    for found in names.values():
        for name in found:
            spread[name] = spread.get(name, 0) + 1
    in_picked: dict[str, int] = {}
    for mid in picked:
        for name in names.get(mid, ()):
            in_picked[name] = in_picked.get(name, 0) + 1
    wanted = {
        n
        for n, count in in_picked.items()
        if spread[n] <= ENTITY_SPREAD and (count >= 2 or n in names.get(top, ()))
    }
    return {
        e.id
        for e in entries
        if e.id not in picked
        and names[e.id] & wanted
        and cosines.get(e.id, LINK_FLOOR) >= LINK_FLOOR
    }


def _keep(row: Memory, versions: list[MemoryVersion]) -> dict[str, Any]:
    return {
        "id": row.id,
        "text": row.text,
        "source": row.source,
        "status": row.status,
        "scope_type": row.scope_type,
        "scope_id": row.scope_id,
        "conversation_id": row.conversation_id,
        "message_id": row.message_id,
        "embedding": base64.b64encode(row.embedding).decode() if row.embedding else None,
        "embedding_model": row.embedding_model,
        "attribute": row.attribute,
        "created_at": _as_utc(row.created_at).isoformat(),
        "versions": [
            {
                "id": v.id,
                "text": v.text,
                "reason": v.reason,
                "replaced_at": _as_utc(v.replaced_at).isoformat(),
            }
            for v in versions
        ],
    }


def _restore(kept: dict[str, Any], user_id: str) -> Memory:
    now = utcnow()
    embedding = kept.get("embedding")
    return Memory(
        id=kept["id"],
        user_id=user_id,
        text=kept["text"],
        source=kept["source"],
        status=kept["status"],
        scope_type=kept["scope_type"],
        scope_id=kept["scope_id"],
        conversation_id=None,  # the conversation may be gone since; the link is not needed
        message_id=None,
        embedding=base64.b64decode(embedding) if embedding else None,
        embedding_model=kept.get("embedding_model"),
        attribute=kept.get("attribute"),
        created_at=datetime.fromisoformat(kept["created_at"]),
        updated_at=now,
    )


class ForgetContext:
    """The ``ContextSource`` that turns "forget ..." into a confirmation chip."""

    name = "memory_forget"

    def __init__(self, service: ForgetService) -> None:
        self.service = service

    async def gather(self, info: TurnInfo, budget_tokens: int) -> list[ContextBlock]:
        if info.temporary or not memory_enabled(info.preferences):
            return []
        ask = parse_forget(info.query)
        if ask is None:
            return []
        scope = home_of(info)
        matches = await self.service.match(info.user_id, ask, scope)
        if not matches:
            return [
                ContextBlock(
                    "memory_update",
                    f"The user may be asking you to forget: {ask.phrase} No saved memory "
                    "matches it, so nothing was deleted. If they meant saved memories, say so "
                    "briefly.",
                )
            ]
        request = await self.service.propose(
            info.user_id,
            ask,
            matches,
            conversation_id=info.conversation_id,
            message_id=info.user_message_id,
        )
        count = len(matches)
        listed = "; ".join(m.memory.text for m in matches)
        sources: list[Source] = [
            {
                "kind": "memory",
                "id": m.memory.id,
                "title": m.memory.text,
                "action": "forget_proposed",
                "request": request.id,
            }
            for m in matches
        ]
        return [
            ContextBlock(
                "memory_update",
                f"The user asked you to forget: {ask.phrase} {count} saved "
                f"{'memory matches' if count == 1 else 'memories match'}: {listed}. Nothing is "
                "deleted yet: a confirmation under your answer lets the user approve or cancel. "
                "Say so in one short sentence; do not repeat the memories.",
                sources,
            )
        ]
