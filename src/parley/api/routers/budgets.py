"""Admin → Budgets and Settings → Usage's budgets: the limits and what they used.

``GET /api/admin/budgets`` lists every budget and rate limit with its current
period's use and reset time; ``POST`` adds one, ``PATCH /{budget_id}`` changes
it, ``DELETE /{budget_id}`` removes it (its counters go with it). ``GET
/api/me/budgets`` lists the limits that bind the caller: the instance's, their
groups', their own, their API keys' and their projects'. The rules are
``parley.budgets.service``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, null, or_, select

from parley.api.schemas import Timestamp
from parley.budgets.service import Budgets, Limit, delete_limit, save_limit
from parley.groups.tables import Group
from parley.http.bodies import Body, iso
from parley.http.deps import DB, AdminUser, CurrentUser, Sync, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.projects.tables import Project
from parley.storage.tables import ApiKey, Conversation, User

router = APIRouter(route_class=GuardedRoute, prefix="/api", tags=["budgets"])

BudgetsDep = Annotated[Budgets, Depends(service(Budgets))]
Scope = Literal["instance", "group", "user", "project", "key"]
Kind = Literal["cost", "requests", "tokens"]
Period = Literal["day", "week", "month", "total", "minute"]


class BudgetOut(BaseModel):
    id: str
    scope: Scope
    scope_id: str = Field(description='the group, user, project or key id; "" for the instance')
    scope_name: str = Field(
        description="a group's name, a user's email, a project's or key's name with its "
        'owner\'s email; the id when it no longer exists; "everyone" for the instance'
    )
    kind: Kind = Field(description="cost: an amount per period; requests, tokens: per minute")
    period: Period
    amount: float = Field(description="in the instance's currency, requests or tokens")
    downgrade_model: str | None = Field(description="answers once the budget is spent")
    spent: float = Field(description="settled in the current period")
    reserved: float = Field(description="held by calls in flight")
    remaining: float
    used: float = Field(description="spent / amount (0.8 warns)")
    resets_at: Timestamp | None = Field(description="null for a total budget")


class BudgetList(BaseModel):
    currency: str
    items: list[BudgetOut]
    lease_s: float = Field(
        description="a reservation a crashed worker left is given back after this long"
    )


class BudgetIn(Body):
    scope: Scope
    scope_id: str = Field("", max_length=64)
    kind: Kind = "cost"
    period: Period = "day"
    amount: float = Field(ge=0, le=1e12)
    downgrade_model: str | None = Field(None, max_length=300)


async def _names(db: DB, limits: Sequence[Limit]) -> dict[tuple[str, str], str]:
    """What an administrator calls each limit's scope (one query per kind of scope)."""
    wanted: dict[str, list[str]] = {}
    for limit in limits:
        wanted.setdefault(limit.scope, []).append(limit.scope_id)
    names: dict[tuple[str, str], str] = {}
    for scope, ids in wanted.items():
        if scope == "instance":
            continue
        for choice in await _choices(db, scope, ids=ids):
            names[scope, choice.id] = choice.label
    return names


class ScopeChoice(BaseModel):
    id: str
    name: str = Field(description="the group's or project's name, the user's email, the key's name")
    owner: str | None = Field(description="a project's or key's owner (their email)")
    label: str = Field(description="the name with the owner, as the budgets list shows it")


class ScopeChoices(BaseModel):
    items: list[ScopeChoice]


CHOICES = 50  # a search shows at most this many; typing more narrows it


async def _choices(
    db: DB, scope: str, *, ids: Sequence[str] | None = None, q: str = ""
) -> list[ScopeChoice]:
    """The groups, users, projects or API keys a limit can be set on: those with
    ``ids``, or those whose name (or owner's email) contains ``q``."""
    owner: Any = null().label("owner")
    table: Any = {"group": Group, "user": User, "project": Project, "key": ApiKey}[scope]
    key, name = table.id, (User.email if scope == "user" else table.name)
    search = [name, User.name] if scope == "user" else [name]
    if scope in ("project", "key"):  # someone's: shown and found by their email too
        owner = User.email
        search.append(User.email)
    stmt = select(key, name, owner)
    if scope in ("project", "key"):
        stmt = stmt.join(User, User.id == table.user_id)
    stmt = stmt.order_by(name, key)
    if ids is not None:
        stmt = stmt.where(key.in_(list(ids)))
    else:
        if q.strip():  # "%" and "_" are letters here, not wildcards
            words = q.strip().lower()
            stmt = stmt.where(
                or_(*(func.lower(c).contains(words, autoescape=True) for c in search))
            )
        stmt = stmt.limit(CHOICES)
    out = []
    for row_id, called, who in await db.execute(stmt):
        called = called or row_id
        label = f"{called} ({who})" if who else called
        out.append(ScopeChoice(id=row_id, name=called, owner=who, label=label))
    return out


