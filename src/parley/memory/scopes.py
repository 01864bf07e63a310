"""Where a turn's memories come from and where the ones it learns go, with projects.

A project's memory mode reaches a turn as ``TurnInfo.preferences["project_memory"]``
(set by the turn service from the projects feature's profile):

- ``project`` (project-only): memories learned in the project's chats belong to
  the project; only those are recalled there (global memories are not read), and
  they are recalled nowhere else.
- ``default``: the user's own memories: learned ones are global, and recall reads
  the global ones (and any the project kept from a project-only time).
- absent (no projects feature, or a chat in none): as before, a chat's project or
  assistant keeps what it learns (``service.scope_of``).

The past-conversations tool follows the same rule with chats: inside a
project-only project it searches that project's chats only, and elsewhere it
never finds the chats of a project-only project (``chat_visible``).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.memory.recall import Scope
from parley.memory.service import scope_of
from parley.turns.hooks import TurnInfo

__all__ = ["chat_visible", "home_of", "project_mode", "project_only", "recall_scope"]

# The projects feature's table, named (features never import each other).
_PROJECTS = sa.table("projects", sa.column("id"), sa.column("memory"))
_CONVERSATIONS = sa.table("conversations", sa.column("id"), sa.column("project_id"))


def _mode(info: TurnInfo) -> str | None:
    mode = info.preferences.get("project_memory") if info.project_id else None
    return mode if mode in ("default", "project") else None


def home_of(info: TurnInfo) -> tuple[str | None, str | None]:
    """Where a memory learned in this turn belongs."""
    if _mode(info) == "default":
        return scope_of(None, info.assistant_id)
    return scope_of(info.project_id, info.assistant_id)


def recall_scope(info: TurnInfo) -> Scope:
    """Which memories this turn may read."""
    return Scope(info.project_id, info.assistant_id, only=_mode(info) == "project")


async def project_mode(session: AsyncSession, project_id: str | None) -> str | None:
    """A project's memory mode (None: no project, or no projects feature)."""
    if not project_id:
        return None
    mode = await session.scalar(select(_PROJECTS.c.memory).where(_PROJECTS.c.id == project_id))
    return str(mode) if mode is not None else None


async def project_only(session: AsyncSession, project_id: str | None) -> bool:
    return await project_mode(session, project_id) == "project"


async def chat_visible(
    session: AsyncSession, project_id: str | None, conversation_ids: Iterable[str]
) -> set[str]:
    """Of ``conversation_ids``, the chats a search from a chat in ``project_id`` may
    find: inside a project-only project its own chats only; elsewhere every chat but
    those of project-only projects."""
    ids = list(conversation_ids)
    if not ids:
        return set()
    rows = (
        await session.execute(
            select(_CONVERSATIONS.c.id, _CONVERSATIONS.c.project_id, _PROJECTS.c.memory)
            .select_from(_CONVERSATIONS)
            .outerjoin(_PROJECTS, _PROJECTS.c.id == _CONVERSATIONS.c.project_id)
            .where(_CONVERSATIONS.c.id.in_(ids))
        )
    ).all()
    if await project_only(session, project_id):
        return {cid for cid, pid, _ in rows if pid == project_id}
    return {cid for cid, pid, mode in rows if mode != "project" or pid == project_id}
