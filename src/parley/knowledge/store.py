"""Every query of files, chunks and collections, scoped by the user who asks.

``KnowledgeStore(session, user_id)`` never returns another user's row: each
statement filters on ``user_id`` (and joins re-check the owner). Callers own
the unit of work (they commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parley.knowledge.tables import (
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeConversationCollection,
    KnowledgeConversationFile,
    KnowledgeFile,
)
from parley.seam import ConversationKnowledge
from parley.storage.tables import Conversation, utcnow

__all__ = [
    "TERMINAL",
    "Also",
    "KnowledgeStore",
    "ScopeLookup",
    "also_for",
    "blob_in_use",
    "lent_files",
]

Also = tuple[Sequence[str], Sequence[str]]
ScopeLookup = Callable[[], ConversationKnowledge | None]
"""``FeatureContext.lookup(CONVERSATION_KNOWLEDGE)``: None while no feature provides it."""


async def also_for(lookup: ScopeLookup | None, user_id: str, conversation_id: str) -> Also | None:
    """What else ``conversation_id`` sees (an assistant's knowledge), or None."""
    extra = lookup() if lookup is not None else None
    return None if extra is None else await extra(user_id, conversation_id)


async def lent_files(
    session: AsyncSession,
    lookups: Sequence[ScopeLookup],
    user_id: str,
    conversation_id: str,
    have: Sequence[str] = (),
) -> list[KnowledgeFile]:
    """Other users' files a chat may *search* (``parley.seam.SHARED_KNOWLEDGE``, a
    project's ``PROJECT_KNOWLEDGE``): the providers decided the user may, now.
    Not scoped by user on purpose; retrieval only: callers search each under its
    owner and never list, serve or copy them. ``have``: ids the chat already sees."""
    collections: list[str] = []
    files: list[str] = []
    # the lenders are independent (an assistant's, a project's): asked together
    for found in await asyncio.gather(
        *(also_for(lookup, user_id, conversation_id) for lookup in lookups)
    ):
        if found:
            collections += found[0]
            files += found[1]
    if not collections and not files:
        return []
    rows = await session.scalars(
        select(KnowledgeFile)
        .where(
            or_(
                *([KnowledgeFile.collection_id.in_(collections)] if collections else []),
                *([KnowledgeFile.id.in_(files)] if files else []),
            ),
            KnowledgeFile.id.not_in(list(have)) if have else KnowledgeFile.id.is_not(None),
        )
        .order_by(KnowledgeFile.created_at, KnowledgeFile.id)
    )
    return list(rows.all())


TERMINAL = frozenset({"ready", "failed"})


async def blob_in_use(session: AsyncSession, sha256: str) -> bool:
    """Whether any record (of any user) still points at the blob ``sha256``."""
    count = await session.scalar(
        select(func.count()).select_from(KnowledgeFile).where(KnowledgeFile.sha256 == sha256)
    )
    return bool(count)


class KnowledgeStore:
    def __init__(self, session: AsyncSession, user_id: str) -> None:
        self.session = session
        self.user_id = user_id

    # ------------------------------------------------------------ conversations

    async def conversation(self, conversation_id: str) -> Conversation | None:
        return await self.session.scalar(
            select(Conversation).where(
                Conversation.id == conversation_id, Conversation.user_id == self.user_id
            )
        )

    # ------------------------------------------------------------ files

    async def file(self, file_id: str) -> KnowledgeFile | None:
        return await self.session.scalar(
            select(KnowledgeFile).where(
                KnowledgeFile.id == file_id, KnowledgeFile.user_id == self.user_id
            )
        )

    async def files(
        self,
        *,
        conversation_id: str | None = None,
        collection_id: str | None = None,
        limit: int = 200,
    ) -> list[KnowledgeFile]:
        query = select(KnowledgeFile).where(KnowledgeFile.user_id == self.user_id)
        if conversation_id is not None:
            query = query.where(KnowledgeFile.conversation_id == conversation_id)
        if collection_id is not None:
            query = query.where(KnowledgeFile.collection_id == collection_id)
        query = query.order_by(KnowledgeFile.created_at.desc(), KnowledgeFile.id).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def files_by_ids(self, ids: Sequence[str]) -> list[KnowledgeFile]:
        if not ids:
            return []
        rows = await self.session.scalars(
            select(KnowledgeFile).where(
                KnowledgeFile.id.in_(list(ids)), KnowledgeFile.user_id == self.user_id
            )
        )
        return list(rows.all())

    async def duplicate(
        self, sha256: str, conversation_id: str | None, collection_id: str | None
    ) -> KnowledgeFile | None:
        """The user's record of the same bytes in the same place, if any (not failed)."""
        return await self.session.scalar(
            select(KnowledgeFile)
            .where(
                KnowledgeFile.user_id == self.user_id,
                KnowledgeFile.sha256 == sha256,
                KnowledgeFile.conversation_id.is_(None)
                if conversation_id is None
                else KnowledgeFile.conversation_id == conversation_id,
                KnowledgeFile.collection_id.is_(None)
                if collection_id is None
                else KnowledgeFile.collection_id == collection_id,
                KnowledgeFile.status != "failed",
            )
            .limit(1)
        )

    async def add_file(self, **fields: Any) -> KnowledgeFile:
        row = KnowledgeFile(user_id=self.user_id, **fields)
        self.session.add(row)
        await self.session.flush()
        return row

    async def delete_file(self, row: KnowledgeFile) -> None:
        """Delete the record with its chunks and vectors (cascades); the caller frees the blob."""
        if row.user_id != self.user_id:
            raise PermissionError("not the owner")
        await self.session.execute(
            delete(KnowledgeConversationFile).where(
                KnowledgeConversationFile.file_id == row.id,
                KnowledgeConversationFile.user_id == self.user_id,
            )
        )
        await self.session.execute(
            delete(KnowledgeChunk).where(
                KnowledgeChunk.file_id == row.id, KnowledgeChunk.user_id == self.user_id
            )
        )
        await self.session.execute(
            delete(KnowledgeFile).where(
                KnowledgeFile.id == row.id, KnowledgeFile.user_id == self.user_id
            )
        )

    async def conversation_attachments(
        self, conversation_ids: Sequence[str]
    ) -> list[KnowledgeFile]:
        """Files attached to these conversations (not those of their collections)."""
        if not conversation_ids:
            return []
        rows = await self.session.scalars(
            select(KnowledgeFile).where(
                KnowledgeFile.user_id == self.user_id,
                KnowledgeFile.conversation_id.in_(list(conversation_ids)),
            )
        )
        return list(rows.all())

    async def chunk(self, file_id: str, chunk_id: int) -> KnowledgeChunk | None:
        return await self.session.scalar(
            select(KnowledgeChunk)
            .join(KnowledgeFile, KnowledgeFile.id == KnowledgeChunk.file_id)
            .where(
                KnowledgeChunk.id == chunk_id,
                KnowledgeChunk.file_id == file_id,
                KnowledgeChunk.user_id == self.user_id,
                KnowledgeFile.user_id == self.user_id,
            )
        )

    async def chunks(self, file_id: str) -> list[KnowledgeChunk]:
        rows = await self.session.scalars(
            select(KnowledgeChunk)
            .where(KnowledgeChunk.file_id == file_id, KnowledgeChunk.user_id == self.user_id)
            .order_by(KnowledgeChunk.ordinal)
        )
        return list(rows.all())

    async def bind_to_message(self, conversation_id: str, message_id: str) -> None:
        """Attachments not yet tied to a question belong to this one."""
        await self.session.execute(
            update(KnowledgeFile)
            .where(
                KnowledgeFile.user_id == self.user_id,
                KnowledgeFile.conversation_id == conversation_id,
                KnowledgeFile.message_id.is_(None),
            )
            .values(message_id=message_id)
        )

    async def scope_files(
        self, conversation_id: str, also: Also | None = None
    ) -> list[KnowledgeFile]:
        """Files a conversation sees: attached to it, linked to it from the library,
        or in a collection attached to it; ``also``: more (collection ids, file ids)
        it sees (an assistant's knowledge, ``parley.seam.CONVERSATION_KNOWLEDGE``),
        the user's own only."""
        rows = await self.session.scalars(
            select(KnowledgeFile)
            .where(self._in_scope(conversation_id, also))
            .order_by(KnowledgeFile.created_at, KnowledgeFile.id)
        )
        return list(rows.all())

    async def count_images(self, conversation_id: str, also: Also | None = None) -> int:
        """How many images ``scope_files`` would return (one COUNT: Auto's vision rule)."""
        found = await self.session.scalar(
            select(func.count())
            .select_from(KnowledgeFile)
            .where(self._in_scope(conversation_id, also), KnowledgeFile.kind == "image")
        )
        return int(found or 0)

    def _in_scope(self, conversation_id: str, also: Also | None) -> Any:
        """The files a conversation sees (``scope_files``), as a WHERE clause."""
        more_collections, more_files = also or ((), ())
        linked = select(KnowledgeConversationCollection.collection_id).where(
            KnowledgeConversationCollection.conversation_id == conversation_id,
            KnowledgeConversationCollection.user_id == self.user_id,
        )
        picked = select(KnowledgeConversationFile.file_id).where(
            KnowledgeConversationFile.conversation_id == conversation_id,
            KnowledgeConversationFile.user_id == self.user_id,
        )
        return and_(
            KnowledgeFile.user_id == self.user_id,
            or_(
                KnowledgeFile.conversation_id == conversation_id,
                KnowledgeFile.collection_id.in_(linked),
                KnowledgeFile.id.in_(picked),
                *(
                    [KnowledgeFile.collection_id.in_(list(more_collections))]
                    if more_collections
                    else []
                ),
                *([KnowledgeFile.id.in_(list(more_files))] if more_files else []),
            ),
        )

    # ------------------------------------------------------------ collections

    async def collection(self, collection_id: str) -> KnowledgeCollection | None:
        return await self.session.scalar(
            select(KnowledgeCollection).where(
                KnowledgeCollection.id == collection_id,
                KnowledgeCollection.user_id == self.user_id,
            )
        )

    async def collections(self) -> list[tuple[KnowledgeCollection, int]]:
        counts = (
            select(KnowledgeFile.collection_id, func.count().label("n"))
            .where(KnowledgeFile.user_id == self.user_id)
            .group_by(KnowledgeFile.collection_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(KnowledgeCollection, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.collection_id == KnowledgeCollection.id)
            .where(KnowledgeCollection.user_id == self.user_id)
            .order_by(KnowledgeCollection.name, KnowledgeCollection.id)
        )
        return [(c, int(n)) for c, n in rows.all()]

    async def add_collection(self, name: str, description: str = "") -> KnowledgeCollection:
        row = KnowledgeCollection(user_id=self.user_id, name=name, description=description)
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_collection(self, row: KnowledgeCollection, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()

    async def collection_blobs(self, collection_id: str) -> list[str]:
        rows = await self.session.scalars(
            select(KnowledgeFile.sha256).where(
                KnowledgeFile.collection_id == collection_id,
                KnowledgeFile.user_id == self.user_id,
            )
        )
        return list(rows.all())

    async def delete_collection(self, row: KnowledgeCollection) -> None:
        files = await self.files(collection_id=row.id, limit=1_000_000)
        for file in files:
            await self.delete_file(file)
        await self.session.execute(
            delete(KnowledgeCollection).where(
                KnowledgeCollection.id == row.id, KnowledgeCollection.user_id == self.user_id
            )
        )

    async def attached_collections(self, conversation_id: str) -> list[KnowledgeCollection]:
        rows = await self.session.scalars(
            select(KnowledgeCollection)
            .join(
                KnowledgeConversationCollection,
                KnowledgeConversationCollection.collection_id == KnowledgeCollection.id,
            )
            .where(
                KnowledgeConversationCollection.conversation_id == conversation_id,
                KnowledgeConversationCollection.user_id == self.user_id,
                KnowledgeCollection.user_id == self.user_id,
            )
            .order_by(KnowledgeCollection.name)
        )
        return list(rows.all())

    async def attach(self, conversation_id: str, collection_id: str) -> None:
        exists = await self.session.scalar(
            select(func.count())
            .select_from(KnowledgeConversationCollection)
            .where(
                KnowledgeConversationCollection.conversation_id == conversation_id,
                KnowledgeConversationCollection.collection_id == collection_id,
            )
        )
        if not exists:
            self.session.add(
                KnowledgeConversationCollection(
                    conversation_id=conversation_id,
                    collection_id=collection_id,
                    user_id=self.user_id,
                )
            )

    async def detach_conversations(self, conversation_ids: Sequence[str]) -> None:
        """Remove every collection and library-file link of these conversations (the
        collections and files stay)."""
        if not conversation_ids:
            return
        await self.session.execute(
            delete(KnowledgeConversationFile).where(
                KnowledgeConversationFile.conversation_id.in_(list(conversation_ids)),
                KnowledgeConversationFile.user_id == self.user_id,
            )
        )
        await self.session.execute(
            delete(KnowledgeConversationCollection).where(
                KnowledgeConversationCollection.conversation_id.in_(list(conversation_ids)),
                KnowledgeConversationCollection.user_id == self.user_id,
            )
        )

    async def detach(self, conversation_id: str, collection_id: str) -> None:
        await self.session.execute(
            delete(KnowledgeConversationCollection).where(
                KnowledgeConversationCollection.conversation_id == conversation_id,
                KnowledgeConversationCollection.collection_id == collection_id,
                KnowledgeConversationCollection.user_id == self.user_id,
            )
        )

    # ------------------------------------------------------------ library files in a chat

    async def linked_files(self, conversation_id: str) -> list[KnowledgeFile]:
        """Files picked from the library for this conversation (by reference)."""
        rows = await self.session.scalars(
            select(KnowledgeFile)
            .join(KnowledgeConversationFile, KnowledgeConversationFile.file_id == KnowledgeFile.id)
            .where(
                KnowledgeConversationFile.conversation_id == conversation_id,
                KnowledgeConversationFile.user_id == self.user_id,
                KnowledgeFile.user_id == self.user_id,
            )
            .order_by(KnowledgeFile.filename, KnowledgeFile.id)
        )
        return list(rows.all())

    async def link_file(self, conversation_id: str, file_id: str) -> None:
        exists = await self.session.scalar(
            select(func.count())
            .select_from(KnowledgeConversationFile)
            .where(
                KnowledgeConversationFile.conversation_id == conversation_id,
                KnowledgeConversationFile.file_id == file_id,
            )
        )
        if not exists:
            self.session.add(
                KnowledgeConversationFile(
                    conversation_id=conversation_id, file_id=file_id, user_id=self.user_id
                )
            )

    async def unlink_file(self, conversation_id: str, file_id: str) -> None:
        await self.session.execute(
            delete(KnowledgeConversationFile).where(
                KnowledgeConversationFile.conversation_id == conversation_id,
                KnowledgeConversationFile.file_id == file_id,
                KnowledgeConversationFile.user_id == self.user_id,
            )
        )


def touch(row: KnowledgeFile, when: datetime | None = None) -> None:
    row.updated_at = when or utcnow()
