"""The signed-in user's own account: profile, custom instructions, password,
data export and import, account deletion, and API keys.

Export, import and deletion are services (``parley.userdata``) over the core's
stores and every feature's hook; these handlers move bytes in and out.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from parley.api.schemas import (
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyPublic,
    MeUpdate,
    PasswordChange,
    PasswordConfirm,
    UsageSummary,
    UsageTotalOut,
    UserEnvelope,
)
from parley.auth import accounts
from parley.auth.passwords import hash_password, password_problem, verify_password
from parley.http.bodies import iso
from parley.http.deps import (
    CSRF_COOKIE,
    DB,
    SESSION_COOKIE,
    CurrentPrincipal,
    CurrentUser,
    Ledger,
    ServicesDep,
    SettingsDep,
    Turns,
    service,
)
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem, not_found
from parley.jsonshape import PREFERENCES, shape_error
from parley.timezones import find_zone
from parley.turns.options import PROJECT_ACCESS
from parley.userdata import UserDataHooks, archive
from parley.userdata.document import ExportDocument
from parley.userdata.service import (
    ImportReport,
    delete_account,
    export_user,
    import_user,
)

router = APIRouter(route_class=GuardedRoute, prefix="/api", tags=["me"])

UserDataDep = Annotated[UserDataHooks, Depends(service(UserDataHooks))]

_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


@router.patch("/me")
async def update_me(body: MeUpdate, user: CurrentUser, db: DB) -> UserEnvelope:
    if body.timezone is not None:
        if find_zone(body.timezone) is None:
            raise Problem(
                422,
                f"Unknown time zone {body.timezone!r}; use an IANA name such as Europe/Paris.",
                "invalid_timezone",
            )
        user.timezone = body.timezone
    if body.preferences is not None:  # its shape was checked (``Preferences``)
        merged = {**(user.stored_preferences() or {}), **body.preferences}
        if shape_error(merged, PREFERENCES) is not None:
            raise Problem(422, "Preferences are too large.", "invalid_preferences")
        user.preferences = merged
    for field in ("name", "about_me", "response_style"):
        value = getattr(body, field)
        if value is not None:
            setattr(user, field, value.strip() if field == "name" else value)
    await db.commit()
    return UserEnvelope.from_row(user)


@router.post("/me/password", status_code=204)
async def change_password(body: PasswordChange, principal: CurrentPrincipal, db: DB) -> Response:
    user = principal.user
    if not await verify_password(user.password_hash, body.current_password):
        raise Problem(403, "The current password is wrong.", "bad_credentials")
    if problem := password_problem(body.new_password):
        raise Problem(422, problem, "weak_password")
    user.password_hash = await hash_password(body.new_password)
    # Other browsers signed in as this user are signed out.
    await accounts.end_all_sessions(db, user.id, keep=principal.session_token)
    await db.commit()
    return Response(status_code=204)


@router.get(
    "/me/export",
    response_model=None,
    responses={
        200: {
            "model": ExportDocument,
            "content": {"application/zip": {}},
            "description": "The export: JSON, or with `files=true` a ZIP of "
            f"`{archive.DOCUMENT_NAME}` and `files/<sha256>` for each stored file.",
        }
    },
)
async def export_me(
    user: CurrentUser,
    db: DB,
    hooks: UserDataDep,
    files: Annotated[bool, Query(description="A ZIP with the files' bytes too.")] = False,
) -> Response:
    """Everything Parley stores about the user, as one download."""
    export = await export_user(db, user, hooks, with_files=files)
    await db.close()  # the bytes are read and written without the database
    if not files:
        body = await asyncio.to_thread(
            lambda: json.dumps(export.document, ensure_ascii=False, separators=(",", ":")).encode()
        )
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="parley-export.json"'},
        )
    # An unnamed temporary file: nothing is left behind however the download ends.
    spool = tempfile.TemporaryFile(prefix="parley-export-")  # noqa: SIM115
    try:
        await asyncio.to_thread(archive.write_zip, export.document, export.files, spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _read_and_close(spool),
        media_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="parley-export.zip"',
            "Content-Length": str(size),
        },
    )


async def _read_and_close(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(spool.read, _CHUNK):
            yield chunk
    finally:
        spool.close()


async def _receive(request: Request) -> IO[bytes]:
    """The request body in a temporary file (in memory while small), bounded."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > archive.IMPORT_MAX_BYTES:
                raise Problem(
                    413,
                    f"The import is larger than the {archive.IMPORT_MAX_BYTES:,}-byte limit.",
                    "body_too_large",
                )
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


