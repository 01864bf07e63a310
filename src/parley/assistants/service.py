"""The rules of assistants: who may see one, what a save makes, what a turn gets.

Every read goes through ``_find`` (``access.Access``: the owner, or a share that
reaches the user now, with at least the role the action needs). A save never
changes a version: it adds one, which becomes the *draft* (the newest);
``publish`` points chats at a version; ``restore`` copies an old version's
definition into a new one. The turn service asks ``profile`` for a conversation
that has an ``assistant_id`` (``parley.turns.options.TURN_PROFILES``), and the
knowledge feature asks ``knowledge`` (the owner's chats) and ``lent`` (a shared
assistant in someone else's chat: retrieval only) for the files such a chat also
sees, so neither imports this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from parley.assistants.access import RANK, Access, Role, role_of_rank
from parley.assistants.avatars import checked_image
from parley.assistants.portable import AssistantDocument, knowledge_names, portable
from parley.assistants.spec import SLUG, AssistantConfig, slugify
from parley.assistants.tables import (
    Assistant,
    AssistantAnswer,
    AssistantAvatar,
    AssistantChat,
    AssistantShare,
    AssistantVersion,
)
from parley.errors import Conflict, Invalid, NotFound
from parley.providers.registry import ModelRegistry
from parley.routing.rules import is_auto
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import Conversation, utcnow
from parley.tools import ToolRegistry
from parley.turns.options import TurnOptions, TurnProfile

__all__ = ["PREFIX", "AssistantService", "Loaded"]

PREFIX = "assistant/"  # an assistant's name as a /v1 model

# The knowledge feature's tables, named (not imported: features never import each
# other) only to check that the ids an owner picks are theirs.
_FILES = sa.table("knowledge_files", sa.column("id"), sa.column("user_id"))
_COLLECTIONS = sa.table("knowledge_collections", sa.column("id"), sa.column("user_id"))


@dataclass(slots=True)
class Loaded:
    """An assistant with its draft (newest) and published versions."""

    assistant: Assistant
    draft: AssistantVersion
    published: AssistantVersion | None
    image: str | None = None  # the uploaded avatar's sha256 (None: the emoji)
    role: Role = "owner"  # the reader's role on it

    @property
    def config(self) -> AssistantConfig:
        return AssistantConfig.model_validate(self.draft.config)


class AssistantService:
    def __init__(
        self, db: Database, tools: ToolRegistry, models: ModelRegistry, access: Access
    ) -> None:
        self.db = db
        self.tools = tools
        self.models = models
        self.access = access

    # ------------------------------------------------------------ reading

    async def _find(
        self, session: AsyncSession, user_id: str, assistant_id: str, need: Role
    ) -> Assistant:
        row, _ = await self.access.find(session, user_id, assistant_id, need)
        return row

    @staticmethod
    async def _version(session: AsyncSession, version_id: str | None) -> AssistantVersion | None:
        if version_id is None:
            return None
        return await session.get(AssistantVersion, version_id)

    async def _load(self, session: AsyncSession, row: Assistant) -> Loaded:
        draft = await self._version(session, row.draft_version_id)
        assert draft is not None, "an assistant always has a version"
        published = (
            draft
            if row.published_version_id == draft.id
            else await self._version(session, row.published_version_id)
        )
        image = await session.scalar(
            select(AssistantAvatar.sha256).where(AssistantAvatar.assistant_id == row.id)
        )
        return Loaded(row, draft, published, image)

    async def mine(self, user_id: str) -> list[Loaded]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Assistant)
                .where(Assistant.user_id == user_id)
                .order_by(Assistant.updated_at.desc(), Assistant.id)
            )
            return [await self._load(session, row) for row in rows.all()]

    async def get(self, user_id: str, assistant_id: str, need: Role = "view") -> Loaded:
        """``need``: ``chat`` for what a chat shows (name, avatar, starters)."""
        async with self.db.session() as session:
            row, role = await self.access.find(session, user_id, assistant_id, need)
            loaded = await self._load(session, row)
            loaded.role = role
            return loaded

    async def versions(
        self, user_id: str, assistant_id: str
    ) -> tuple[Loaded, list[AssistantVersion]]:
        async with self.db.session() as session:
            loaded = await self._load(
                session, await self._find(session, user_id, assistant_id, "view")
            )
            rows = await session.scalars(
                select(AssistantVersion)
                .where(AssistantVersion.assistant_id == assistant_id)
                .order_by(AssistantVersion.number.desc())
            )
            return loaded, list(rows.all())

    async def version(
        self, user_id: str, assistant_id: str, number: int
    ) -> tuple[Loaded, AssistantVersion]:
        async with self.db.session() as session:
            loaded = await self._load(
                session, await self._find(session, user_id, assistant_id, "view")
            )
            return loaded, await self._numbered(session, assistant_id, number)

    @staticmethod
    async def _numbered(session: AsyncSession, assistant_id: str, number: int) -> AssistantVersion:
        row = await session.scalar(
            select(AssistantVersion).where(
                AssistantVersion.assistant_id == assistant_id, AssistantVersion.number == number
            )
        )
        if row is None:
            raise NotFound("version", f"This assistant has no version {number}.")
        return row

    # ------------------------------------------------------------ writing

    @staticmethod
    async def _current_ids(session: AsyncSession, row: Assistant) -> set[str]:
        """The file and collection ids the draft names (checked when they were saved):
        an editor may keep the owner's knowledge, and add only their own."""
        draft = await session.get(AssistantVersion, row.draft_version_id)
        if draft is None:
            return set()
        config = AssistantConfig.model_validate(draft.config)
        return set(config.file_ids) | set(config.collection_ids)

    async def _check(
        self,
        session: AsyncSession,
        user_id: str,
        config: AssistantConfig,
        keep: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Refuse what a version may not name: tools Parley does not have, another
        user's (or a missing) file or collection (``keep``: ids already in the
        assistant), a model the user cannot use."""
        known = set(self.tools.names())
        unknown = [name for name in config.tools if name not in known]
        if unknown:
            raise Invalid(
                f"Unknown tool(s): {', '.join(unknown)}. Choose from: {', '.join(sorted(known))}.",
                "unknown_tool",
            )
        for table, ids, what in (
            (_FILES, config.file_ids, "file"),
            (_COLLECTIONS, config.collection_ids, "collection"),
        ):
            ids = [i for i in ids if i not in keep]
            if not ids:
                continue
            found = set(
                await session.scalars(
                    select(table.c.id).where(table.c.id.in_(ids), table.c.user_id == user_id)
                )
            )
            if missing := [i for i in ids if i not in found]:
                raise Invalid(
                    f"No such {what} of yours: {', '.join(missing)}. Upload it in Files first.",
                    f"unknown_{what}",
                )
        if config.model and not is_auto(config.model):  # Auto: routed per question
            offered = [m for m in await self.models.list_models() if m.offered_to(user_id)]
            if config.model not in {m.ref for m in offered}:
                raise Invalid(
                    f"The model {config.model!r} is not available to you; pick one from the "
                    "model list or leave it empty for the default.",
                    "unknown_model",
                )

    async def create(self, user_id: str, config: AssistantConfig, slug: str | None) -> Loaded:
        wanted = slug.strip().lower() if slug else None
        if wanted is not None and not SLUG.match(wanted):
            raise Invalid(
                "A slug is 1-64 lowercase letters, digits and dashes (not at either end).",
                "invalid_slug",
            )
        async with self.db.session() as session:
            await self._check(session, user_id, config)
            final = wanted or await self._free_slug(session, slugify(config.name))
            if wanted and await session.scalar(
                select(Assistant.id).where(Assistant.slug == wanted)
            ):
                raise Conflict(f"The slug {wanted!r} is taken; choose another.", "slug_taken")
            row = Assistant(user_id=user_id, slug=final)
            _label(row, config)
            session.add(row)
            await session.flush()
            first = AssistantVersion(
                assistant_id=row.id, number=1, config=config.model_dump(), created_by=user_id
            )
            session.add(first)
            await session.flush()
            # The first version is published: a new assistant works at once.
            row.draft_version_id = row.published_version_id = first.id
            try:
                await session.commit()
            except IntegrityError as exc:  # a concurrent create took the slug
                raise Conflict("That slug was just taken; try again.", "slug_taken") from exc
            return Loaded(row, first, first)

    @staticmethod
    async def _free_slug(session: AsyncSession, base: str) -> str:
        taken = set(
            await session.scalars(
                select(Assistant.slug).where(
                    (Assistant.slug == base) | Assistant.slug.like(base + "-%")
                )
            )
        )
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        return slug

    async def _add_version(
        self,
        session: AsyncSession,
        row: Assistant,
        user_id: str,
        config: dict[str, object],
        note: str,
    ) -> AssistantVersion:
        top = await session.scalar(
            select(func.max(AssistantVersion.number)).where(AssistantVersion.assistant_id == row.id)
        )
        version = AssistantVersion(
            assistant_id=row.id,
            number=int(top or 0) + 1,
            config=config,
            note=note,
            created_by=user_id,
        )
        session.add(version)
        try:
            await session.flush()
        except IntegrityError as exc:  # a save in another tab took the number
            raise Conflict(
                "Another save of this assistant happened at the same time; reload and try again.",
                "version_conflict",
            ) from exc
        row.draft_version_id = version.id
        row.updated_at = utcnow()
        return version

    async def save(self, user_id: str, assistant_id: str, config: AssistantConfig) -> Loaded:
        """A new version (the draft); chats keep the published one until ``publish``."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "edit")
            await self._check(session, user_id, config, await self._current_ids(session, row))
            await self._add_version(session, row, user_id, config.model_dump(), "")
            await session.commit()
            return await self._load(session, row)

    async def restore(self, user_id: str, assistant_id: str, number: int) -> Loaded:
        """Version ``number``'s definition as a new version (the draft)."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "edit")
            old = await self._numbered(session, assistant_id, number)
            await self._add_version(
                session, row, user_id, dict(old.config), f"Restored from version {number}"
            )
            await session.commit()
            return await self._load(session, row)

    async def publish(self, user_id: str, assistant_id: str, number: int | None) -> Loaded:
        """Chats use version ``number`` (default: the draft) from their next turn."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "edit")
            if number is None:
                row.published_version_id = row.draft_version_id
            else:
                row.published_version_id = (await self._numbered(session, assistant_id, number)).id
            published = await self._version(session, row.published_version_id)
            assert published is not None
            _label(row, AssistantConfig.model_validate(published.config))
            row.updated_at = utcnow()
            await session.commit()
            return await self._load(session, row)

    async def set_slug(self, user_id: str, assistant_id: str, slug: str) -> Loaded:
        wanted = slug.strip().lower()
        if not SLUG.match(wanted):
            raise Invalid(
                "A slug is 1-64 lowercase letters, digits and dashes (not at either end).",
                "invalid_slug",
            )
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "owner")
            if wanted != row.slug:
                if await session.scalar(select(Assistant.id).where(Assistant.slug == wanted)):
                    raise Conflict(f"The slug {wanted!r} is taken; choose another.", "slug_taken")
                row.slug = wanted
                row.updated_at = utcnow()
                await session.commit()
            return await self._load(session, row)

    async def delete(self, user_id: str, assistant_id: str) -> None:
        """The assistant and its versions; its chats stay (as plain history) but can
        no longer be continued as the assistant."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "owner")
            await session.delete(row)
            await session.commit()

    # ------------------------------------------------------------ copies and files

    async def duplicate(self, user_id: str, assistant_id: str) -> Loaded:
        """A copy of the published definition, owned by ``user_id`` (needs ``view``);
        knowledge that is not the user's own stays behind."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "view")
            loaded = await self._load(session, row)
            config = AssistantConfig.model_validate((loaded.published or loaded.draft).config)
        if row.user_id != user_id:
            config = portable(config)
        copy = config.model_copy(update={"name": f"{config.name} (copy)"[:80]})
        return await self.create(user_id, copy, None)

    async def export(self, user_id: str, assistant_id: str) -> AssistantDocument:
        """The published definition as a portable document (needs ``view``)."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "view")
            loaded = await self._load(session, row)
            config = AssistantConfig.model_validate((loaded.published or loaded.draft).config)
            files, collections = await knowledge_names(session, config)
        return AssistantDocument(
            slug=row.slug, config=portable(config), files=files, collections=collections
        )

    async def import_document(
        self, user_id: str, document: AssistantDocument
    ) -> tuple[Loaded, list[str]]:
        """A new assistant of ``user_id``'s from an exported document; returns it and
        what was dropped (tools this instance lacks, a model it does not offer)."""
        config = portable(document.config)
        dropped: list[str] = []
        known = set(self.tools.names())
        if missing := [t for t in config.tools if t not in known]:
            dropped += [f"tool {t}" for t in missing]
            config = config.model_copy(update={"tools": [t for t in config.tools if t in known]})
        if config.model:
            offered = {m.ref for m in await self.models.list_models() if m.offered_to(user_id)}
            if config.model not in offered:
                dropped.append(f"model {config.model}")
                config = config.model_copy(update={"model": ""})
        slug = document.slug.strip().lower() or None
        if slug is not None:
            async with self.db.session() as session:
                if not SLUG.match(slug) or await session.scalar(
                    select(Assistant.id).where(Assistant.slug == slug)
                ):
                    slug = None  # taken here: a free one from the name
        return await self.create(user_id, config, slug), dropped

    # ------------------------------------------------------------ avatar image

    async def set_image(self, user_id: str, assistant_id: str, data: bytes) -> Loaded:
        """An uploaded avatar (replacing one); not versioned: it is how the assistant
        looks, not how it answers."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "edit")
            media_type, sha = checked_image(data)
            found = await session.get(AssistantAvatar, assistant_id)
            if found is None:
                session.add(
                    AssistantAvatar(
                        assistant_id=assistant_id, media_type=media_type, sha256=sha, data=data
                    )
                )
            else:
                found.media_type, found.sha256, found.data = media_type, sha, data
            row.updated_at = utcnow()
            await session.commit()
            return await self._load(session, row)

    async def clear_image(self, user_id: str, assistant_id: str) -> None:
        async with self.db.session() as session:
            await self._find(session, user_id, assistant_id, "edit")
            found = await session.get(AssistantAvatar, assistant_id)
            if found is not None:
                await session.delete(found)
                await session.commit()

    async def image(self, user_id: str, assistant_id: str) -> AssistantAvatar:
        async with self.db.session() as session:
            await self._find(session, user_id, assistant_id, "chat")
            found = await session.get(AssistantAvatar, assistant_id)
            if found is None:
                raise NotFound("avatar", "This assistant has no avatar image.")
            return found

    # ------------------------------------------------------------ chats

    async def start_chat(self, user_id: str, assistant_id: str, *, draft: bool) -> Conversation:
        """A conversation with the assistant; ``draft``: the builder's preview (a
        temporary chat that answers with the newest version)."""
        async with self.db.session() as session:
            row = await self._find(session, user_id, assistant_id, "edit" if draft else "chat")
            loaded = await self._load(session, row)
            name = loaded.config.name
            store = ConversationStore(session, user_id)
            conv = await store.create(title=f"Preview: {name}" if draft else name, temporary=draft)
            conv.assistant_id = assistant_id
            session.add(
                AssistantChat(
                    conversation_id=conv.id, assistant_id=assistant_id, user_id=user_id, draft=draft
                )
            )
            await session.commit()
            return conv

    async def is_preview(self, conversation_id: str) -> bool:
        async with self.db.session() as session:
            chat = await session.get(AssistantChat, conversation_id)
            return chat is not None and chat.draft

    async def _chat_lookup(self, user_id: str, conversation: Any) -> sa.Select[Any]:
        """One statement for a chat's assistant: the row, whether the chat is a
        preview, the version its turns use (the draft for a preview, else the
        published one) and the rank of the user's strongest share of it.
        ``conversation``: the chat's id, or a column of a joined conversations row."""
        chat = select(AssistantChat.draft).where(AssistantChat.conversation_id == conversation)
        preview_col = chat.scalar_subquery()
        version_id = sa.case(
            (preview_col.is_(True), Assistant.draft_version_id),
            else_=sa.func.coalesce(Assistant.published_version_id, Assistant.draft_version_id),
        )
        groups = await self.access.principals(user_id)
        query = select(
            Assistant,
            preview_col,
            AssistantVersion,
            self.access.rank(user_id, groups, Assistant.id),
        )
        if not isinstance(conversation, str):  # the chat's row comes first: the join needs it
            query = query.select_from(Conversation).join(
                Assistant, Assistant.id == Conversation.assistant_id
            )
        return query.outerjoin(AssistantVersion, AssistantVersion.id == version_id)

    @staticmethod
    def _usable(user_id: str, found: Any) -> tuple[Assistant, AssistantVersion]:
        """The assistant and version from a ``_chat_lookup`` row; NotFound once it is
        gone or not the user's to use (a preview needs edit rights)."""
        row, preview, version, rank = found if found is not None else (None, None, None, None)
        role = None if row is None else "owner" if row.user_id == user_id else role_of_rank(rank)
        if row is None or role is None or (preview and RANK[role] < RANK["edit"]):
            raise NotFound(
                "assistant", "This chat's assistant was deleted or is no longer yours to use."
            )
        assert version is not None
        return row, version

    async def _chat_version(
        self, session: AsyncSession, user_id: str, conv: Conversation
    ) -> tuple[Assistant, AssistantVersion]:
        """The assistant of ``conv`` and the version its turns use."""
        lookup = await self._chat_lookup(user_id, conv.id)
        found = (
            await session.execute(lookup.where(Assistant.id == (conv.assistant_id or "")))
        ).first()
        return self._usable(user_id, found)

    async def profile(self, session: AsyncSession, user_id: str, conv: Conversation) -> TurnProfile:
        """What the turn service adds to an assistant chat's turn (``TURN_PROFILES``)."""
        row, version = await self._chat_version(session, user_id, conv)
        config = AssistantConfig.model_validate(version.config)

        async def answered(session: AsyncSession, message_id: str) -> None:
            session.add(
                AssistantAnswer(
                    message_id=message_id,
                    conversation_id=conv.id,
                    assistant_id=row.id,
                    version_id=version.id,
                    version_number=version.number,
                )
            )

        return TurnProfile(
            options=TurnOptions(
                instructions=config.instructions,
                # the assistant's tools, unless the user picked others in this chat
                tools=tuple(config.tools) if config.tools and not conv.tools else None,
                temperature=config.temperature,
            ),
            model=config.model or None,
            memory=config.memory,
            answered=answered,
        )

    async def _chat_knowledge(
        self, user_id: str, conversation_id: str, *, owner: bool
    ) -> AssistantConfig | None:
        """The config whose knowledge the chat sees, when the chatting user is
        (``owner``) or is not the assistant's owner; None otherwise. One statement:
        the user's chat, its assistant, the version and the user's share of it."""
        lookup = await self._chat_lookup(user_id, Conversation.id)
        async with self.db.session() as session:
            found = (
                await session.execute(
                    lookup.where(
                        Conversation.id == conversation_id, Conversation.user_id == user_id
                    )
                )
            ).first()
        if found is None or (found[0].user_id == user_id) != owner:
            return None
        try:
            _, version = self._usable(user_id, found)
        except NotFound:
            return None
        return AssistantConfig.model_validate(version.config)

    async def knowledge(
        self, user_id: str, conversation_id: str
    ) -> tuple[Sequence[str], Sequence[str]]:
        """(collection ids, file ids) the owner's chat with their assistant sees, as
        their own files (``CONVERSATION_KNOWLEDGE``: retrieval, ``/mnt/data``)."""
        config = await self._chat_knowledge(user_id, conversation_id, owner=True)
        return ((), ()) if config is None else (config.collection_ids, config.file_ids)

    async def lent(self, user_id: str, conversation_id: str) -> tuple[Sequence[str], Sequence[str]]:
        """(collection ids, file ids) a shared assistant brings to another user's chat
        (``SHARED_KNOWLEDGE``): searched for its answers and cited, never listed,
        downloaded or copied into the sandbox for that user."""
        config = await self._chat_knowledge(user_id, conversation_id, owner=False)
        return ((), ()) if config is None else (config.collection_ids, config.file_ids)

    async def answered_by(self, user_id: str, conversation_id: str) -> list[AssistantAnswer]:
        """Which version wrote each answer of one of the user's chats."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(AssistantAnswer)
                .join(Conversation, Conversation.id == AssistantAnswer.conversation_id)
                .where(
                    AssistantAnswer.conversation_id == conversation_id,
                    Conversation.user_id == user_id,
                )
            )
            return list(rows.all())

    # ------------------------------------------------------------ the API

    async def usable(self, user_id: str) -> list[tuple[str, str]]:
        """``(id, slug)`` of the assistants the user may chat with over ``/v1``: their
        own and those shared with them."""
        groups = await self.access.groups_of(user_id)
        async with self.db.session() as session:
            shared = select(AssistantShare.assistant_id).where(
                self.access.reaching(user_id, groups)
            )
            rows = await session.execute(
                select(Assistant.id, Assistant.slug)
                .where((Assistant.user_id == user_id) | Assistant.id.in_(shared))
                .order_by(Assistant.slug)
            )
            return [(i, s) for i, s in rows.all()]

    async def by_slug(self, user_id: str, slug: str) -> Assistant:
        """The assistant named ``slug`` if the user may chat with it (NotFound
        otherwise: another user's assistant is not told apart from a missing one)."""
        async with self.db.session() as session:
            row = await session.scalar(select(Assistant).where(Assistant.slug == slug))
            role = None if row is None else await self.access.role(session, user_id, row, None)
            if row is None or role is None:
                raise NotFound(
                    "assistant", f"Unknown assistant {slug!r}; GET /v1/models lists yours."
                )
            return row


def _label(row: Assistant, published: AssistantConfig) -> None:
    """The published name and description on the row, for the gallery's search."""
    row.name = published.name[:200]
    row.description = published.description[:500]
