"""Administration: users, sign-up mode, default model, and providers.

Providers from the config file, the environment and the embedded model are
shown read-only with their source; those added here are stored in the
database. A provider's key is write-only: it never leaves the server again.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import func, select

from parley.api.schemas import (
    AdminSettingsUpdate,
    AdminUserCreate,
    AdminUserUpdate,
    ProviderCreate,
    ProviderTest,
    user_out,
)
from parley.auth import accounts
from parley.auth.passwords import password_problem
from parley.config import ProviderConfig
from parley.http.deps import DB, AdminUser, SettingsDep, Sync
from parley.http.problems import Problem, not_found
from parley.instance import values as instance
from parley.storage.tables import ProviderRecord, User

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/users")
async def list_users(admin: AdminUser, db: DB) -> dict[str, Any]:
    users = await db.scalars(select(User).order_by(User.created_at))
    return {"items": [user_out(u) for u in users]}


@router.post("/users", status_code=201)
async def create_user(body: AdminUserCreate, admin: AdminUser, db: DB) -> dict[str, Any]:
    if problem := password_problem(body.password):
        raise Problem(422, problem, "weak_password")
    user = await accounts.create_user(
        db, email=body.email, password=body.password, name=body.name, role=body.role
    )
    await db.commit()
    return {"user": user_out(user)}


@router.patch("/users/{user_id}")
async def update_user(
    user_id: str, body: AdminUserUpdate, admin: AdminUser, db: DB
) -> dict[str, Any]:
    user = await db.get(User, user_id)
    if user is None:
        raise not_found("user")
    demoting = (body.role == "user" and user.role == "admin") or (
        body.status not in (None, "active") and user.role == "admin"
    )
    if demoting:
        active_admins = await db.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.status == "active")
        )
        if int(active_admins or 0) <= 1:
            raise Problem(409, "Parley needs at least one active administrator.", "last_admin")
    if body.role is not None:
        user.role = body.role
    if body.status is not None:
        user.status = body.status
        if body.status != "active":
            # Signed-in browsers lose access at once (keys are checked per request too).
            await accounts.end_all_sessions(db, user.id)
    await db.commit()
    return {"user": user_out(user)}


@router.get("/settings")
async def get_settings(admin: AdminUser, db: DB, settings: SettingsDep) -> dict[str, Any]:
    return {
        "signup": await instance.signup_mode(db, settings),
        "default_model": await instance.default_model(db, settings),
    }


@router.patch("/settings")
async def update_settings(
    body: AdminSettingsUpdate, sync: Sync, admin: AdminUser, db: DB, settings: SettingsDep
) -> dict[str, Any]:
    if body.signup is not None:
        await instance.set_value(db, "signup", body.signup)
    if "default_model" in body.model_fields_set and not body.default_model:
        # null (the page's "Automatic"): back to the configured default or the first model.
        await instance.clear_value(db, "default_model")
    elif body.default_model is not None:
        registry = await sync.ensure_fresh(db)
        await registry.resolve(body.default_model)  # ModelNotFound -> 404
        await instance.set_value(db, "default_model", body.default_model)
    await db.commit()
    sync.invalidate()
    return await get_settings(admin, db, settings)


@router.get("/providers")
async def list_providers(sync: Sync, admin: AdminUser, db: DB) -> dict[str, Any]:
    registry = await sync.ensure_fresh(db)
    return {"items": registry.providers_info()}


@router.post("/providers", status_code=201)
async def add_provider(
    body: ProviderCreate, sync: Sync, admin: AdminUser, db: DB
) -> dict[str, Any]:
    registry = await sync.ensure_fresh(db)
    taken = {p["name"] for p in registry.providers_info()}
    if body.name in taken:
        raise Problem(409, f"A provider named {body.name!r} already exists.", "provider_exists")
    db.add(
        ProviderRecord(
            name=body.name,
            kind=body.kind,
            base_url=body.base_url,
            api_key=body.api_key,
            models=[m.model_dump() for m in body.models],
        )
    )
    await sync.bump(db)
    await db.commit()
    registry = await sync.ensure_fresh(db)
    info = next(p for p in registry.providers_info() if p["name"] == body.name)
    return dict(info)


@router.delete("/providers/{name}", status_code=204)
async def delete_provider(name: str, sync: Sync, admin: AdminUser, db: DB) -> Response:
    row = await db.scalar(select(ProviderRecord).where(ProviderRecord.name == name))
    if row is None:
        raise Problem(
            404,
            "No provider with that name was added here (config-file providers are read-only).",
            "not_found",
        )
    await db.delete(row)
    await sync.bump(db)
    await db.commit()
    return Response(status_code=204)


@router.post("/providers/test")
async def test_provider(body: ProviderTest, sync: Sync, admin: AdminUser) -> dict[str, Any]:
    ok, models, error = await sync.registry.test_connection(body.kind, body.base_url, body.api_key)
    return {"ok": ok, "models": models, "error": error}


@router.post("/providers/{name}/test")
async def test_saved_provider(name: str, sync: Sync, admin: AdminUser, db: DB) -> dict[str, Any]:
    """Test a provider added here or one from the config file or environment (the
    admin page offers Test on every row); the key stays on the server either way."""
    registry = sync.registry
    row = await db.scalar(select(ProviderRecord).where(ProviderRecord.name == name))
    if row is not None:
        kind, base_url, api_key = row.kind, row.base_url, row.api_key
    else:
        provider = (await sync.ensure_fresh(db)).get(name)
        config = getattr(provider, "config", None)
        if provider is None:
            raise not_found("provider")
        if not isinstance(config, ProviderConfig):
            kind = str(getattr(provider, "kind", "?"))
            return {
                "ok": False,
                "models": [],
                "error": f"Providers of kind '{kind}' cannot be tested.",
            }
        kind = config.kind
        base_url = getattr(provider, "base_url", None) or config.base_url
        api_key = config.resolved_api_key()
    ok, models, error = await registry.test_connection(kind, base_url, api_key)
    return {"ok": ok, "models": models, "error": error}