@router.post(
    "/me/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A file from GET /api/me/export: the JSON or the ZIP.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ExportDocument"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_me(
    request: Request, user: CurrentUser, db: DB, hooks: UserDataDep
) -> ImportReport:
    """Add an export's conversations, memories, files, collections and settings to
    this account, with new ids (importing twice makes copies; nothing is replaced)."""
    upload = await _receive(request)
    try:
        unpacked = await asyncio.to_thread(archive.read_import, upload)
    finally:
        upload.close()
    try:
        return await import_user(db, user, hooks, unpacked.document, files=unpacked.files)
    finally:
        await asyncio.to_thread(unpacked.close)


@router.delete("/me", status_code=204)
async def delete_me(
    body: PasswordConfirm, user: CurrentUser, db: DB, hooks: UserDataDep, turns: Turns
) -> Response:
    if not await verify_password(user.password_hash, body.password):
        raise Problem(403, "The password is wrong; the account was not deleted.", "bad_credentials")
    await accounts.ensure_an_admin_remains(db, user, deleting=True)
    await delete_account(db, user, hooks)
    await turns.revoke_user(user.id)  # its running answers, jobs and kernels end now
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/keys")
async def list_keys(user: CurrentUser, db: DB) -> KeyList:
    return KeyList(items=[KeyPublic.from_row(k) for k in await accounts.list_api_keys(db, user.id)])


@router.post("/keys", status_code=201)
async def create_key(
    body: KeyCreate, user: CurrentUser, db: DB, services: ServicesDep
) -> KeyCreated:
    if body.scopes is not None and body.scopes.projects:  # only projects one may work in
        access = services.get(PROJECT_ACCESS)
        for project in body.scopes.projects:
            role = await access(user.id, project) if access is not None else None
            if role not in ("owner", "editor"):
                raise Problem(
                    422,
                    f"You cannot work in project {project!r} (no such project, or you "
                    "are not its owner or an editor), so a key cannot be limited to it.",
                    "invalid_request",
                    param="scopes.projects",
                )
    expires_at = body.expires_at
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at <= datetime.now(UTC):
            raise Problem(
                422,
                "The expiry is in the past; choose a later date.",
                "invalid_request",
                param="expires_at",
            )
    row, plaintext = await accounts.create_api_key(
        db,
        user.id,
        body.name,
        expires_at=expires_at,
        scopes=body.scopes.scopes() if body.scopes is not None else None,
    )
    await db.commit()
    return KeyCreated(**KeyPublic.from_row(row).model_dump(), key=plaintext)


@router.get("/me/usage")
async def my_usage(
    user: CurrentUser,
    db: DB,
    ledger: Ledger,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=366, description="Days back, today included.")] = 30,
) -> UsageSummary:
    """The caller's recorded usage (every model call made for them: chats, ``/v1``,
    titles, memory...), summed by day, model and API key."""
    totals = await ledger.totals(user.id, days)
    names = {k.id: k.name for k in await accounts.list_api_keys(db, user.id)}

    return UsageSummary(
        since=iso(totals.since) or "",
        currency=settings.currency,
        by_day=[UsageTotalOut.of(t) for t in totals.by_day],
        by_model=[UsageTotalOut.of(t) for t in totals.by_model],
        by_key=[UsageTotalOut.of(t, names.get(t.key or "")) for t in totals.by_key],
    )


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, user: CurrentUser, db: DB, turns: Turns) -> Response:
    if not await accounts.revoke_api_key(db, user.id, key_id):
        raise not_found("API key")
    await db.commit()
    await turns.revoke_api_key(key_id)  # what runs with the key stops now
    return Response(status_code=204)
