"""Files in a turn: automatic context for attached files, and the ``search_knowledge`` tool.

``FileContext`` (a ``ContextSource``) runs before the model is called when the
conversation has files attached (directly or through a collection):

1. Attachments not yet tied to a question are tied to this one (the web app
   shows them on the user's message).
2. Files still being ingested are waited for, briefly (``knowledge_wait_s``).
3. **Whole or retrieved**: ready documents that fit the token budget together go
   in whole (smallest first); the others are searched with the question (hybrid
   retrieval) and the best passages that fit are included.
4. Whatever is not available is *said*, never silently dropped: a file still
   indexing, a file that failed (with its reason), an image the model cannot see.

Passages are numbered ``[1]``, ``[2]``... and the model is asked to cite them
that way; each number has a source (``kind: "file"``, ``ref``, ``file_id``,
``filename``, ``page``, ``section``, ``chunk_id``, ``snippet``, ``mode``) stored
on the answer and streamed before it. File text is wrapped in
``<untrusted-data>`` (data, never instructions).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Literal

from parley.config import Settings
from parley.knowledge.blobs import BlobStore
from parley.knowledge.retrieval import Hit, Retriever
from parley.knowledge.store import TERMINAL, KnowledgeStore, ScopeLookup, also_for, lent_files
from parley.knowledge.tables import KnowledgeFile
from parley.messages import FileSource, ImagePart, Source
from parley.storage.db import Database
from parley.tools import ToolContext, tool_from_function
from parley.tools.base import Tool
from parley.turns.hooks import GATHER_TIMEOUT_S, ContextBlock, TurnInfo

__all__ = ["FileContext", "FileContextBlock", "make_search_tool"]

log = logging.getLogger(__name__)

SNIPPET_CHARS = 300
MIN_PASSAGE_TOKENS = 100  # a first passage over the budget is cut to the budget, not below
MAX_IMAGE_BYTES = 20 * 1024 * 1024
_CLOSE_TAG = re.compile(r"</\s*untrusted-data", re.IGNORECASE)
CITE_INSTRUCTIONS = (
    "The user's files for this conversation follow. Answer from them when they are "
    "relevant and cite each passage you use with its number in brackets, like [1], right "
    "after the statement it supports. If they do not contain the answer, say so."
)


@dataclass(slots=True)
class FileContextBlock(ContextBlock):
    """A context block that may also carry images for the user's message."""

    images: list[ImagePart] = field(default_factory=list)


