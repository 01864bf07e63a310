"""The models a user can pick, the default, and the embedded model's status."""

from __future__ import annotations

from fastapi import APIRouter

from parley.api.schemas import LocalModelStatus, ModelList, ModelPublic
from parley.http.deps import DB, CurrentUser, ServicesDep, Sync
from parley.http.guard import GuardedRoute
from parley.providers.base import ModelInfo
from parley.providers.registry import ModelRegistry
from parley.routing.rules import AUTO, is_auto
from parley.turns.picks import allows, pickable

router = APIRouter(route_class=GuardedRoute, prefix="/api", tags=["models"])


def model_out(info: ModelInfo) -> ModelPublic:
    return ModelPublic(
        ref=info.ref,
        provider=info.provider,
        name=info.name,
        display_name=info.display_name or info.name,
        context_window=info.context_window,
        supports_tools=info.supports_tools,
        supports_vision=info.supports_vision,
        input_price=info.input_price,
        output_price=info.output_price,
        tool_use=info.tool_use,
        demo=info.demo,
    )


def auto_out(models: list[ModelInfo]) -> ModelPublic:
    """The Auto choice in the picker: what it can do is what the models it routes
    among can (a vision rule sends images to a model that sees them)."""
    return ModelPublic(
        ref=AUTO,
        provider="parley",
        name=AUTO,
        display_name="Auto",
        context_window=max(m.context_window for m in models),
        supports_tools=any(m.supports_tools for m in models),
        supports_vision=any(m.supports_vision for m in models),
        input_price=0.0,
        output_price=0.0,
        tool_use=any(m.tool_use for m in models),
        auto=True,
    )


LOCAL_ERROR_FOR_USERS = "The built-in model cannot start; ask your administrator."


def local_status(registry: ModelRegistry, *, admin: bool = True) -> LocalModelStatus:
    """The embedded model's state; why it failed (file paths, setting names) only
    for an administrator."""
    local = registry.local
    if local is None:
        return LocalModelStatus(status="disabled", detail="The embedded model is turned off.")
    enabled = local.status != "disabled"
    detail = local.detail
    if local.status == "error" and not admin:
        detail = LOCAL_ERROR_FOR_USERS
    return LocalModelStatus(
        status=local.status,
        detail=detail,
        ref=local.info.ref if enabled else None,
        demo=local.info.demo,
    )


@router.get("/models")
async def list_models(sync: Sync, user: CurrentUser, db: DB, services: ServicesDep) -> ModelList:
    """The models the user may pick (their groups' lists: ``parley.turns.picks``)."""
    registry = await sync.ensure_fresh(db)
    models = await registry.list_models()
    preferred = await sync.default_model(db)
    picks = await pickable(services, user, db)
    mine = [m for m in models if m.offered_to(user.id) and allows(picks, m.ref)]
    real = [m for m in mine if not m.demo]  # Auto over the demo starter alone: no choice
    default = await registry.default_ref(preferred, user.id)
    if default is not None and not allows(picks, default):  # the first the user may pick
        default = mine[0].ref if mine else None
    return ModelList(
        items=[model_out(m) for m in mine] + ([auto_out(mine)] if real else []),
        default=AUTO if is_auto(preferred) and mine else default,
        local=local_status(registry, admin=user.role == "admin"),
    )
