"""The rules of groups: admins make them and fill them; anyone may ask which
groups a user is in (``of_user``, the ``USER_GROUPS`` seam key), always from the
database: no cached membership, so removing someone ends what the group granted
on the very next check.

Model access: a group may name the models its members may pick directly
(``set_models``; none named: all). A user's pickable models (``pickable``, the
``MODEL_ACCESS`` key of ``parley.turns.picks``) are the union over their groups;
a user in no group, or in any group that names none, may pick every model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import Conflict, Invalid, NotFound
from parley.groups.tables import Group, GroupMember, GroupModel
from parley.storage.db import Database
from parley.storage.tables import User

__all__ = ["GroupRow", "GroupService"]


@dataclass(slots=True)
class GroupRow:
    group: Group
    members: int


def _name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise Invalid("A group needs a name.", "invalid_group_name")
    return cleaned


class GroupService:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def of_user_query(user_id: str) -> Select[Any]:
        """The same as a subquery, for a check that embeds it (``USER_GROUPS_QUERY``)."""
        return select(GroupMember.group_id).where(GroupMember.user_id == user_id)

    async def of_user(self, user_id: str) -> list[str]:
        """Ids of the groups ``user_id`` is in (one indexed read, never cached)."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(GroupMember.group_id).where(GroupMember.user_id == user_id)
            )
            return list(rows.all())

    async def pickable(
        self, user_id: str, session: AsyncSession | None = None
    ) -> frozenset[str] | None:
        """The models ``user_id`` may pick directly, or None for all (one read,
        never cached: a removal from a group counts from the next request). In the
        caller's ``session`` when given: a request holding one connection while it
        waits for a second lets a burst exhaust the pool."""
        query = (
            select(GroupMember.group_id, GroupModel.model_ref)
            .outerjoin(GroupModel, GroupModel.group_id == GroupMember.group_id)
            .where(GroupMember.user_id == user_id)
        )
        if session is not None:
            rows = (await session.execute(query)).all()
        else:
            async with self.db.session() as own:
                rows = (await own.execute(query)).all()
        refs: set[str] = set()
        for _, ref in rows:
            if ref is None:  # a group that limits nothing
                return None
            refs.add(ref)
        return frozenset(refs) if rows else None

    async def models(self, group_ids: list[str]) -> dict[str, list[str]]:
        """The models each group names (a group naming none is left out)."""
        if not group_ids:
            return {}
        async with self.db.session() as session:
            rows = await session.execute(
                select(GroupModel.group_id, GroupModel.model_ref)
                .where(GroupModel.group_id.in_(group_ids))
                .order_by(GroupModel.model_ref)
            )
            out: dict[str, list[str]] = {}
            for group_id, ref in rows.all():
                out.setdefault(group_id, []).append(ref)
            return out

    async def set_models(self, group_id: str, refs: list[str]) -> list[str]:
        """Replace the models the group may pick (empty: all)."""
        wanted = sorted({ref.strip() for ref in refs if ref.strip()})
        async with self.db.session() as session:
            if await session.get(Group, group_id) is None:
                raise NotFound("group")
            await session.execute(delete(GroupModel).where(GroupModel.group_id == group_id))
            session.add_all(GroupModel(group_id=group_id, model_ref=ref) for ref in wanted)
            await session.commit()
            return wanted

    async def all(self) -> list[GroupRow]:
        async with self.db.session() as session:
            counts = (
                select(GroupMember.group_id, func.count().label("n"))
                .group_by(GroupMember.group_id)
                .subquery()
            )
            rows = await session.execute(
                select(Group, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.group_id == Group.id)
                .order_by(Group.name)
            )
            return [GroupRow(g, int(n)) for g, n in rows.all()]

    async def get(self, group_id: str) -> Group:
        async with self.db.session() as session:
            row = await session.get(Group, group_id)
            if row is None:
                raise NotFound("group")
            return row

    async def names(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        async with self.db.session() as session:
            rows = await session.execute(select(Group.id, Group.name).where(Group.id.in_(ids)))
            return {i: n for i, n in rows.all()}

    async def create(self, name: str, description: str) -> Group:
        async with self.db.session() as session:
            row = Group(name=_name(name), description=description.strip())
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(f"A group named {row.name!r} exists.", "group_exists") from exc
            return row

    async def update(self, group_id: str, name: str | None, description: str | None) -> Group:
        async with self.db.session() as session:
            row = await session.get(Group, group_id)
            if row is None:
                raise NotFound("group")
            if name is not None:
                row.name = _name(name)
            if description is not None:
                row.description = description.strip()
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(f"A group named {row.name!r} exists.", "group_exists") from exc
            return row

    async def delete(self, group_id: str) -> None:
        """The group and its memberships: everything it granted ends now."""
        async with self.db.session() as session:
            row = await session.get(Group, group_id)
            if row is None:
                raise NotFound("group")
            await session.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
            await session.execute(delete(GroupModel).where(GroupModel.group_id == group_id))
            await session.delete(row)
            await session.commit()

    async def members(self, group_id: str) -> list[User]:
        async with self.db.session() as session:
            if await session.get(Group, group_id) is None:
                raise NotFound("group")
            rows = await session.scalars(
                select(User)
                .join(GroupMember, GroupMember.user_id == User.id)
                .where(GroupMember.group_id == group_id)
                .order_by(User.email)
            )
            return list(rows.all())

    async def add(self, group_id: str, user_id: str) -> None:
        async with self.db.session() as session:
            if await session.get(Group, group_id) is None:
                raise NotFound("group")
            if await session.get(User, user_id) is None:
                raise NotFound("user")
            if await session.get(GroupMember, (group_id, user_id)) is None:
                session.add(GroupMember(group_id=group_id, user_id=user_id))
                try:
                    await session.commit()
                except IntegrityError:  # added by a concurrent request: the same result
                    await session.rollback()

    async def remove(self, group_id: str, user_id: str) -> None:
        async with self.db.session() as session:
            found = await session.get(GroupMember, (group_id, user_id))
            if found is None:
                raise NotFound("member", "That user is not in this group.")
            await session.delete(found)
            await session.commit()