async def _rows(
    budgets: Budgets, db: DB, limits: Sequence[Limit], sync: Sync | None = None
) -> BudgetList:
    names = await _names(db, limits)
    items = []
    for limit, spent, reserved, ends in await budgets.usage(limits):
        items.append(
            BudgetOut(
                id=limit.id,
                scope=limit.scope,  # type: ignore[arg-type]
                scope_id=limit.scope_id,
                scope_name=names.get((limit.scope, limit.scope_id), limit.scope_id or "everyone"),
                kind=limit.kind,  # type: ignore[arg-type]
                period=limit.period,  # type: ignore[arg-type]
                amount=limit.amount,
                downgrade_model=limit.downgrade_model,
                spent=round(spent, 6),
                reserved=round(max(0.0, reserved), 6),
                remaining=round(max(0.0, limit.amount - spent - max(0.0, reserved)), 6),
                used=round(spent / limit.amount, 4) if limit.amount > 0 else 1.0,
                resets_at=iso(ends) if isinstance(ends, datetime) else None,
            )
        )
    order = {"instance": 0, "group": 1, "user": 2, "project": 3, "key": 4}
    items.sort(key=lambda b: (order[b.scope], b.scope_name, b.kind, b.period))
    return BudgetList(currency=budgets.currency, items=items, lease_s=budgets.lease_s)


@router.get("/admin/budgets/choices")
async def budget_choices(
    admin: AdminUser,
    db: DB,
    scope: Annotated[Literal["group", "user", "project", "key"], Query()],
    q: Annotated[str, Query(max_length=200)] = "",
) -> ScopeChoices:
    """What Admin → Budgets' form picks from: the groups, users, projects or API
    keys whose name (or owner's email) contains ``q``, at most ``CHOICES``."""
    return ScopeChoices(items=await _choices(db, scope, q=q))


@router.get("/admin/budgets")
async def list_budgets(admin: AdminUser, budgets: BudgetsDep, db: DB) -> BudgetList:
    budgets.invalidate()
    return await _rows(budgets, db, await budgets.limits())


async def _check_downgrade(sync: Sync, db: DB, ref: str | None) -> None:
    if not ref:
        return
    registry = await sync.ensure_fresh(db)
    if ref not in {m.ref for m in await registry.list_models()}:
        raise Problem(422, f"There is no model {ref!r}.", "unknown_model", param="downgrade_model")


@router.post("/admin/budgets", status_code=201)
async def create_budget(
    body: BudgetIn, admin: AdminUser, budgets: BudgetsDep, db: DB, sync: Sync
) -> BudgetOut:
    """422 for a period that does not fit the kind or an unknown downgrade model;
    409 ``budget_exists`` for a second limit of one kind and period on a scope."""
    await _check_downgrade(sync, db, body.downgrade_model)
    limit = await save_limit(budgets, **body.model_dump())
    return (await _rows(budgets, db, [limit])).items[0]


@router.patch("/admin/budgets/{budget_id}")
async def update_budget(
    budget_id: str, body: BudgetIn, admin: AdminUser, budgets: BudgetsDep, db: DB, sync: Sync
) -> BudgetOut:
    await _check_downgrade(sync, db, body.downgrade_model)
    limit = await save_limit(budgets, **body.model_dump(), budget_id=budget_id)
    return (await _rows(budgets, db, [limit])).items[0]


@router.delete("/admin/budgets/{budget_id}", status_code=204)
async def remove_budget(budget_id: str, admin: AdminUser, budgets: BudgetsDep) -> Response:
    await delete_limit(budgets, budget_id)
    return Response(status_code=204)


@router.get("/me/budgets")
async def my_budgets(user: CurrentUser, budgets: BudgetsDep, db: DB) -> BudgetList:
    """The limits that bind the caller, with their use (the instance's and their
    groups' are shared with others: their use is everyone's)."""
    payer = await budgets.payer(user.id)
    keys = set((await db.scalars(select(ApiKey.id).where(ApiKey.user_id == user.id))).all())
    projects = set(
        (
            await db.scalars(
                select(Conversation.project_id)
                .where(Conversation.user_id == user.id, Conversation.project_id.is_not(None))
                .distinct()
            )
        ).all()
    )
    ids = payer.ids()
    ids["key"] = keys
    ids["project"] = {p for p in projects if p}
    mine = [limit for limit in await budgets.limits() if limit.scope_id in ids[limit.scope]]
    return await _rows(budgets, db, mine)
