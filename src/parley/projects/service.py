"""The rules of projects: who sees one, what a chat in it gets, what moves in and out.

A user's role on a project is ``owner`` or the strongest membership that reaches
them now (a ``user`` row naming them, a ``group`` row for a group
``USER_GROUPS`` says they are in at this moment; with ``USER_GROUPS_QUERY`` the
check is one statement). ``viewer`` reads the project's
chats and files; ``editor`` also starts and moves chats in, adds files and edits
the settings; the owner also manages members and deletes it. Nothing is cached:
removing a member (or them from the group) ends their access on the next request
and their chats in it lose the project's context on the next turn.

A chat belongs to a project by ``conversations.project_id``; it stays its
author's (only they write in it). A file belongs by ``knowledge_files.project_id``
(the knowledge tables are named here, not imported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import Forbidden, Invalid, NotFound
from parley.projects.tables import MEMBER_ROLES, MEMORY_MODES, Project, ProjectMember
from parley.providers.registry import ModelRegistry
from parley.seam import GroupLookup, GroupQuery
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import Conversation, Message, User, utcnow
from parley.tools import ToolRegistry
from parley.turns.options import TurnOptions, TurnProfile

__all__ = ["RANK", "Listed", "ProjectService", "ProjectSettings"]

Role = Literal["viewer", "editor", "owner"]
RANK: dict[str, int] = {"viewer": 1, "editor": 2, "owner": 3}
_ROLE_OF_RANK: dict[int, Role] = {rank: role for role, rank in RANK.items()}  # type: ignore[misc]
_NEEDS = {
    "editor": "You can read this project but not change it: ask its owner for editor access.",
    "owner": "Only the project's owner can do this.",
}
# The knowledge feature's and the assistants feature's tables, named only.
_FILES = sa.table(
    "knowledge_files",
    sa.column("id"),
    sa.column("user_id"),
    sa.column("project_id"),
    sa.column("filename"),
    sa.column("status"),
    sa.column("size_bytes"),
    sa.column("created_at"),
)
_GROUPS = sa.table("groups", sa.column("id"), sa.column("name"))


@dataclass(slots=True)
class ProjectSettings:
    """What an owner or editor sets (``None``: unchanged, in an update)."""

    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    instructions_mode: str | None = None
    model: str | None = None
    assistant_id: str | None = None
    tools: list[str] | None = None
    memory: str | None = None


@dataclass(slots=True)
class Listed:
    project: Project
    role: Role
    chats: int


class ProjectService:
    def __init__(
        self,
        db: Database,
        groups: Callable[[], GroupLookup | None],
        tools: ToolRegistry,
        models: ModelRegistry,
        groups_query: Callable[[], GroupQuery | None] = lambda: None,
    ) -> None:
        self.db = db
        self._groups = groups
        self._groups_query = groups_query
        self.tools = tools
        self.models = models

    # ------------------------------------------------------------ access

    async def groups_of(self, user_id: str) -> Sequence[str]:
        lookup = self._groups()
        return await lookup(user_id) if lookup is not None else ()

    async def _principals(self, user_id: str) -> Sequence[str] | sa.Select[Any]:
        """The user's groups for a statement: the groups feature's subquery when it
        offers one (``USER_GROUPS_QUERY``: no round trip of its own), else the ids."""
        query = self._groups_query()
        if query is not None:
            selected: sa.Select[Any] = query(user_id)
            return selected
        return await self.groups_of(user_id)

    @staticmethod
    def _reaching(user_id: str, groups: Sequence[str] | sa.Select[Any]) -> sa.ColumnElement[bool]:
        in_group = isinstance(groups, sa.Select) or bool(groups)
        return or_(
            and_(ProjectMember.principal_type == "user", ProjectMember.principal_id == user_id),
            and_(ProjectMember.principal_type == "group", ProjectMember.principal_id.in_(groups))
            if in_group
            else sa.false(),
        )

    async def _ranked(self, user_id: str) -> sa.Select[Any]:
        """``SELECT project, rank``: the rank of the user's strongest membership of
        each project (None: none reaches them), so finding a project and deciding
        whether the user may see it is one statement."""
        groups = await self._principals(user_id)
        ranked = sa.case(*((ProjectMember.role == r, n) for r, n in RANK.items()), else_=0)
        rank = (
            select(func.max(ranked))
            .where(ProjectMember.project_id == Project.id, self._reaching(user_id, groups))
            .scalar_subquery()
        )
        return select(Project, rank)

    @staticmethod
    def _role_of(user_id: str, row: Project, rank: int | None) -> Role | None:
        if row.user_id == user_id:
            return "owner"
        return _ROLE_OF_RANK.get(rank or 0)

    async def role(self, session: AsyncSession, user_id: str, row: Project) -> Role | None:
        if row.user_id == user_id:
            return "owner"
        found = (
            await session.execute((await self._ranked(user_id)).where(Project.id == row.id))
        ).first()
        return None if found is None else self._role_of(user_id, row, found[1])

    async def role_of(self, user_id: str, project_id: str) -> Role | None:
        """The user's role in the project now, or None (``PROJECT_ACCESS``)."""
        ranked = await self._ranked(user_id)
        async with self.db.session() as session:
            found = (await session.execute(ranked.where(Project.id == project_id))).first()
        return None if found is None else self._role_of(user_id, found[0], found[1])

    async def _find(
        self, session: AsyncSession, user_id: str, project_id: str, need: Role
    ) -> tuple[Project, Role]:
        row = await session.get(Project, project_id)
        role = None if row is None else await self.role(session, user_id, row)
        if row is None or role is None:
            raise NotFound("project")
        if RANK[role] < RANK[need]:
            raise Forbidden(_NEEDS[need], f"project_{need}_only")
        return row, role

    # ------------------------------------------------------------ projects

    async def mine(self, user_id: str) -> list[Listed]:
        """Projects the user owns or is a member of, newest change first."""
        groups = await self.groups_of(user_id)
        async with self.db.session() as session:
            member = select(ProjectMember.project_id).where(self._reaching(user_id, groups))
            rows = list(
                await session.scalars(
                    select(Project)
                    .where((Project.user_id == user_id) | Project.id.in_(member))
                    .order_by(Project.updated_at.desc(), Project.id)
                )
            )
            counts = dict(
                (
                    await session.execute(
                        select(Conversation.project_id, func.count())
                        .where(
                            Conversation.project_id.in_([r.id for r in rows]),
                            Conversation.temporary.is_(False),
                        )
                        .group_by(Conversation.project_id)
                    )
                ).all()
            )
            out: list[Listed] = []
            for row in rows:
                role = await self.role(session, user_id, row)
                if role is not None:
                    out.append(Listed(row, role, int(counts.get(row.id, 0))))
            return out

    async def get(self, user_id: str, project_id: str) -> tuple[Project, Role]:
        async with self.db.session() as session:
            return await self._find(session, user_id, project_id, "viewer")

    async def _check(self, session: AsyncSession, user_id: str, s: ProjectSettings) -> None:
        if s.name is not None and not s.name.strip():
            raise Invalid("A project needs a name.", "invalid_project_name")
        if s.instructions_mode is not None and s.instructions_mode not in ("add", "replace"):
            raise Invalid("Instructions either add to yours or replace them.", "invalid_mode")
        if s.memory is not None and s.memory not in MEMORY_MODES:
            raise Invalid(
                "Memory is 'default' (your memories) or 'project' (project-only).",
                "invalid_memory",
            )
        if s.tools:
            known = set(self.tools.names())
            if unknown := [t for t in s.tools if t not in known]:
                raise Invalid(f"Unknown tool(s): {', '.join(unknown)}.", "unknown_tool")
        if s.model:
            offered = [m for m in await self.models.list_models() if m.offered_to(user_id)]
            if s.model not in {m.ref for m in offered}:
                raise Invalid(f"The model {s.model!r} is not available to you.", "unknown_model")
        if s.assistant_id:
            # one of the user's own: a project never names (or probes for) an
            # assistant its editor could not share
            mine = await session.scalar(
                select(sa.literal(1))
                .select_from(_ASSISTANTS)
                .where(_ASSISTANTS.c.id == s.assistant_id, _ASSISTANTS.c.user_id == user_id)
            )
            if mine is None:
                raise Invalid(
                    "A project's default assistant is one of your own assistants.",
                    "unknown_assistant",
                )

    @staticmethod
    def _apply(row: Project, s: ProjectSettings) -> None:
        for name in (
            "name",
            "description",
            "instructions",
            "instructions_mode",
            "memory",
        ):
            value = getattr(s, name)
            if value is not None:
                setattr(row, name, value.strip() if name in ("name", "description") else value)
        if s.model is not None:
            row.model = s.model or None
        if s.assistant_id is not None:
            row.assistant_id = s.assistant_id or None
        if s.tools is not None:
            row.tools = list(dict.fromkeys(s.tools))
        row.updated_at = utcnow()

    async def create(self, user_id: str, s: ProjectSettings) -> Project:
        async with self.db.session() as session:
            await self._check(session, user_id, s)
            row = Project(user_id=user_id, name=(s.name or "").strip(), tools=[])
            self._apply(row, s)
            session.add(row)
            await session.commit()
            return row

    async def update(self, user_id: str, project_id: str, s: ProjectSettings) -> Project:
        async with self.db.session() as session:
            row, _ = await self._find(session, user_id, project_id, "editor")
            await self._check(session, user_id, s)
            self._apply(row, s)
            await session.commit()
            return row

    async def delete(self, user_id: str, project_id: str) -> None:
        """The project goes; its chats and files stay their authors', out of it."""
        async with self.db.session() as session:
            row, _ = await self._find(session, user_id, project_id, "owner")
            await session.execute(
                update(Conversation)
                .where(Conversation.project_id == project_id)
                .values(project_id=None)
            )
            await session.execute(
                _FILES.update().where(_FILES.c.project_id == project_id).values(project_id=None)
            )
            await session.delete(row)
            await session.commit()

    # ------------------------------------------------------------ members

    async def members(self, user_id: str, project_id: str) -> list[tuple[ProjectMember, str]]:
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "viewer")
            rows = list(
                await session.scalars(
                    select(ProjectMember)
                    .where(ProjectMember.project_id == project_id)
                    .order_by(ProjectMember.created_at, ProjectMember.id)
                )
            )
            emails = dict(
                (
                    await session.execute(
                        select(User.id, User.email).where(
                            User.id.in_([m.principal_id for m in rows])
                        )
                    )
                ).all()
            )
            names = dict(
                (
                    await session.execute(
                        select(_GROUPS.c.id, _GROUPS.c.name).where(
                            _GROUPS.c.id.in_([m.principal_id for m in rows])
                        )
                    )
                ).all()
            )
            return [
                (
                    m,
                    str(
                        emails.get(m.principal_id, "(deleted user)")
                        if m.principal_type == "user"
                        else names.get(m.principal_id, "(deleted group)")
                    ),
                )
                for m in rows
            ]

    async def add_member(
        self,
        user_id: str,
        project_id: str,
        role: str,
        *,
        email: str | None = None,
        group_id: str | None = None,
    ) -> ProjectMember:
        if role not in MEMBER_ROLES:
            raise Invalid("A member is a viewer or an editor.", "invalid_role")
        async with self.db.session() as session:
            row, _ = await self._find(session, user_id, project_id, "owner")
            if email is not None:
                target = await session.scalar(
                    select(User).where(func.lower(User.email) == email.strip().lower())
                )
                if target is None or target.status != "active":
                    raise NotFound("user", f"No active user with the email {email!r}.")
                if target.id == row.user_id:
                    raise Invalid("The owner is in the project already.", "member_is_owner")
                kind, principal = "user", target.id
            elif group_id is not None:
                found = await session.scalar(select(_GROUPS.c.id).where(_GROUPS.c.id == group_id))
                if found is None:
                    raise NotFound("group")
                kind, principal = "group", group_id
            else:
                raise Invalid("Add a user (email) or a group (group_id).", "invalid_member")
            member = await session.scalar(
                select(ProjectMember).where(
                    ProjectMember.project_id == project_id,
                    ProjectMember.principal_type == kind,
                    ProjectMember.principal_id == principal,
                )
            )
            if member is None:
                member = ProjectMember(
                    project_id=project_id, principal_type=kind, principal_id=principal, role=role
                )
                session.add(member)
            else:
                member.role = role
            await session.commit()
            return member

    async def remove_member(self, user_id: str, project_id: str, member_id: str) -> None:
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "owner")
            member = await session.get(ProjectMember, member_id)
            if member is None or member.project_id != project_id:
                raise NotFound("member")
            await session.delete(member)
            await session.commit()

    # ------------------------------------------------------------ chats

    async def chats(self, user_id: str, project_id: str) -> list[tuple[Conversation, str]]:
        """Every member's chats in the project (newest first) with their author."""
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "viewer")
            rows = await session.execute(
                select(Conversation, User.email)
                .join(User, User.id == Conversation.user_id)
                .where(
                    Conversation.project_id == project_id,
                    Conversation.temporary.is_(False),
                )
                .order_by(Conversation.updated_at.desc(), Conversation.id)
            )
            return [(c, e) for c, e in rows.all()]

    async def chat(
        self, user_id: str, project_id: str, conversation_id: str
    ) -> tuple[Conversation, list[Message]]:
        """A chat of the project, read-only for members: its messages in order."""
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "viewer")
            conv = await session.scalar(
                select(Conversation).where(
                    Conversation.id == conversation_id,
                    Conversation.project_id == project_id,
                    Conversation.temporary.is_(False),
                )
            )
            if conv is None:
                raise NotFound("conversation")
            messages = await session.scalars(
                select(Message)
                .where(Message.conversation_id == conv.id)
                .order_by(Message.created_at, Message.id)
            )
            return conv, list(messages.all())

    async def start_chat(self, user_id: str, project_id: str, title: str | None) -> Conversation:
        """A new chat in the project with its defaults (model or assistant, tools)."""
        async with self.db.session() as session:
            row, _ = await self._find(session, user_id, project_id, "editor")
            conv = await ConversationStore(session, user_id).create(
                title=title, model=row.model, project_id=project_id
            )
            conv.tools = list(row.tools)
            conv.assistant_id = row.assistant_id
            await session.commit()
            return conv

    async def move_in(self, user_id: str, project_id: str, conversation_id: str) -> None:
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "editor")
            conv = await ConversationStore(session, user_id).get(conversation_id)
            if conv is None:
                raise NotFound("conversation")
            conv.project_id = project_id
            await session.commit()

    async def move_out(self, user_id: str, project_id: str, conversation_id: str) -> None:
        """Out of the project (the chat's author only): its context ends there."""
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "viewer")
            conv = await ConversationStore(session, user_id).get(conversation_id)
            if conv is None or conv.project_id != project_id:
                raise NotFound("conversation")
            conv.project_id = None
            await session.commit()

    # ------------------------------------------------------------ files

    async def files(self, user_id: str, project_id: str) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "viewer")
            rows = await session.execute(
                select(
                    _FILES.c.id,
                    _FILES.c.filename,
                    _FILES.c.status,
                    _FILES.c.size_bytes,
                    _FILES.c.user_id,
                    User.email,
                )
                .join(User, User.id == _FILES.c.user_id)
                .where(_FILES.c.project_id == project_id)
                .order_by(_FILES.c.created_at, _FILES.c.id)
            )
            return [dict(r._mapping) for r in rows.all()]

    async def add_file(self, user_id: str, project_id: str, file_id: str) -> None:
        """One of the user's own files into the project."""
        async with self.db.session() as session:
            await self._find(session, user_id, project_id, "editor")
            done = await session.execute(
                _FILES.update()
                .where(_FILES.c.id == file_id, _FILES.c.user_id == user_id)
                .values(project_id=project_id)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                raise NotFound("file")
            await session.commit()

    async def remove_file(self, user_id: str, project_id: str, file_id: str) -> None:
        """Out of the project: by the file's owner, or by the project's owner."""
        async with self.db.session() as session:
            _, role = await self._find(session, user_id, project_id, "viewer")
            found = await session.execute(
                select(_FILES.c.user_id).where(
                    _FILES.c.id == file_id, _FILES.c.project_id == project_id
                )
            )
            owner = found.scalar()
            if owner is None or (owner != user_id and role != "owner"):
                raise NotFound("file")
            await session.execute(
                _FILES.update().where(_FILES.c.id == file_id).values(project_id=None)
            )
            await session.commit()

    # ------------------------------------------------------------ turns

    async def profile(
        self, session: AsyncSession, user_id: str, conv: Conversation
    ) -> TurnProfile | None:
        """What a chat in the project gets (``PROJECT_PROFILES``); None once the
        user is no longer a member."""
        ranked = await self._ranked(user_id)
        found = (await session.execute(ranked.where(Project.id == (conv.project_id or "")))).first()
        if found is None or self._role_of(user_id, found[0], found[1]) is None:
            return None
        row = found[0]
        return TurnProfile(
            options=TurnOptions(
                instructions=row.instructions,
                tools=tuple(row.tools) if row.tools and not conv.tools else None,
            ),
            model=row.model,
            custom_instructions="replace" if row.instructions_mode == "replace" else "add",
            project_memory=row.memory,
        )

    async def knowledge(
        self, user_id: str, conversation_id: str
    ) -> tuple[Sequence[str], Sequence[str]]:
        """The project's files a chat in it may search (``PROJECT_KNOWLEDGE``)."""
        ranked = await self._ranked(user_id)
        async with self.db.session() as session:
            # the user's chat, its project and whether they may still see it: one statement
            found = (
                await session.execute(
                    ranked.join(Conversation, Conversation.project_id == Project.id).where(
                        Conversation.id == conversation_id, Conversation.user_id == user_id
                    )
                )
            ).first()
            if found is None or self._role_of(user_id, found[0], found[1]) is None:
                return (), ()
            ids = await session.scalars(
                select(_FILES.c.id).where(_FILES.c.project_id == found[0].id)
            )
            return (), [str(i) for i in ids.all()]


_ASSISTANTS = sa.table("assistants", sa.column("id"), sa.column("user_id"))
