"""Who may do what with an assistant: the one place that answers it.

A user's role on an assistant is ``owner`` or the strongest share that reaches
them now: a ``user`` share naming them (made directly, or by opening a link), a
``group`` share for a group ``USER_GROUPS`` says they are in at this moment, or
an ``everyone`` share. Nothing is cached: each check reads the shares and the
user's groups, so revoking a share, removing the user from a group or deleting
the group ends access on the very next request or turn. Where the groups feature
offers its membership as a subquery (``USER_GROUPS_QUERY``), a check is one
statement; otherwise the group ids are read first (``USER_GROUPS``).

Ranks: ``chat`` < ``view`` (read the settings, duplicate) < ``edit`` < ``owner``
(share, transfer, delete). A user with no role gets ``NotFound`` (another user's
assistant is not told apart from a missing one); a user with a weaker role than
needed gets ``Forbidden`` saying what they may do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.assistants.tables import Assistant, AssistantShare
from parley.errors import Forbidden, NotFound
from parley.seam import GroupLookup, GroupQuery

__all__ = ["RANK", "Access", "Groups", "Role", "role_of_rank"]

Role = Literal["chat", "view", "edit", "owner"]
RANK: dict[str, int] = {"chat": 1, "view": 2, "edit": 3, "owner": 4}
_NEEDS = {
    "view": "You may chat with this assistant, but its owner has not shared its settings.",
    "edit": "You may not change this assistant: ask its owner for edit access.",
    "owner": "Only the assistant's owner can do this.",
}


_ROLE_OF_RANK: dict[int, Role] = {rank: role for role, rank in RANK.items()}  # type: ignore[misc]

Groups = Sequence[str] | sa.Select[Any]
"""The user's groups: their ids, or a subquery that selects them."""


def role_of_rank(rank: int | None) -> Role | None:
    return _ROLE_OF_RANK.get(rank or 0)


class Access:
    def __init__(
        self,
        groups: Callable[[], GroupLookup | None],
        groups_query: Callable[[], GroupQuery | None] = lambda: None,
    ) -> None:
        self._groups = groups
        self._groups_query = groups_query

    async def groups_of(self, user_id: str) -> Sequence[str]:
        lookup = self._groups()
        return await lookup(user_id) if lookup is not None else ()

    async def principals(self, user_id: str) -> Groups:
        """The user's groups for a statement: a subquery when the groups feature
        offers one (no round trip of its own), else the ids read now."""
        query = self._groups_query()
        if query is not None:
            selected: sa.Select[Any] = query(user_id)
            return selected
        return await self.groups_of(user_id)

    @staticmethod
    def reaching(user_id: str, groups: Groups) -> ColumnElement[bool]:
        """Shares that reach ``user_id`` (in ``groups``) right now."""
        in_group: ColumnElement[bool]
        if isinstance(groups, sa.Select) or groups:
            in_group = AssistantShare.principal_id.in_(groups)
        else:
            in_group = AssistantShare.id.is_(None)
        return or_(
            and_(AssistantShare.principal_type == "user", AssistantShare.principal_id == user_id),
            and_(AssistantShare.principal_type == "group", in_group),
            AssistantShare.principal_type == "everyone",
        )

    def rank(self, user_id: str, groups: Groups, assistant_id: Any) -> sa.ScalarSelect[Any]:
        """The rank of the strongest share of ``assistant_id`` (a column or a value)
        that reaches the user, as a scalar subquery (None: no share reaches them),
        so a lookup of the assistant answers who may use it in the same statement."""
        ranked = sa.case(*((AssistantShare.role == r, n) for r, n in RANK.items()), else_=0)
        return (
            select(func.max(ranked))
            .where(AssistantShare.assistant_id == assistant_id, self.reaching(user_id, groups))
            .scalar_subquery()
        )

    async def role(
        self, session: AsyncSession, user_id: str, row: Assistant, groups: Groups | None
    ) -> Role | None:
        if row.user_id == user_id:
            return "owner"
        if groups is None:
            groups = await self.principals(user_id)
        return role_of_rank(await session.scalar(select(self.rank(user_id, groups, row.id))))

    async def find(
        self, session: AsyncSession, user_id: str, assistant_id: str, need: Role
    ) -> tuple[Assistant, Role]:
        """The assistant and the user's role on it, at least ``need``."""
        row = await session.get(Assistant, assistant_id)
        role = None if row is None else await self.role(session, user_id, row, None)
        if row is None or role is None:
            raise NotFound("assistant")
        if RANK[role] < RANK[need]:
            raise Forbidden(_NEEDS[need], f"assistant_{need}_only")
        return row, role
