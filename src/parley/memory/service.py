"""Saving, forgetting and recalling memories, with the rules that keep them clean.

Writes go through ``remember`` so every path (the explicit fast path, the
``remember`` tool, extraction, the API) follows the same rules:

- a duplicate (same words, or nearly: word overlap >= 0.8, cosine >= 0.9, or
  one's words all within the other's) merges into the existing memory (newest
  wording and link win);
- a change replaces a memory only when it states a new value of the same
  attribute of the same person: both have the same attribute key
  (``parley.memory.attributes``: "Lives in Lyon." replaces "Lives in Paris.");
  the old text goes to the memory's history (``memory_versions``), restorable;
- when the chat model (extraction) or the user's wording ("now", "anymore") says
  it is a change but no key says which attribute, it becomes a pending proposal
  naming the memory (``replaces_id``) for the user to confirm; when the keys
  disagree (an injury and the move it caused) the fact is added beside it;
- otherwise a new memory is added;
- in review mode nothing active changes: an update becomes one pending
  proposal naming the memory it replaces (``replaces_id``, in that memory's scope).

The decisions themselves are pure functions in ``parley.memory.rules``.
Candidates come from the user's in-process ``WriteIndex`` (``parley.memory.index``),
not from a scan of the table, so a write costs the same at 10,000 memories.

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
from parley.memory.attributes import attribute_key
from parley.memory.index import WriteIndex
from parley.memory.recall import Candidate, Ranking, RecallConfig, Scope, Snapshot, rank
from parley.memory.rules import Action, judge_named, match, similar
from parley.memory.store import MemoryStore
from parley.memory.tables import Memory, MemoryVersion
from parley.memory.text import (
    normalized,
    question_text,
)
from parley.memory.topics import TOPICS, bundled_vectors
from parley.storage.db import Database
from parley.usage.metering import Charge, billed_to

__all__ = [
    "MemoryService",
    "RecallStats",
    "Recalled",
    "SaveResult",
    "memory_enabled",
    "review_enabled",
]

log = logging.getLogger(__name__)

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
        self._indexes: dict[str, WriteIndex] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}
        # Embed the question while the snapshot's version is checked (False: one
        # after the other, as before; kept so ``bench.memory_perf`` compares both).
        self.overlap_question = True
        self._warmed = False

    # ------------------------------------------------------------ embeddings

    @property
    def model_name(self) -> str | None:
        return self.embedder.name if self.embedder is not None else None

    async def embed(
        self, texts: list[str], user_id: str | None = None
    ) -> npt.NDArray[np.float32] | None:
        """Vectors of ``texts``, or None (keyword recall) when embedding failed. A
        remote endpoint's calls are charged to ``user_id`` in the usage ledger
        (``billed_to``); the instance's own (topic vectors) to nobody."""
        if self.embedder is None or not texts:
            return None
        try:
            if user_id is None:
                return await self.embedder.embed(texts)
            with billed_to(Charge(user_id, "embeddings")):
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
            vectors = await self.embed([snap.texts[i] for i in batch], user_id)
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

        The question is embedded while the snapshot's version is checked (two
        waits on two other threads, overlapped: on a busy machine each costs
        several milliseconds). When embedding the question takes longer than
        ``embed_timeout_s``, recall falls back to keywords: a warning is logged,
        the fallback is counted (``stats``), ``ranking.fallback`` is set and the
        ranking's ``mode`` says ``"keywords"``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        wanted = query_vector is None and self.embedder is not None and bool(query.strip())
        asked = question_text(query) if self.config.plain_question else query
        if wanted and not self._warmed:
            # The first recall of the process prepares the embedder's question path
            # (``LocalEmbedder.warm``: a one-thread ONNX Runtime session, built in the
            # background; until it is ready questions take the ordinary path).
            self._warmed = True
            warm = getattr(self.embedder, "warm", None)
            if warm is not None:
                warm()
        cached = self._snapshots.get(user_id)
        embedding: asyncio.Task[npt.NDArray[np.float32] | None] | None = None
        if wanted and self.overlap_question and (cached is None or cached.vectors is not None):
            embedding = asyncio.create_task(self.embed([asked], user_id))
        try:
            snap = await self.snapshot(user_id)
        except BaseException:
            if embedding is not None:
                embedding.cancel()
            raise
        self.stats.recalls += 1
        if snap.vectors is None:
            if embedding is not None:
                embedding.cancel()  # nothing to compare it with: keywords anyway
        elif wanted:
            if embedding is None:
                embedding = asyncio.create_task(self.embed([asked], user_id))
            timeout = None
            if embed_timeout_s is not None:
                timeout = max(0.0, embed_timeout_s - (loop.time() - started))
            done, _ = await asyncio.wait({embedding}, timeout=timeout)
            if not done:
                embedding.cancel()
                self.stats.keyword_fallbacks += 1
                log.warning(
                    "memory recall: embedding the question took over %.0f ms; "
                    "recalling by keywords only",
                    (embed_timeout_s or 0) * 1000,
                )
            else:
                found = embedding.result()
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

    async def write_index(self, store: MemoryStore) -> WriteIndex:
        """The user's write index, rebuilt when their rows changed behind it."""
        version = await store.write_version()
        index = self._indexes.get(store.user_id)
        if index is None or index.version != version or index.model != self.model_name:
            index = WriteIndex.build(await store.everything(), self.model_name, version)
            self._indexes[store.user_id] = index
        return index

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

        ``replaces``: the memory the chat model says this changes; it is replaced
        only when the attribute keys agree (else proposed, or added).
        ``status="pending"`` (review mode) never changes an active memory: an
        update of one becomes a pending proposal that names it (one per memory,
        replaced by newer ones), and an update of a pending one rewrites it."""
        found = await self.embed([text], user_id)
        vector = None if found is None else found[0]
        attribute = attribute_key(text)
        embedding: dict[str, Any] = {"embedding": None, "embedding_model": None}
        if vector is not None:
            embedding = {"embedding": vector.tobytes(), "embedding_model": self.model_name}
        link = {"conversation_id": conversation_id, "message_id": message_id}
        lock = self._write_locks.setdefault(user_id, asyncio.Lock())
        async with lock, self.db.session() as session:
            store = MemoryStore(session, user_id)
            index = await self.write_index(store)
            cosines = index.candidates(text, vector, attribute)
            if replaces is not None:
                cosines.setdefault(replaces, 0.0)
            everything = await store.get_many(list(cosines))
            in_scope_ids = {
                r.id
                for r in everything
                if r.replaces_id is None and (r.scope_type, r.scope_id) == scope
            }
            proposal_rows = await store.proposals(sorted(in_scope_ids))
            rows = [r for r in everything if r.id in in_scope_ids]
            proposals = [r for r in proposal_rows]
            # Review mode also compares with what already waits, so nothing is proposed twice.
            candidates = rows + proposals if status == "pending" else rows
            target: Memory | None = None
            action: Action = "added"
            ranked = similar(index, candidates, text, vector, cosines)
            if replaces is not None:
                named = next((r for r in candidates if r.id == replaces), None)
                if named is not None:
                    target, action = judge_named(named, text, attribute, ranked)
            if target is None and action == "added":
                target, action = match(ranked, text, attribute, changed)
            created_status = status
            if action == "proposed" and target is not None:
                created_status = "pending"
            if target is None:
                memory = await store.create(
                    text,
                    source=source,
                    status=status,
                    scope_type=scope[0],
                    scope_id=scope[1],
                    attribute=attribute,
                    **link,
                    **embedding,
                )
            elif target.status == "active" and created_status == "pending":
                if action == "merged" or normalized(target.text) == normalized(text):
                    memory, action = target, "merged"  # it already says so; nothing to review
                else:
                    pending = next((p for p in proposals if p.replaces_id == target.id), None)
                    if pending is None:
                        pending = next(
                            iter(await store.proposals([target.id])), None
                        )  # one proposal per memory, the latest
                    memory, action = await self._propose(
                        store, target, pending, text, source, link, embedding
                    )
            else:
                # An explicit request activates a pending one (proposals are only
                # candidates in review mode, so they stay pending here).
                new_status = "active" if "active" in (target.status, status) else "pending"
                if (
                    action == "updated"
                    and target.status == "active"
                    and normalized(target.text) != normalized(text)
                ):
                    await store.keep_version(target, "updated")
                await store.update(
                    target, text=text, status=new_status, attribute=attribute, **embedding
                )
                if conversation_id:
                    target.conversation_id, target.message_id = conversation_id, message_id
                if new_status == "active" and action == "updated":
                    await store.delete_proposals(target.id)  # settled by the user
                memory = target
            await session.commit()
            index.put(memory)
            index.version = await store.write_version()
        return SaveResult(memory, action)

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
            if normalized(target.text) != normalized(row.text):
                await store.keep_version(target, "approved")
            await store.update(
                target,
                text=row.text,
                embedding=row.embedding,
                embedding_model=row.embedding_model,
                attribute=attribute_key(row.text),
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
            if normalized(row.text) != normalized(text):
                await store.keep_version(row, "edited")
            await self._rewrite(store, row, text)
            await session.commit()
            return row

    async def _rewrite(self, store: MemoryStore, row: Memory, text: str) -> None:
        found = await self.embed([text], store.user_id)
        await store.update(
            row,
            text=text,
            embedding=None if found is None else found[0].tobytes(),
            embedding_model=None if found is None else self.model_name,
            attribute=attribute_key(text),
        )

    async def history(self, user_id: str, memory_id: str) -> list[MemoryVersion] | None:
        """The memory's earlier texts, newest first (None: no such memory)."""
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            if await store.get(memory_id) is None:
                return None
            return await store.versions(memory_id)

    async def restore(self, user_id: str, memory_id: str, version_id: str) -> Memory | None:
        """Give the memory an earlier text back; its current text joins the history
        (a restore destroys nothing either). None when either is not the user's."""
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            row = await store.get(memory_id)
            if row is None:
                return None
            version = next((v for v in await store.versions(memory_id) if v.id == version_id), None)
            if version is None:
                return None
            text = version.text
            await store.keep_version(row, "restored")
            await session.delete(version)
            await self._rewrite(store, row, text)
            await session.commit()
            return row

    async def forget(
        self, user_id: str, text: str, scope: tuple[str | None, str | None] = (None, None)
    ) -> list[Memory]:
        """Delete the memory that best matches ``text`` (and exact duplicates of it),
        at once. The chat asks first (``parley.memory.forgetting``); this stays for
        callers that already have the user's confirmation."""
        found = await self.embed([text], user_id)
        vector = None if found is None else found[0]
        async with self.db.session() as session:
            store = MemoryStore(session, user_id)
            index = await self.write_index(store)
            cosines = index.candidates(text, vector, None)
            rows = [
                r
                for r in await store.get_many(list(cosines))
                if r.replaces_id is None
                and (r.scope_type is None or (r.scope_type, r.scope_id) == scope)
            ]
            ranked = similar(index, rows, text, vector, cosines)
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
        self._indexes.pop(user_id, None)

    async def aclose(self) -> None:
        if self._topics_task is not None and not self._topics_task.done():
            self._topics_task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
