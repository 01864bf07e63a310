"""Administration: users, sign-up mode, default model, and providers.

Providers from the config file, the environment and the embedded model are
shown read-only with their source; those added here are stored in the
database (``parley.instance.provider_admin``). A provider's key is write-only:
it never leaves the server again. The rules live in the services; these
handlers translate HTTP to them.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy import select

from parley.api.schemas import (
    AdminPasswordReset,
    AdminPasswordResult,
    AdminSettingsUpdate,
    AdminUserCreate,
    AdminUserDelete,
    AdminUserUpdate,
    InstanceSettings,
    ProviderCreate,
    ProviderInfo,
    ProviderList,
    ProviderTest,
    ProviderTestResult,
    ProviderUpdate,
    RowProblem,
    UserEnvelope,
    UserList,
    UserPublic,
)
from parley.auth import accounts
from parley.auth.passwords import hash_password, password_problem
from parley.http.deps import DB, AdminUser, SettingsDep, Sync, Turns, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem, not_found
from parley.instance import provider_admin
from parley.instance import values as instance
from parley.routing.rules import AUTO, is_auto
from parley.storage.tables import User
from parley.userdata import UserDataHooks
from parley.userdata.service import delete_account

log = logging.getLogger(__name__)
router = APIRouter(route_class=GuardedRoute, prefix="/api/admin", tags=["admin"])
UserDataDep = Annotated[UserDataHooks, Depends(service(UserDataHooks))]


@router.get("/users")
async def list_users(admin: AdminUser, db: DB) -> UserList:
    """Every user; a stored record that cannot be shown is reported in
    ``problems`` (and logged) instead of failing the whole list."""
    items: list[UserPublic] = []
    problems: list[RowProblem] = []
    for user in await db.scalars(select(User).order_by(User.created_at)):
        try:
            items.append(UserPublic.from_row(user))
        except ValueError as exc:  # pydantic's ValidationError included
            log.warning("user %s cannot be listed: %s", user.id, exc)
            problems.append(RowProblem(id=user.id, detail="This user's stored record is invalid."))
    return UserList(items=items, problems=problems)


@router.post("/users", status_code=201)
async def create_user(body: AdminUserCreate, admin: AdminUser, db: DB) -> UserEnvelope:
    if problem := password_problem(body.password):
        raise Problem(422, problem, "weak_password")
    user = await accounts.create_user(
        db, email=body.email, password=body.password, name=body.name, role=body.role
    )
    await db.commit()
    return UserEnvelope.from_row(user)


@router.patch("/users/{user_id}")
async def update_user(
    user_id: str, body: AdminUserUpdate, admin: AdminUser, db: DB, turns: Turns
) -> UserEnvelope:
    user = await accounts.get_user(db, user_id)
    if user is None:
        raise not_found("user")
    await accounts.ensure_an_admin_remains(db, user, role=body.role, status=body.status)
    if body.role is not None:
        user.role = body.role
    if body.status is not None:
        user.status = body.status
        if body.status != "active":
            # Signed-in browsers lose access at once (keys are checked per request too).
            await accounts.end_all_sessions(db, user.id)
    await db.commit()
    if body.status is not None and body.status != "active":
        await turns.revoke_user(user.id)  # answers, jobs and kernels in flight stop now
    return UserEnvelope.from_row(user)


@router.post("/users/{user_id}/password")
async def reset_password(
    user_id: str, body: AdminPasswordReset, admin: AdminUser, db: DB
) -> AdminPasswordResult:
    """Set a user's password (a forgotten one): the admin's, or a temporary one made
    here and returned once. Every browser signed in as the user is signed out; their
    API keys keep working (they are not the password)."""
    user = await accounts.get_user(db, user_id)
    if user is None:
        raise not_found("user")
    generated = not body.password
    password = body.password or temporary_password()
    if problem := password_problem(password):
        raise Problem(422, problem, "weak_password")
    user.password_hash = await hash_password(password)
    await accounts.end_all_sessions(db, user.id)
    await db.commit()
    log.info("admin %s reset the password of user %s", admin.id, user.id)
    return AdminPasswordResult(password=password, generated=generated)


def temporary_password() -> str:
    """Four groups of lowercase letters and digits: easy to read out, ~82 bits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(
    user_id: str,
    body: AdminUserDelete,
    admin: AdminUser,
    db: DB,
    hooks: UserDataDep,
    turns: Turns,
) -> Response:
    """Delete an account and everything in it, the way ``DELETE /api/me`` does
    (files' bytes, outputs, kernels, vectors): not one's own (that is Settings →
    Account, with the password) and never the last active administrator."""
    user = await accounts.get_user(db, user_id)
    if user is None:
        raise not_found("user")
    if user.id == admin.id:
        raise Problem(409, "Delete your own account from Settings → Account.", "own_account")
    if body.confirm_email.strip().lower() != user.email.lower():
        raise Problem(422, "Type the user's email to confirm the deletion.", "confirm_email")
    await accounts.ensure_an_admin_remains(db, user, deleting=True)
    await delete_account(db, user, hooks)  # sessions and keys go with the row (cascade)
    await turns.revoke_user(user_id)  # its running answers, jobs and kernels end now
    log.info("admin %s deleted user %s", admin.id, user_id)
    return Response(status_code=204)


