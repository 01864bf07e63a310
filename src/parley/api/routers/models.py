"""The models a user can pick, the default, and the embedded model's status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from parley.http.deps import DB, CurrentUser, Sync
from parley.providers.base import ModelInfo
from parley.providers.registry import ModelRegistry

router = APIRouter(prefix="/api", tags=["models"])


def model_out(info: ModelInfo) -> dict[str, Any]:
    return {
        "ref": info.ref,
        "provider": info.provider,
        "name": info.name,
        "display_name": info.display_name or info.name,
        "context_window": info.context_window,
        "supports_tools": info.supports_tools,
        "supports_vision": info.supports_vision,
        "input_price": info.input_price,
        "output_price": info.output_price,
    }


def local_status(registry: ModelRegistry) -> dict[str, str]:
    local = registry.local
    if local is None:
        return {"status": "disabled", "detail": "The embedded model is turned off."}
    return {"status": local.status, "detail": local.detail}


@router.get("/models")
async def list_models(sync: Sync, user: CurrentUser, db: DB) -> dict[str, Any]:
    registry = await sync.ensure_fresh(db)
    models = await registry.list_models()
    preferred = await sync.default_model(db)
    return {
        "items": [model_out(m) for m in models],
        "default": await registry.default_ref(preferred),
        "local": local_status(registry),
    }