def _cut(text: str, chars: int, query: str = "") -> str:
    """About ``chars`` characters of ``text``, at word boundaries: the stretch around
    the most of the question's words (the start when none of them is there)."""
    if len(text) <= chars:
        return text
    words = text.split()
    wanted = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 3}
    hits = [i for i, w in enumerate(words) if wanted & set(re.findall(r"\w+", w.lower()))]
    center, best = 0, 0
    for i in hits:  # the hit with the most other hits within half a window either side
        near = [j for j in hits if len(" ".join(words[min(i, j) : max(i, j)])) <= chars // 2]
        if len(near) > best:
            center, best = (min(near) + max(near)) // 2, len(near)
    lo = hi = center
    used = len(words[center]) if words else 0
    while True:  # grow one word at a time on each side while it fits
        grew = False
        for side in (1, -1):
            nxt = hi + 1 if side == 1 else lo - 1
            if 0 <= nxt < len(words) and used + len(words[nxt]) + 1 <= chars:
                used += len(words[nxt]) + 1
                lo, hi = (lo, nxt) if side == 1 else (nxt, hi)
                grew = True
        if not grew:
            break
    head = "… " if lo > 0 else ""
    tail = " …" if hi < len(words) - 1 else ""
    return head + " ".join(words[lo : hi + 1]) + tail


def _data(text: str) -> str:
    return _CLOSE_TAG.sub("</untrusted_data", text)


def _where(filename: str, page: int | None, section: str | None) -> str:
    parts = [filename]
    if page is not None:
        parts.append(f"page {page}")
    if section:
        parts.append(section)
    return " — ".join(parts)


def _progress(row: KnowledgeFile) -> str:
    if row.status == "parsing" and row.pages:
        return f"reading page {row.pages_done} of {row.pages}"
    if row.status == "embedding" and row.chunk_count:
        return f"indexing, {100 * row.embedded_count // max(row.chunk_count, 1)}% done"
    return row.status


class FileContext:
    name = "files"

    def __init__(
        self,
        db: Database,
        retriever: Retriever,
        blobs: BlobStore,
        config: Settings,
    ) -> None:
        self.db = db
        self.retriever = retriever
        self.blobs = blobs
        self.config = config
        # (user, conversation) -> the last citation number the context used, so the
        # search tool's passages continue the numbering ([n] stays unique in an answer).
        self.refs: dict[tuple[str, str], int] = {}
        self.also: ScopeLookup | None = None  # more a chat sees (an assistant's knowledge)
        # other users' files a chat may search (a shared assistant's, a project's)
        self.lent: list[ScopeLookup] = []

    async def _files(self, info: TurnInfo, bind: bool) -> list[KnowledgeFile]:
        files = await self._own_files(info, bind)
        if not self.lent:
            return files
        async with self.db.session() as session:
            more = await lent_files(
                session, self.lent, info.user_id, info.conversation_id, [f.id for f in files]
            )
        return files + more

    async def _own_files(self, info: TurnInfo, bind: bool) -> list[KnowledgeFile]:
        async with self.db.session() as session:
            store = KnowledgeStore(session, info.user_id)
            also = await also_for(self.also, info.user_id, info.conversation_id)
            files = await store.scope_files(info.conversation_id, also)
            unbound = [
                f
                for f in files
                if f.conversation_id == info.conversation_id and f.message_id is None
            ]
            if bind and unbound:  # a write only when this question brought attachments
                await store.bind_to_message(info.conversation_id, info.user_message_id)
                await session.commit()
                files = await store.scope_files(info.conversation_id, also)
            return files

    async def gather(self, info: TurnInfo, budget_tokens: int) -> list[ContextBlock]:
        key = (info.user_id, info.conversation_id)
        self.refs[key] = 0
        if len(self.refs) > 10_000:
            self.refs.clear()
            self.refs[key] = 0
        files = await self._files(info, bind=True)
        if not files:
            return []
        wait = max(0.0, min(self.config.knowledge_wait_s, GATHER_TIMEOUT_S - 1.5))
        deadline = time.monotonic() + wait
        while any(f.status not in TERMINAL for f in files) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            files = await self._files(info, bind=False)

        notes: list[str] = []
        sources: list[Source] = []
        images: list[ImagePart] = []
        usable: list[KnowledgeFile] = []
        partial: list[KnowledgeFile] = []
        for row in files:
            if row.kind == "image":
                if info.model.supports_vision:
                    part = await self._image(row)
                    if part is not None:
                        images.append(part)
                        sources.append(self._note(row, "image", "shown to the model"))
                        continue
                    notes.append(f'The image "{row.filename}" could not be loaded.')
                else:
                    notes.append(
                        f'The user attached the image "{row.filename}", but the current model '
                        "cannot see images: say so if the question is about it, and suggest "
                        "a model with vision."
                    )
                    sources.append(self._note(row, "unsupported", "this model cannot see images"))
            elif row.status == "failed":
                notes.append(f'"{row.filename}" could not be read: {row.error or "unknown error"}')
                sources.append(self._note(row, "failed", row.error or ""))
            elif row.status == "ready" and row.chunk_count > 0:
                usable.append(row)
            elif row.status == "embedding" and row.chunk_count > 0:
                partial.append(row)  # keyword search already works on its passages
                notes.append(
                    f'"{row.filename}" is still being indexed ({_progress(row)}); its passages '
                    "below come from keyword search only and may be incomplete. Tell the user."
                )
                sources.append(self._note(row, "pending", _progress(row)))
            else:
                notes.append(
                    f'"{row.filename}" is still being processed ({_progress(row)}), so its '
                    "content is not available for this answer. Tell the user it is not ready "
                    "yet and to ask again in a moment."
                )
                sources.append(self._note(row, "pending", _progress(row)))

        passages: list[str] = []
        budget = max(0, budget_tokens - 150)
        whole, retrieved = self._plan(usable, budget)
        used = 0
        ref = 0
        for row in whole:
            body = await self._whole_text(row.user_id, row)  # a lent file: its owner's
            ref += 1
            passages.append(f"[{ref}] {row.filename} (whole document)\n{_data(body)}")
            used += row.tokens
            sources.append(
                {
                    "kind": "file",
                    "title": row.filename,
                    "ref": ref,
                    "file_id": row.id,
                    "filename": row.filename,
                    "page": None,
                    "section": None,
                    "chunk_id": None,
                    "snippet": body[:SNIPPET_CHARS],
                    "mode": "whole",
                }
            )
        search_ids = [f.id for f in retrieved] + [f.id for f in partial]
        if search_ids and info.query.strip():
            hits = await search_by_owner(
                self.retriever,
                info.user_id,
                info.query,
                retrieved + partial,
                self.config.knowledge_top_k,
            )
            for hit in hits:
                cost = max(1, len(hit.text) // 4) + 12
                if used + cost > budget and ref > 0:
                    break
                text = hit.text
                if used + cost > budget:  # the first passage alone is over a small budget
                    text = _cut(text, max(budget - used, MIN_PASSAGE_TOKENS) * 4, info.query)
                    cost = len(text) // 4 + 12
                ref += 1
                used += cost
                passages.append(
                    f"[{ref}] {_where(hit.filename, hit.page, hit.section)}\n{_data(text)}"
                )
                sources.append(self.hit_source(hit, ref))
        self.refs[key] = ref
        if not passages and not notes and not images:
            return []
        parts = [CITE_INSTRUCTIONS]
        if passages:
            parts.append("<untrusted-data>\n" + "\n\n".join(passages) + "\n</untrusted-data>")
        elif search_ids:
            parts.append("No passage of the files matched this question.")
        if notes:
            parts.append("Notes:\n" + "\n".join(f"- {n}" for n in notes))
        return [FileContextBlock("files", "\n\n".join(parts), sources, images)]

    @staticmethod
    def hit_source(hit: Hit, ref: int) -> FileSource:
        return {
            "kind": "file",
            "title": hit.filename,
            "ref": ref,
            "file_id": hit.file_id,
            "filename": hit.filename,
            "page": hit.page,
            "section": hit.section,
            "chunk_id": hit.chunk_id,
            "snippet": hit.text[:SNIPPET_CHARS],
            "char_start": hit.char_start,
            "char_end": hit.char_end,
            "mode": "retrieved",
        }

    @staticmethod
    def _note(
        row: KnowledgeFile,
        mode: Literal["pending", "failed", "unsupported", "image"],
        detail: str,
    ) -> FileSource:
        return {
            "kind": "file",
            "title": row.filename,
            "ref": None,
            "file_id": row.id,
            "filename": row.filename,
            "page": None,
            "section": None,
            "chunk_id": None,
            "snippet": "",
            "mode": mode,
            "status": row.status,
            "detail": detail,
        }

    @staticmethod
    def _plan(
        files: list[KnowledgeFile], budget: int
    ) -> tuple[list[KnowledgeFile], list[KnowledgeFile]]:
        """Which documents go whole (smallest first, while they fit) and which are searched."""
        if sum(f.tokens for f in files) <= budget:
            return list(files), []
        whole: list[KnowledgeFile] = []
        retrieved: list[KnowledgeFile] = []
        used = 0
        for row in sorted(files, key=lambda f: f.tokens):
            if used + row.tokens <= budget // 2:
                whole.append(row)
                used += row.tokens
            else:
                retrieved.append(row)
        return whole, retrieved

    async def _whole_text(self, user_id: str, row: KnowledgeFile) -> str:
        async with self.db.session() as session:
            chunks = await KnowledgeStore(session, user_id).chunks(row.id)
        parts: list[str] = []
        page: int | None = None
        for chunk in chunks:
            if chunk.page is not None and chunk.page != page:
                page = chunk.page
                parts.append(f"(page {page})")
            parts.append(chunk.text)
        return "\n\n".join(parts)

    async def _image(self, row: KnowledgeFile) -> ImagePart | None:
        if row.size_bytes > MAX_IMAGE_BYTES:
            return None
        try:
            data = await asyncio.to_thread(lambda: self.blobs.local(row.sha256).read_bytes())
        except OSError:
            return None
        encoded = base64.b64encode(data).decode("ascii")
        return ImagePart(f"data:{row.media_type};base64,{encoded}", row.media_type)


def make_search_tool(
    db: Database, retriever: Retriever, config: Settings, source: FileContext
) -> Tool:
    async def search_knowledge(query: str, ctx: ToolContext) -> str:
        """Search the user's uploaded files and knowledge collections for passages.

        Searches the files of this conversation (uploaded to it, added from the
        library, or in its collections), or all of the user's files when it has none.

        Args:
            query: what to look for: a question or a few keywords.
        """
        if not ctx.user_id:
            return "No user: nothing to search."
        scoped: list[KnowledgeFile] = []
        if ctx.conversation_id:
            also = await also_for(source.also, ctx.user_id, ctx.conversation_id)
            async with db.session() as session:
                store = KnowledgeStore(session, ctx.user_id)
                scoped = await store.scope_files(ctx.conversation_id, also)
                scoped += await lent_files(
                    session, source.lent, ctx.user_id, ctx.conversation_id, [f.id for f in scoped]
                )
        if scoped:
            hits = await search_by_owner(
                retriever, ctx.user_id, query, scoped, config.knowledge_top_k
            )
        else:
            hits = await retriever.search(ctx.user_id, query, limit=config.knowledge_top_k)
        if not hits:
            return "No passage of the user's files matches this query."
        # Continue the turn's citation numbers: after the context's, after earlier calls'.
        ref = source.refs.get((ctx.user_id, ctx.conversation_id or ""), 0)
        ref += sum(1 for s in ctx.sources if s.get("kind") == "file" and s.get("ref"))
        cited = {s.get("chunk_id"): s.get("ref") for s in ctx.sources if s.get("kind") == "file"}
        lines = []
        for hit in hits:
            number = cited.get(hit.chunk_id)
            if number is None:
                ref += 1
                number = ref
                ctx.sources.append(FileContext.hit_source(hit, number))
            where = _where(hit.filename, hit.page, hit.section)
            lines.append(f"[{number}] {where}\n{_data(hit.text)}")
        return (
            "Passages from the user's files. Cite each one you use with its number in "
            "brackets, like [1].\n<untrusted-data>\n" + "\n\n".join(lines) + "\n</untrusted-data>"
        )

    return tool_from_function(
        search_knowledge,
        timeout_s=20.0,
        title="Search your files",
        summary="Looks through the files and collections of this chat",
    )


async def search_by_owner(
    retriever: Retriever, user_id: str, query: str, files: list[KnowledgeFile], limit: int
) -> list[Hit]:
    """Passages of ``files`` for ``query``: each owner's files in that owner's index
    (a shared assistant's or a project member's files are not the asker's), the
    best ``limit`` of all by score; the asker's own files only: one search."""
    owners: dict[str, list[str]] = {}
    for f in files:
        owners.setdefault(f.user_id, []).append(f.id)
    if list(owners) in ([], [user_id]):
        return await retriever.search(
            user_id, query, file_ids=owners.get(user_id, []), limit=limit, mode="hybrid"
        )
    found = await asyncio.gather(
        *(
            retriever.search(owner, query, file_ids=ids, limit=limit, mode="hybrid")
            for owner, ids in owners.items()
        )
    )
    hits = [hit for group in found for hit in group]
    hits.sort(key=lambda h: h.score, reverse=True)
    return hits[:limit]
