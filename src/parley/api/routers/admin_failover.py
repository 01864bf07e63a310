"""Admin > Providers > Failover: each model's fallbacks and each provider's breaker.

``GET /api/admin/failover`` lists every model's fallbacks (the admin's list, else
the config file's) and the circuit of every provider that failed lately;
``PUT /api/admin/failover/fallbacks`` sets one model's list (``null``: back to the
config file's), ``POST /api/admin/failover/breakers/reset`` closes a circuit. The
model ref travels in the body, not the path: refs contain slashes. The rules are
``parley.turns.failover``'s; the state is ``parley.storage.failover``'s.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from parley.api.schemas import Timestamp
from parley.http.bodies import Body, iso
from parley.http.deps import DB, AdminUser, SettingsDep, Sync, Turns
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.storage.failover import clear_fallbacks, set_fallbacks

router = APIRouter(route_class=GuardedRoute, prefix="/api/admin/failover", tags=["admin"])


class FallbackEntry(BaseModel):
    model: str = Field(description="the model ref (provider/model)")
    fallbacks: list[str] = Field(description="refs that answer, in order, when it fails")
    source: Literal["admin", "config", "none"] = Field(
        description="admin: set here; config: the config file's; none: no fallbacks"
    )


class BreakerOut(BaseModel):
    provider: str
    state: Literal["closed", "open", "half_open"]
    failures: int = Field(description="consecutive failures counted")
    opened_at: Timestamp | None
    retry_at: Timestamp | None = Field(description="when an open circuit lets one probe through")


class FailoverOverview(BaseModel):
    fallbacks: list[FallbackEntry] = Field(description="every model, with its fallbacks")
    breakers: list[BreakerOut] = Field(description="providers that failed since they last closed")
    retry_attempts: int
    breaker_failures: int
    breaker_cooldown_s: float


class FallbacksUpdate(Body):
    model: str = Field(max_length=300)
    fallbacks: list[str] | None = Field(
        max_length=20, description="refs in order; [] none; null: back to the config file's"
    )


class BreakerReset(Body):
    provider: str = Field(max_length=100)


@router.get("")
async def failover_overview(
    admin: AdminUser, sync: Sync, db: DB, turns: Turns, settings: SettingsDep
) -> FailoverOverview:
    registry = await sync.ensure_fresh(db)
    failover = turns.failover
    failover.invalidate()
    entries: list[FallbackEntry] = []
    refs = [m.ref for m in await registry.list_models()]
    stored = await failover.admin_lists()
    for ref in [*refs, *(r for r in stored if r not in refs)]:
        fallbacks, source = await failover.fallbacks_of(ref)
        entries.append(FallbackEntry(model=ref, fallbacks=fallbacks, source=source))  # type: ignore[arg-type]
    breakers = [
        BreakerOut(
            provider=b.provider,
            state=b.state,  # type: ignore[arg-type]
            failures=b.failures,
            opened_at=iso(b.opened_at),
            retry_at=iso(b.retry_at),
        )
        for b in await failover.breaker.states()
    ]
    return FailoverOverview(
        fallbacks=entries,
        breakers=breakers,
        retry_attempts=settings.retry_attempts,
        breaker_failures=settings.breaker_failures,
        breaker_cooldown_s=settings.breaker_cooldown_s,
    )


@router.put("/fallbacks")
async def update_fallbacks(
    body: FallbacksUpdate, admin: AdminUser, sync: Sync, db: DB, turns: Turns, settings: SettingsDep
) -> FailoverOverview:
    """422 ``unknown_model`` for a ref that names no model, ``fallback_loop`` for the
    model itself."""
    registry = await sync.ensure_fresh(db)
    known = {m.ref for m in await registry.list_models()}
    if body.model not in known:
        raise Problem(422, f"There is no model {body.model!r}.", "unknown_model")
    if body.fallbacks is None:
        await clear_fallbacks(db, body.model)
    else:
        refs = list(dict.fromkeys(r.strip() for r in body.fallbacks if r.strip()))
        if body.model in refs:
            raise Problem(422, "A model cannot be its own fallback.", "fallback_loop")
        if unknown := [r for r in refs if r not in known]:
            raise Problem(422, f"There is no model {unknown[0]!r}.", "unknown_model")
        await set_fallbacks(db, body.model, refs)
    await db.commit()
    turns.failover.invalidate()
    return await failover_overview(admin, sync, db, turns, settings)


@router.post("/breakers/reset")
async def reset_breaker(
    body: BreakerReset, admin: AdminUser, sync: Sync, db: DB, turns: Turns, settings: SettingsDep
) -> FailoverOverview:
    """Close a provider's circuit now (after fixing it): its next call goes through."""
    await turns.failover.breaker.reset(body.provider)
    return await failover_overview(admin, sync, db, turns, settings)
