"""The signed-in user's own account: profile, custom instructions, password,
data export, account deletion, and API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select

from parley.api.schemas import (
    KeyCreate,
    MeUpdate,
    PasswordChange,
    PasswordConfirm,
    conversation_out,
    key_out,
    message_out,
    user_out,
)
from parley.auth import accounts
from parley.auth.passwords import hash_password, password_problem, verify_password
from parley.http.deps import DB, CurrentPrincipal, CurrentUser
from parley.http.problems import Problem, not_found
from parley.storage.tables import Conversation, Message, User
from parley.timezones import find_zone

router = APIRouter(prefix="/api", tags=["me"])

MAX_PREFERENCES_BYTES = 8_000


@router.patch("/me")
async def update_me(body: MeUpdate, user: CurrentUser, db: DB) -> dict[str, Any]:
    if body.timezone is not None:
        if find_zone(body.timezone) is None:
            raise Problem(
                422,
                f"Unknown time zone {body.timezone!r}; use an IANA name such as Europe/Paris.",
                "invalid_timezone",
            )
        user.timezone = body.timezone
    if body.preferences is not None:
        if len(repr(body.preferences)) > MAX_PREFERENCES_BYTES:
            raise Problem(422, "Preferences are too large.", "invalid_preferences")
        user.preferences = {**(user.preferences or {}), **body.preferences}
    for field in ("name", "about_me", "response_style"):
        value = getattr(body, field)
        if value is not None:
            setattr(user, field, value.strip() if field == "name" else value)
    await db.commit()
    return {"user": user_out(user)}


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


@router.get("/me/export")
async def export_me(user: CurrentUser, db: DB) -> JSONResponse:
    """Everything Parley stores about the user, as one JSON download."""
    conversations = list(
        await db.scalars(
            select(Conversation)
            .where(Conversation.user_id == user.id)
            .order_by(Conversation.created_at)
        )
    )
    messages = list(
        await db.scalars(
            select(Message).where(Message.user_id == user.id).order_by(Message.created_at)
        )
    )
    by_conversation: dict[str, list[dict[str, Any]]] = {}
    for msg in messages:
        by_conversation.setdefault(msg.conversation_id, []).append(message_out(msg))
    keys = await accounts.list_api_keys(db, user.id)
    payload = {
        "format": "parley-export-1",
        "user": user_out(user),
        "api_keys": [key_out(k) for k in keys],
        "conversations": [
            {**conversation_out(c), "messages": by_conversation.get(c.id, [])}
            for c in conversations
        ],
    }
    return JSONResponse(
        payload,
        headers={"Content-Disposition": 'attachment; filename="parley-export.json"'},
    )


@router.delete("/me", status_code=204)
async def delete_me(body: PasswordConfirm, user: CurrentUser, db: DB) -> Response:
    if not await verify_password(user.password_hash, body.password):
        raise Problem(403, "The password is wrong; the account was not deleted.", "bad_credentials")
    if user.role == "admin":
        admins = list(
            await db.scalars(select(User.id).where(User.role == "admin", User.status == "active"))
        )
        if len(admins) <= 1:
            raise Problem(
                409,
                "You are the only administrator; make someone else an admin first.",
                "last_admin",
            )
    await db.execute(delete(Message).where(Message.user_id == user.id))
    await db.execute(delete(Conversation).where(Conversation.user_id == user.id))
    await db.delete(user)
    await db.commit()
    response = Response(status_code=204)
    response.delete_cookie("parley_session", path="/")
    response.delete_cookie("parley_csrf", path="/")
    return response


@router.get("/keys")
async def list_keys(user: CurrentUser, db: DB) -> dict[str, Any]:
    return {"items": [key_out(k) for k in await accounts.list_api_keys(db, user.id)]}


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, user: CurrentUser, db: DB) -> dict[str, Any]:
    row, plaintext = await accounts.create_api_key(db, user.id, body.name)
    await db.commit()
    return {**key_out(row), "key": plaintext}


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, user: CurrentUser, db: DB) -> Response:
    if not await accounts.revoke_api_key(db, user.id, key_id):
        raise not_found("API key")
    await db.commit()
    return Response(status_code=204)
