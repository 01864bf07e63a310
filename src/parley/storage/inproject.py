"""A ``/v1`` request in a project touches only that project's chats.

``parley.http.deps`` decides the project a request runs in (the ``X-Parley-Project``
header or the API key's only project, ``parley.auth.scopes``) and that its owner
may use it now; the Responses and Conversations services (and ``/v1`` image
content) call these checks wherever they read a chat by id, so a key limited to
a project never reads or continues a chat outside it. ``None``: the request runs in no project (an
unlimited key that named none) and every chat of the user is reachable.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import Forbidden
from parley.storage.tables import Conversation

__all__ = ["check_chat", "check_chat_id", "outside"]


def outside(project: str) -> Forbidden:
    return Forbidden(
        f"This request runs in project {project!r} (named in X-Parley-Project or the "
        "API key's only project); that conversation is not in it.",
        "project_scope",
    )


def check_chat(conv: Conversation, project: str | None) -> None:
    """Raise ``Forbidden`` unless ``conv`` is in ``project`` (any chat when None)."""
    if project is not None and conv.project_id != project:
        raise outside(project)


async def check_chat_id(session: AsyncSession, conversation_id: str, project: str | None) -> None:
    """``check_chat`` for a chat known by id (a stored response's)."""
    if project is None:
        return
    found = await session.scalar(
        select(Conversation.project_id).where(Conversation.id == conversation_id)
    )
    if found != project:
        raise outside(project)
