"""Saving, forgetting and recalling memories, with the rules that keep them clean.

Writes go through ``remember`` so every path (the explicit fast path, the
``remember`` tool, extraction, the API) follows the same rules:

- a duplicate (same words, or nearly: word overlap >= 0.8, cosine >= 0.9, or
  one's words all within the other's) merges into the existing memory (newest
  wording and link win);
- a change ("I now live in Berlin", or extraction naming the memory it
  replaces) updates the old memory instead of adding a contradicting one;
- otherwise a new memory is added;
- in review mode nothing active changes: an update becomes one pending
  proposal naming the memory it replaces (``replaces_id``, in that memory's scope).

The embedder is optional: without one (or when it fails) recall uses keyword
and recency only, and similarity rules use word overlap only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from parley.embeddings import Embedder
from parley.memory.recall import Candidate, Ranking, RecallConfig, Scope, Snapshot, rank
from parley.memory.store import MemoryStore
from parley.memory.tables import Memory
from parley.memory.text import content_words, jaccard, normalized, signals_change
from parley.memory.topics import TOPICS, bundled_vectors
from parley.storage.db import Database

__all__ = [
    "MemoryService",
    "RecallStats",
    "Recalled",
    "SaveResult",
    "memory_enabled",
    "review_enabled",
]

log = logging.getLogger(__name__)

DUPLICATE_JACCARD = 0.8
DUPLICATE_COSINE = 0.9
CHANGE_JACCARD = 0.25
CHANGE_COSINE = 0.6
FORGET_JACCARD = 0.3
FORGET_COSINE = 0.55
TOPICS_WAIT_S = 2.0  # the first recall of a process waits this long for the topics


def memory_enabled(preferences: dict[str, Any] | None) -> bool:
    """Memory is on unless the user turned it off (``preferences["memory"] = false``)."""
    return (preferences or {}).get("memory", True) is not False


def review_enabled(preferences: dict[str, Any] | None) -> bool:
    return bool((preferences or {}).get("memory_review", False))


def scope_of(project_id: str | None, assistant_id: str | None) -> tuple[str | None, str | None]:
    """Where a memory learned in a conversation belongs: its project, else its
    assistant, else global (so nothing said inside a project leaks out of it)."""
    if project_id:
        return "project", project_id
    if assistant_id:
        return "assistant", assistant_id
    return None, None


def _contained(a: set[str], b: set[str]) -> bool:
    """One fact's words all appear in the other's ("I live in Paris" / "I live in
    Paris with Sam"): the same fact, restated; the newest wording wins."""
    small, large = sorted((a, b), key=len)
    return len(small) >= 2 and small <= large


Action = Literal["added", "merged", "updated", "proposed"]


@dataclass(slots=True)
class SaveResult:
    """What ``remember`` did; ``proposed``: a pending update of an active memory."""

    memory: Memory
    action: Action


@dataclass(slots=True)
class Recalled:
    """A memory recall chose; ``why``: its score and the parts of it."""

    id: str
    text: str
    why: Candidate | None = None


@dataclass(slots=True)
class RecallStats:
    """Counters of this process's recalls (``GET /api/memory/metrics``)."""

    recalls: int = 0
    keyword_fallbacks: int = 0
    embed_failures: int = 0


class MemoryService:
    def __init__(self, db: Database, embedder: Embedder | None = None) -> None:
        self.db = db
        self.embedder = embedder
        self._snapshots: dict[str, Snapshot] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.config = RecallConfig()
        self.stats = RecallStats()
        self._topics: npt.NDArray[np.float32] | None = None
        self._topics_model: str | None = None
        self._topics_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ embeddings

    @property
    def model_name(self) -> str | None:
        return self.embedder.name if self.embedder is not None else None

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32] | None:
        if self.embedder is None or not texts:
            return None
        try:
            return await self.embedder.embed(texts)
        except Exception:
            log.warning("embedding failed; memory uses keyword and recency only", exc_info=True)
            return None

    # ------------------------------------------------------------ recall

    async def snapshot(self, user_id: str) -> Snapshot:
        """The user's active memories, reloaded only when they changed."""
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            version = await store.version()
            cached = self._snapshots.get(user_id)
            if cached is not None and cached.version == version:
                return cached
            lock = self._locks.setdefault(user_id, asyncio.Lock())
            async with lock:
                cached = self._snapshots.get(user_id)
                if cached is not None and cached.version == version:
                    return cached
                rows = await store.active()
        snap = Snapshot.build(version, rows, self.model_name)
        self._snapshots[user_id] = snap
        if self.embedder is not None and snap.missing_vectors():
            self._spawn(self._backfill(user_id, snap))
        return snap

    async def _backfill(self, user_id: str, snap: Snapshot) -> None:
        """Embed memories stored without a vector (or with another model's), off the turn."""
        missing = snap.missing_vectors()
        for start in range(0, len(missing), 64):
            batch = missing[start : start + 64]
            vectors = await self.embed([snap.texts[i] for i in batch])
            if vectors is None:
                return
            snap.set_vectors(batch, vectors)
            async with self.db.session() as session:
                await MemoryStore(session, user_id).set_embeddings(
                    {
                        snap.ids[i]: (vectors[n].astype(np.float32).tobytes(), snap.model or "")
                        for n, i in enumerate(batch)
                    }
                )
                await session.commit()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def topics(self, *, wait_s: float | None = None) -> npt.NDArray[np.float32] | None:
        """The embedded topic descriptions (``parley.memory.topics``), once per model.

        They are computed in the background; a caller waits at most ``wait_s``
        (None: until done). Until they are ready, ranking goes without the topic
        and profile parts."""
        if self.embedder is None:
            return None
        if self._topics is not None and self._topics_model == self.model_name:
            return self._topics
        shipped = bundled_vectors(self.model_name)
        if shipped is not None:
            self._topics, self._topics_model = shipped, self.model_name
            return shipped
        if self._topics_task is None or self._topics_task.done():
            self._topics_task = asyncio.create_task(self._embed_topics())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._topics_task), wait_s)
        return self._topics if self._topics_model == self.model_name else None

    async def _embed_topics(self) -> None:
        found = await self.embed(list(TOPICS.values()))
        if found is not None:
            self._topics, self._topics_model = found, self.model_name

    async def rank(
        self,
        user_id: str,
        query: str,
        scope: Scope,
        k: int,
        *,
        query_vector: npt.NDArray[np.float32] | None = None,
        embed_timeout_s: float | None = None,
        min_similarity: float = 0.0,
        others: int = 0,
    ) -> tuple[Snapshot, Ranking]:
        """The ranking behind ``recall`` (and the "why" view: ``others`` more candidates).

        When embedding the question takes longer than ``embed_timeout_s``,
        recall falls back to keywords: a warning is logged, the fallback is
        counted (``stats``) and the ranking's ``mode`` says ``"keywords"``."""
        snap = await self.snapshot(user_id)
        self.stats.recalls += 1
        if query_vector is None and snap.vectors is not None and query.strip():
            try:
                found = await asyncio.wait_for(self.embed([query]), embed_timeout_s)
            except TimeoutError:
                self.stats.keyword_fallbacks += 1
                log.warning(
                    "memory recall: embedding the question took over %.0f ms; "
                    "recalling by keywords only",
                    (embed_timeout_s or 0) * 1000,
                )
                found = None
            else:
                if found is None:
                    self.stats.embed_failures += 1
            query_vector = None if found is None else found[0]
        topics = None
        if query_vector is not None:
            # Once per process and model (a few tens of ms once the model is loaded).
            topics = await self.topics(wait_s=TOPICS_WAIT_S)
        ranking = rank(
            snap, query, query_vector, scope, k, min_similarity, self.config, topics, others
        )
        ranking.fallback = query_vector is None and snap.vectors is not None
        return snap, ranking

    async def recall(
        self,
        user_id: str,
        query: str,
        scope: Scope,
        k: int,
        *,
        query_vector: npt.NDArray[np.float32] | None = None,
        embed_timeout_s: float | None = None,
        min_similarity: float = 0.0,
    ) -> list[Recalled]:
        """At most ``k`` memories for ``query``, best first (above the relevance
        floor ``min_similarity``, see ``parley.memory.recall``)."""
        snap, ranking = await self.rank(
            user_id,
            query,
            scope,
            k,
            query_vector=query_vector,
            embed_timeout_s=embed_timeout_s,
            min_similarity=min_similarity,
        )
        return [Recalled(snap.ids[c.index], snap.texts[c.index], c) for c in ranking.injected]

    # ------------------------------------------------------------ writes

    async def _similar(
        self, rows: list[Memory], text: str, vector: npt.NDArray[np.float32] | None
    ) -> list[tuple[Memory, float, float]]:
        """(memory, word overlap, cosine) for each row, most similar first."""
        words = content_words(text)
        found = []
        for row in rows:
            cosine = 0.0
            if vector is not None and row.embedding and row.embedding_model == self.model_name:
                stored = np.frombuffer(row.embedding, dtype=np.float32)
                if stored.shape[0] == vector.shape[0]:
                    cosine = float(stored @ vector)
            found.append((row, jaccard(words, content_words(row.text)), cosine))
        found.sort(key=lambda item: max(item[1], item[2]), reverse=True)
        return found

    async def remember(
        self,
        user_id: str,
        text: str,
        *,
        source: Literal["explicit", "auto"],
        conversation_id: str | None = None,
        message_id: str | None = None,
        scope: tuple[str | None, str | None] = (None, None),
        status: Literal["active", "pending"] = "active",
        replaces: str | None = None,
        changed: bool = False,
    ) -> SaveResult:
        """Save ``text`` following the merge / update / add rules (and commit).

        ``status="pending"`` (review mode) never changes an active memory: an
        update of one becomes a pending proposal that names it (one per memory,
        replaced by newer ones), and an update of a pending one rewrites it."""
        found = await self.embed([text])
        vector = None if found is None else found[0]
        embedding: dict[str, Any] = {"embedding": None, "embedding_model": None}
        if vector is not None:
            embedding = {"embedding": vector.tobytes(), "embedding_model": self.model_name}
        link = {"conversation_id": conversation_id, "message_id": message_id}
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            everything = (await store.list(limit=10_000))[0]
            rows = [
                r
                for r in everything
                if r.replaces_id is None and (r.scope_type, r.scope_id) == scope
            ]
            in_scope = {r.id for r in rows}
            proposals = [r for r in everything if r.replaces_id in in_scope]
            # Review mode also compares with what already waits, so nothing is proposed twice.
            candidates = rows + proposals if status == "pending" else rows
            target: Memory | None = None
            action: Action = "added"
            if replaces is not None:
                target = next((r for r in candidates if r.id == replaces), None)
                action = "updated"
            if target is None:
                target, action = await self._match(candidates, text, vector, changed)
            if target is None:
                memory = await store.create(
                    text,
                    source=source,
                    status=status,
                    scope_type=scope[0],
                    scope_id=scope[1],
                    **link,
                    **embedding,
                )
            elif target.status == "active" and status == "pending":
                if action == "merged" or normalized(target.text) == normalized(text):
                    memory, action = target, "merged"  # it already says so; nothing to review
                else:
                    pending = next((p for p in proposals if p.replaces_id == target.id), None)
                    memory, action = await self._propose(
                        store, target, pending, text, source, link, embedding
                    )
            else:
                # An explicit request activates a pending one (proposals are only
                # candidates in review mode, so they stay pending here).
                new_status = "active" if "active" in (target.status, status) else "pending"
                await store.update(target, text=text, status=new_status, **embedding)
                if conversation_id:
                    target.conversation_id, target.message_id = conversation_id, message_id
                if new_status == "active" and action == "updated":
                    await store.delete_proposals(target.id)  # settled by the user
                memory = target
            await session.commit()
        return SaveResult(memory, action)

    async def _match(
        self,
        rows: list[Memory],
        text: str,
        vector: npt.NDArray[np.float32] | None,
        changed: bool,
    ) -> tuple[Memory | None, Action]:
        """The memory ``text`` duplicates (merge) or changes (update), if any."""
        ranked = await self._similar(rows, text, vector)
        key = normalized(text)
        for row, overlap, cosine in ranked:
            if (
                normalized(row.text) == key
                or overlap >= DUPLICATE_JACCARD
                or cosine >= DUPLICATE_COSINE
                or _contained(content_words(row.text), content_words(text))
            ):
                return row, "merged"
        if (changed or signals_change(text)) and ranked:
            row, overlap, cosine = ranked[0]
            if overlap >= CHANGE_JACCARD or cosine >= CHANGE_COSINE:
                return row, "updated"
        return None, "added"

    async def _propose(
        self,
        store: MemoryStore,
        target: Memory,
        pending: Memory | None,
        text: str,
        source: str,
        link: dict[str, Any],
        embedding: dict[str, Any],
    ) -> tuple[Memory, Action]:
        """A pending update of the active ``target``: the one already waiting is
        rewritten (the user reviews one proposal per memory, the latest)."""
        if pending is not None:
            await store.update(pending, text=text, **embedding)
            if link["conversation_id"]:
                pending.conversation_id = link["conversation_id"]
                pending.message_id = link["message_id"]
            return pending, "updated"
        created = await store.create(
            text,
            source=source,
            status="pending",
            scope_type=target.scope_type,
            scope_id=target.scope_id,
            replaces_id=target.id,
            **link,
            **embedding,
        )
        return created, "proposed"

    async def approve(self, user_id: str, memory_id: str) -> Memory | None:
        """Make a pending memory active; a proposed update rewrites the memory it
        names (text, link, vector) and disappears. None when there is no such memory."""
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            row = await store.get(memory_id)
            if row is None or row.status == "active":
                return row
            if row.replaces_id is None:
                await store.update(row, status="active")
                await session.commit()
                return row
            target = await store.get(row.replaces_id)
            if target is None:  # cannot happen: deleting a memory deletes its proposals
                await store.delete(row.id)
                await session.commit()
                return None
            await store.update(
                target,
                text=row.text,
                embedding=row.embedding,
                embedding_model=row.embedding_model,
            )
            if row.conversation_id:
                target.conversation_id, target.message_id = row.conversation_id, row.message_id
            await store.delete_proposals(target.id)
            await session.commit()
            return target

    async def edit(self, user_id: str, memory_id: str, text: str) -> Memory | None:
        """Rewrite a memory by hand (the memory page): its vector follows the new
        wording (none when embedding fails). None when there is no such memory."""
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            row = await store.get(memory_id)
            if row is None:
                return None
            found = await self.embed([text])
            await store.update(
                row,
                text=text,
                embedding=None if found is None else found[0].tobytes(),
                embedding_model=None if found is None else self.model_name,
            )
            await session.commit()
            return row

    async def forget(
        self, user_id: str, text: str, scope: tuple[str | None, str | None] = (None, None)
    ) -> list[Memory]:
        """Delete the memory that best matches ``text`` (and exact duplicates of it)."""
        found = await self.embed([text])
        vector = None if found is None else found[0]
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            rows = [
                r
                for r in (await store.list(limit=10_000))[0]
                if r.replaces_id is None
                and (r.scope_type is None or (r.scope_type, r.scope_id) == scope)
            ]
            ranked = await self._similar(rows, text, vector)
            if not ranked:
                return []
            best, overlap, cosine = ranked[0]
            if overlap < FORGET_JACCARD and cosine < FORGET_COSINE:
                return []
            key = normalized(best.text)
            gone = [best, *(r for r, _, _ in ranked[1:] if normalized(r.text) == key)]
            for row in gone:
                await store.delete(row.id)
            await session.commit()
        return gone

    def drop_snapshot(self, user_id: str) -> None:
        """Forget the user's recall snapshot (texts and vectors) now: a deleted
        user is never recalled again to replace it."""
        self._snapshots.pop(user_id, None)
        self._locks.pop(user_id, None)

    async def aclose(self) -> None:
        if self._topics_task is not None and not self._topics_task.done():
            self._topics_task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
