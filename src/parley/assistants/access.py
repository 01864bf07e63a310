"""Who may do what with an assistant: the one place that answers it.

A user's role on an assistant is ``owner`` or the strongest share that reaches
them now: a ``user`` share naming them (made directly, or by opening a link), a
``group`` share for a group ``USER_GROUPS`` says they are in at this moment, or
an ``everyone`` share. Nothing is cached: each check reads the shares and asks
for the user's groups, so revoking a share, removing the user from a group or
deleting the group ends access on the very next request or turn.

Ranks: ``chat`` < ``view`` (read the settings, duplicate) < ``edit`` < ``owner``
(share, transfer, delete). A user with no role gets ``NotFound`` (another user's
assistant is not told apart from a missing one); a user with a weaker role than
needed gets ``Forbidden`` saying what they may do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.assistants.tables import Assistant, AssistantShare
from parley.errors import Forbidden, NotFound
from parley.seam import GroupLookup

__all__ = ["RANK", "Access", "Role"]

Role = Literal["chat", "view", "edit", "owner"]
RANK: dict[str, int] = {"chat": 1, "view": 2, "edit": 3, "owner": 4}
_NEEDS = {
    "view": "You may chat with this assistant, but its owner has not shared its settings.",
    "edit": "You may not change this assistant: ask its owner for edit access.",
    "owner": "Only the assistant's owner can do this.",
}


class Access:
    def __init__(self, groups: Callable[[], GroupLookup | None]) -> None:
        self._groups = groups

    async def groups_of(self, user_id: str) -> Sequence[str]:
        lookup = self._groups()
        return await lookup(user_id) if lookup is not None else ()

    @staticmethod
    def reaching(user_id: str, groups: Sequence[str]) -> ColumnElement[bool]:
        """Shares that reach ``user_id`` (in ``groups``) right now."""
        return or_(
            and_(AssistantShare.principal_type == "user", AssistantShare.principal_id == user_id),
            and_(AssistantShare.principal_type == "group", AssistantShare.principal_id.in_(groups))
            if groups
            else and_(AssistantShare.principal_type == "group", AssistantShare.id.is_(None)),
            AssistantShare.principal_type == "everyone",
        )

    async def role(
        self, session: AsyncSession, user_id: str, row: Assistant, groups: Sequence[str] | None
    ) -> Role | None:
        if row.user_id == user_id:
            return "owner"
        if groups is None:
            groups = await self.groups_of(user_id)
        roles = await session.scalars(
            select(AssistantShare.role).where(
                AssistantShare.assistant_id == row.id, self.reaching(user_id, groups)
            )
        )
        best = max(roles.all(), key=lambda r: RANK.get(r, 0), default=None)
        return best if best in RANK else None  # type: ignore[return-value]

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
