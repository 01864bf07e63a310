"""Sharing assistants: shares, links, ownership, the gallery and the admin's policy.

- A share names a user (by email), a group, everyone, or makes a link; each has a
  role (``tables.ROLES``). Only the owner shares, and only when the admin's policy
  lets them (``AssistantPolicy``: everyone, or members of chosen groups; admins
  always may). The same policy says who may create assistants.
- A link's token is shown to the owner only; a signed-in user who opens it gets a
  ``user`` share tied to the link (``link_id``), so deleting the link ends every
  access it gave, at once, by cascade.
- Ownership moves to another user by email; the previous owner keeps edit access
  (a ``user`` share) so a hand-over never locks its maker out of their work.
- The gallery lists what the user may use: theirs, shared with them, shared with
  everyone; admin-featured first, then by name; ``q`` searches the name and
  description (of the published version, kept on the row).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.exc import IntegrityError

from parley.assistants.access import Access, Role
from parley.assistants.tables import ROLES, Assistant, AssistantPolicy, AssistantShare
from parley.errors import Conflict, Forbidden, Invalid, NotFound
from parley.storage.db import Database
from parley.storage.tables import User, utcnow

__all__ = ["GalleryEntry", "Policy", "ShareView", "SharingService"]

# The groups feature's table, named (not imported: features never import each
# other) for the labels of group shares and to check that a group exists.
_GROUPS = sa.table("groups", sa.column("id"), sa.column("name"))


@dataclass(slots=True)
class ShareView:
    share: AssistantShare
    label: str  # the user's email, the group's name, "Everyone", "Anyone with the link"


@dataclass(slots=True)
class GalleryEntry:
    assistant: Assistant
    role: Role
    owner: str  # the owner's name or email


@dataclass(slots=True)
class Policy:
    creators: list[str] | None  # group ids; None: every user
    sharers: list[str] | None


def _role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"A share's role is one of: {', '.join(ROLES)}.", "invalid_role")
    return role


class SharingService:
    def __init__(self, db: Database, access: Access) -> None:
        self.db = db
        self.access = access

    # ------------------------------------------------------------ policy

    async def policy(self) -> Policy:
        async with self.db.session() as session:
            row = await session.get(AssistantPolicy, 1)
            return Policy(row.creators, row.sharers) if row else Policy(None, None)

    async def set_policy(self, creators: list[str] | None, sharers: list[str] | None) -> Policy:
        async with self.db.session() as session:
            row = await session.get(AssistantPolicy, 1)
            if row is None:
                row = AssistantPolicy(id=1)
                session.add(row)
            row.creators, row.sharers, row.updated_at = creators, sharers, utcnow()
            await session.commit()
            return Policy(creators, sharers)

    async def require(self, user: User, what: str) -> None:
        """Raise ``Forbidden`` unless the policy lets ``user`` ``create`` or ``share``."""
        if user.role == "admin":
            return
        policy = await self.policy()
        allowed = policy.creators if what == "create" else policy.sharers
        if allowed is None:
            return
        mine = set(await self.access.groups_of(user.id))
        if not mine.intersection(allowed):
            raise Forbidden(
                "Your administrator has not allowed you to create assistants."
                if what == "create"
                else "Your administrator has not allowed you to share assistants.",
                f"may_not_{what}",
            )

    # ------------------------------------------------------------ shares

    async def shares(self, user_id: str, assistant_id: str) -> list[ShareView]:
        async with self.db.session() as session:
            await self.access.find(session, user_id, assistant_id, "owner")
            rows = list(
                await session.scalars(
                    select(AssistantShare)
                    .where(AssistantShare.assistant_id == assistant_id)
                    .order_by(AssistantShare.created_at, AssistantShare.id)
                )
            )
            users = {
                u.id: u.email
                for u in await session.scalars(
                    select(User).where(
                        User.id.in_([r.principal_id for r in rows if r.principal_type == "user"])
                    )
                )
            }
            groups = {
                gid: name
                for gid, name in (
                    await session.execute(
                        select(_GROUPS.c.id, _GROUPS.c.name).where(
                            _GROUPS.c.id.in_(
                                [r.principal_id for r in rows if r.principal_type == "group"]
                            )
                        )
                    )
                ).all()
            }
        out: list[ShareView] = []
        for r in rows:
            if r.principal_type == "user":
                label = users.get(r.principal_id, "(deleted user)")
            elif r.principal_type == "group":
                label = groups.get(r.principal_id, "(deleted group)")
            elif r.principal_type == "everyone":
                label = "Everyone"
            else:
                label = "Anyone with the link"
            out.append(ShareView(r, label))
        return out

    async def share(
        self,
        user: User,
        assistant_id: str,
        kind: str,
        role: str,
        *,
        email: str | None = None,
        group_id: str | None = None,
    ) -> ShareView:
        await self.require(user, "share")
        async with self.db.session() as session:
            await self.access.find(session, user.id, assistant_id, "owner")
            label = ""
            if kind == "user":
                target = await session.scalar(
                    select(User).where(func.lower(User.email) == (email or "").strip().lower())
                )
                if target is None or target.status != "active":
                    raise NotFound("user", f"No active user with the email {email!r}.")
                if target.id == user.id:
                    raise Invalid("You own this assistant already.", "share_with_self")
                principal, label = target.id, target.email
            elif kind == "group":
                name = await session.scalar(
                    select(_GROUPS.c.name).where(_GROUPS.c.id == (group_id or ""))
                )
                if name is None:
                    raise NotFound("group")
                principal, label = str(group_id), str(name)
            elif kind == "everyone":
                principal, label = "", "Everyone"
            elif kind == "link":
                principal, label = secrets.token_urlsafe(24), "Anyone with the link"
            else:
                raise Invalid("Share with a user, a group, everyone or by link.", "invalid_share")
            found = await session.scalar(
                select(AssistantShare).where(
                    AssistantShare.assistant_id == assistant_id,
                    AssistantShare.principal_type == kind,
                    AssistantShare.principal_id == principal,
                )
            )
            if found is None:
                found = AssistantShare(
                    assistant_id=assistant_id,
                    principal_type=kind,
                    principal_id=principal,
                    role=_role(role),
                )
                session.add(found)
            else:  # sharing again with the same one changes the role
                found.role = _role(role)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict("That share was just made; reload.", "share_exists") from exc
            return ShareView(found, label)

    async def set_role(self, user_id: str, assistant_id: str, share_id: str, role: str) -> None:
        async with self.db.session() as session:
            await self.access.find(session, user_id, assistant_id, "owner")
            row = await session.get(AssistantShare, share_id)
            if row is None or row.assistant_id != assistant_id:
                raise NotFound("share")
            row.role = _role(role)
            await session.commit()

    async def revoke(self, user_id: str, assistant_id: str, share_id: str) -> None:
        """The share ends now (a link's: with every access it gave)."""
        async with self.db.session() as session:
            await self.access.find(session, user_id, assistant_id, "owner")
            row = await session.get(AssistantShare, share_id)
            if row is None or row.assistant_id != assistant_id:
                raise NotFound("share")
            await session.delete(row)
            await session.commit()

    async def claim(self, user_id: str, token: str) -> str:
        """Open a link: the user gets the link's role; returns the assistant's id."""
        async with self.db.session() as session:
            link = await session.scalar(
                select(AssistantShare).where(
                    AssistantShare.principal_type == "link", AssistantShare.principal_id == token
                )
            )
            if link is None:
                raise NotFound("link", "This link was revoked or never existed.")
            row = await session.get(Assistant, link.assistant_id)
            assert row is not None
            if row.user_id != user_id:
                mine = await session.scalar(
                    select(AssistantShare).where(
                        AssistantShare.assistant_id == link.assistant_id,
                        AssistantShare.principal_type == "user",
                        AssistantShare.principal_id == user_id,
                    )
                )
                if mine is None:
                    session.add(
                        AssistantShare(
                            assistant_id=link.assistant_id,
                            principal_type="user",
                            principal_id=user_id,
                            role=link.role,
                            link_id=link.id,
                        )
                    )
                    try:
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
            return link.assistant_id

    async def transfer(self, user_id: str, assistant_id: str, email: str) -> None:
        async with self.db.session() as session:
            row, _ = await self.access.find(session, user_id, assistant_id, "owner")
            target = await session.scalar(
                select(User).where(func.lower(User.email) == email.strip().lower())
            )
            if target is None or target.status != "active":
                raise NotFound("user", f"No active user with the email {email!r}.")
            if target.id == user_id:
                return
            # the new owner's own share is no longer needed; the old owner keeps edit
            for mine in await session.scalars(
                select(AssistantShare).where(
                    AssistantShare.assistant_id == assistant_id,
                    AssistantShare.principal_type == "user",
                    AssistantShare.principal_id.in_([target.id, user_id]),
                )
            ):
                await session.delete(mine)
            await session.flush()
            session.add(
                AssistantShare(
                    assistant_id=assistant_id,
                    principal_type="user",
                    principal_id=user_id,
                    role="edit",
                )
            )
            row.user_id = target.id
            row.updated_at = utcnow()
            await session.commit()

    # ------------------------------------------------------------ gallery

    async def gallery(self, user_id: str, q: str = "", limit: int = 100) -> list[GalleryEntry]:
        groups = await self.access.groups_of(user_id)
        async with self.db.session() as session:
            shared = (
                select(
                    AssistantShare.assistant_id,
                    func.max(
                        # the strongest role that reaches the user, as a rank
                        _rank_case()
                    ).label("rank"),
                )
                .where(self.access.reaching(user_id, groups))
                .group_by(AssistantShare.assistant_id)
                .subquery()
            )
            query = (
                select(Assistant, shared.c.rank, User.name, User.email)
                .outerjoin(shared, shared.c.assistant_id == Assistant.id)
                .join(User, User.id == Assistant.user_id)
                .where(or_(Assistant.user_id == user_id, shared.c.rank.is_not(None)))
            )
            words = q.strip()
            if words:
                like = f"%{_escape(words.lower())}%"
                query = query.where(
                    or_(
                        func.lower(Assistant.name).like(like, escape="\\"),
                        func.lower(Assistant.description).like(like, escape="\\"),
                    )
                )
            rows = await session.execute(
                query.order_by(Assistant.featured.desc(), Assistant.name, Assistant.id).limit(limit)
            )
            out: list[GalleryEntry] = []
            for row, rank, name, email in rows.all():
                role: Role = (
                    "owner" if row.user_id == user_id else _BY_RANK.get(int(rank or 1), "chat")
                )
                out.append(GalleryEntry(row, role, name or email))
            return out

    async def feature(self, assistant_id: str, featured: bool) -> Assistant:
        """An admin features an assistant (it shows first in the gallery of those
        who may use it; featuring shares nothing)."""
        async with self.db.session() as session:
            row = await session.get(Assistant, assistant_id)
            if row is None:
                raise NotFound("assistant")
            row.featured = featured
            await session.commit()
            return row

    async def every(self, q: str = "", limit: int = 200) -> Sequence[tuple[Assistant, str]]:
        """Every assistant of the instance with its owner's email (the admin's list)."""
        async with self.db.session() as session:
            query = select(Assistant, User.email).join(User, User.id == Assistant.user_id)
            if q.strip():
                like = f"%{_escape(q.strip().lower())}%"
                query = query.where(func.lower(Assistant.name).like(like, escape="\\"))
            rows = await session.execute(
                query.order_by(Assistant.featured.desc(), Assistant.name).limit(limit)
            )
            return [(a, e) for a, e in rows.all()]


_BY_RANK: dict[int, Role] = {1: "chat", 2: "view", 3: "edit"}


def _rank_case() -> ColumnElement[int]:
    return case((AssistantShare.role == "edit", 3), (AssistantShare.role == "view", 2), else_=1)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
