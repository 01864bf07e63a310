"""Admin → Routing: the Auto model's rules, per instance, assistant or project.

``GET /api/admin/routing`` lists the stored policies (the instance's first, an
empty one when none is stored), the rule kinds and the models a rule may name;
``PUT /api/admin/routing`` stores one scope's policy, ``POST
/api/admin/routing/clear`` removes it (an assistant's or a project's chats then
follow the instance's). Scope ids and model refs travel in the body: refs contain
slashes, and the isolation sweep has no path parameter to fill. The rules are
``parley.routing.rules``'s.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from parley.http.bodies import Body
from parley.http.deps import DB, AdminUser, Sync, Turns
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.routing.rules import KINDS, is_auto

router = APIRouter(route_class=GuardedRoute, prefix="/api/admin/routing", tags=["admin"])

ScopeName = Literal["instance", "assistant", "project"]


class RuleIO(BaseModel):
    kind: Literal["vision", "tools", "long_context", "light", "heavy", "budget"]
    model: str = Field(max_length=300, description="the model ref answering when it matches")
    min_tokens: int | None = Field(
        default=None,
        ge=1,
        description="long_context: more tokens than this (default: 3/4 "
        "of the default model's window)",
    )
    at: float | None = Field(
        default=None, gt=0, le=10, description="budget: from this share used (default 0.8)"
    )


class PolicyOut(BaseModel):
    scope: ScopeName
    scope_id: str = Field(description="the assistant's or project's id; empty for the instance")
    rules: list[RuleIO] = Field(description="in order: the first that matches picks the model")
    default: str | None = Field(description="when no rule matches; null: the default model")
    stored: bool = Field(description="false: the instance's built-in (no rules)")


class RoutingOverview(BaseModel):
    policies: list[PolicyOut]
    kinds: list[str] = Field(description="every rule kind, in the order the editor offers them")
    models: list[str] = Field(description="refs a rule or default may name")


class PolicyUpdate(Body):
    scope: ScopeName = "instance"
    scope_id: str = Field(default="", max_length=64)
    rules: list[RuleIO] = Field(max_length=30)
    default: str | None = Field(default=None, max_length=300)


class PolicyClear(Body):
    scope: ScopeName = "instance"
    scope_id: str = Field(default="", max_length=64)


@router.get("")
async def routing_overview(admin: AdminUser, sync: Sync, db: DB, turns: Turns) -> RoutingOverview:
    registry = await sync.ensure_fresh(db)
    routing = turns.routing
    routing.invalidate()
    stored = await routing.policies()
    policies = [
        PolicyOut(
            scope=scope,  # type: ignore[arg-type]
            scope_id=scope_id,
            rules=[RuleIO(**r.public()) for r in policy.rules],
            default=policy.default,
            stored=True,
        )
        for (scope, scope_id), policy in sorted(stored.items(), key=_order)
    ]
    if ("instance", "") not in stored:
        policies.insert(
            0, PolicyOut(scope="instance", scope_id="", rules=[], default=None, stored=False)
        )
    return RoutingOverview(
        policies=policies,
        kinds=list(KINDS),
        models=[m.ref for m in await registry.list_models() if m.enabled],
    )


def _order(item: tuple[tuple[str, str], object]) -> tuple[int, str]:
    (scope, scope_id), _ = item
    return (("instance", "assistant", "project").index(scope), scope_id)


@router.put("")
async def update_policy(
    body: PolicyUpdate, admin: AdminUser, sync: Sync, db: DB, turns: Turns
) -> RoutingOverview:
    """422 ``unknown_model`` for a ref that names no model, ``invalid_policy`` for a
    policy that cannot work (Auto as a rule's model, a scope without its id)."""
    registry = await sync.ensure_fresh(db)
    known = {m.ref for m in await registry.list_models()}
    named = [r.model for r in body.rules] + ([body.default] if body.default else [])
    for ref in named:
        if is_auto(ref):
            raise Problem(422, "A rule cannot route to Auto itself.", "invalid_policy")
        if ref not in known:
            raise Problem(422, f"There is no model {ref!r}.", "unknown_model")
    try:
        await turns.routing.set_policy(
            body.scope,
            body.scope_id,
            [r.model_dump() for r in body.rules],
            body.default or None,
        )
    except ValueError as exc:
        raise Problem(422, str(exc), "invalid_policy") from exc
    return await routing_overview(admin, sync, db, turns)


@router.post("/clear")
async def clear_policy(
    body: PolicyClear, admin: AdminUser, sync: Sync, db: DB, turns: Turns
) -> RoutingOverview:
    await turns.routing.clear(body.scope, body.scope_id)
    return await routing_overview(admin, sync, db, turns)