@router.get("/settings")
async def get_settings(admin: AdminUser, db: DB, settings: SettingsDep) -> InstanceSettings:
    return InstanceSettings(
        signup=await instance.signup_mode(db, settings),  # type: ignore[arg-type]
        default_model=await instance.default_model(db, settings),
    )


@router.patch("/settings")
async def update_settings(
    body: AdminSettingsUpdate, sync: Sync, admin: AdminUser, db: DB, settings: SettingsDep
) -> InstanceSettings:
    if body.signup is not None:
        await instance.set_value(db, "signup", body.signup)
    if "default_model" in body.model_fields_set and not body.default_model:
        # null (the page's "Automatic"): back to the configured default or the first model.
        await instance.clear_value(db, "default_model")
    elif body.default_model is not None and is_auto(body.default_model):
        await instance.set_value(db, "default_model", AUTO)  # chats naming no model route
    elif body.default_model is not None:
        registry = await sync.ensure_fresh(db)
        await registry.resolve(body.default_model)  # ModelNotFound -> 404
        await instance.set_value(db, "default_model", body.default_model)
    await db.commit()
    sync.invalidate()
    return await get_settings(admin, db, settings)


@router.get("/providers")
async def list_providers(sync: Sync, admin: AdminUser, db: DB) -> ProviderList:
    registry = await sync.ensure_fresh(db)
    await registry.list_models()  # discovery first, so each row shows its models
    return ProviderList(items=[ProviderInfo(**p) for p in registry.providers_info()])


@router.post("/providers", status_code=201)
async def add_provider(body: ProviderCreate, sync: Sync, admin: AdminUser, db: DB) -> ProviderInfo:
    """Tests the connection first: 422 ``provider_test_failed`` unless ``force``."""
    info = await provider_admin.add_provider(
        db,
        sync,
        name=body.name,
        kind=body.kind,
        base_url=body.base_url,
        api_key=body.api_key or None,
        models=[m.model_dump() for m in body.models],
        headers=body.headers,
        force=body.force,
    )
    return ProviderInfo(**info)


@router.patch("/providers/{name}")
async def update_provider(
    name: str, body: ProviderUpdate, sync: Sync, admin: AdminUser, db: DB
) -> ProviderInfo:
    """Change a provider added here; fields left out keep their value, as does an
    empty key. A new endpoint, kind, key or headers are tested first (422
    ``provider_test_failed`` unless ``force``)."""
    changes: dict[str, Any] = {
        field: getattr(body, field)
        for field in ("base_url", "api_key")
        if field in body.model_fields_set
    }
    if changes.get("api_key") == "":
        del changes["api_key"]  # blank keeps the stored key (it is write-only)
    info = await provider_admin.update_provider(
        db,
        sync,
        name,
        kind=body.kind,
        models=None if body.models is None else [m.model_dump() for m in body.models],
        headers=body.headers,
        force=body.force,
        **changes,
    )
    return ProviderInfo(**info)


@router.delete("/providers/{name}", status_code=204)
async def delete_provider(name: str, sync: Sync, admin: AdminUser, db: DB) -> Response:
    await provider_admin.delete_provider(db, sync, name)
    return Response(status_code=204)


@router.post("/providers/test")
async def test_provider(body: ProviderTest, sync: Sync, admin: AdminUser) -> ProviderTestResult:
    found = await provider_admin.test_endpoint(
        sync, body.kind, body.base_url, body.api_key, body.headers
    )
    return ProviderTestResult(ok=found.ok, models=found.models, error=found.error)


@router.post("/providers/{name}/test")
async def test_saved_provider(
    name: str, sync: Sync, admin: AdminUser, db: DB
) -> ProviderTestResult:
    """Test any provider on the admin page, stored here or from the config file."""
    found = await provider_admin.test_provider(db, sync, name)
    return ProviderTestResult(ok=found.ok, models=found.models, error=found.error)
