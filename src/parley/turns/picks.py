"""Which models a user may pick directly: the admin's per-group model lists.

An admin may name, per group, the models its members may pick (Admin → Groups;
``parley.groups``). A user's pickable models are the union over their groups; a
user in no group, or in a group that names none, may pick every model, and so
may an administrator. Picking means choosing the model yourself: the model of a
new or existing chat, a ``/v1`` request's ``model``, a project's default model,
or the instance default when the chat names none. An assistant's model is
usable through the assistant when the assistant's *owner* may pick it, so a
shared assistant on a model outside the user's list still answers, and nobody
reaches a model they may not pick by building an assistant on it.

Everything asks here (the model list, starting a chat, changing its model, each
turn, ``/v1`` with a raw model), and this asks the groups feature
(``MODEL_ACCESS``) on every call: removing someone from a group counts from
their next request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from parley.container import Key, Services
from parley.errors import Forbidden
from parley.routing.rules import is_auto
from parley.storage.tables import User

__all__ = ["MODEL_ACCESS", "ModelAccess", "allows", "assistant_picks", "pickable", "require"]

ModelAccess = Callable[[str, AsyncSession | None], Awaitable[frozenset[str] | None]]
"""``(user_id, session) -> the refs the user may pick, or None for every model``;
read in the caller's session when one is given."""

MODEL_ACCESS: Key[ModelAccess] = Key("model_access")
"""Provided by the groups feature (``GroupService.pickable``)."""

_ASSISTANTS = sa.table("assistants", sa.column("id"), sa.column("user_id"))


async def pickable(
    services: Services, user: User, session: AsyncSession | None = None
) -> frozenset[str] | None:
    """The models ``user`` may pick, or None for all (read in ``session`` if given)."""
    if user.role == "admin":
        return None
    lookup = services.get(MODEL_ACCESS)
    return None if lookup is None else await lookup(user.id, session)


def allows(picks: frozenset[str] | None, ref: str) -> bool:
    """Whether ``ref`` is pickable (Auto is: it routes among the pickable ones)."""
    return picks is None or is_auto(ref) or ref in picks


def refused(ref: str) -> Forbidden:
    return Forbidden(
        f"The model {ref!r} is not one your groups may pick; choose another model, "
        "or ask your administrator.",
        "model_not_allowed",
    )


async def require(
    services: Services, user: User, ref: str | None, session: AsyncSession | None = None
) -> None:
    """Raise ``Forbidden`` unless ``user`` may pick ``ref`` (None: nothing picked)."""
    if ref and not allows(await pickable(services, user, session), ref):
        raise refused(ref)


def first_allowed(picks: frozenset[str], refs: Iterable[str]) -> str | None:
    """The first of ``refs`` (the models offered, in order) that is pickable."""
    return next((ref for ref in refs if ref in picks), None)


async def assistant_picks(
    services: Services, session: AsyncSession, user: User, assistant_id: str
) -> frozenset[str] | None:
    """What an assistant's model is checked against: its owner's picks."""
    owner_id = await session.scalar(
        sa.select(_ASSISTANTS.c.user_id).where(_ASSISTANTS.c.id == assistant_id)
    )
    if owner_id is None or owner_id == user.id:
        return await pickable(services, user, session)
    owner = await session.get(User, owner_id)
    return None if owner is None else await pickable(services, owner, session)
