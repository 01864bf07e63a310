"""Sign-up, sign-in, sign-out and the current user."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from parley.api.schemas import AuthConfig, LoginIn, SignupIn, UserEnvelope
from parley.auth import accounts
from parley.auth.passwords import password_problem
from parley.config import Settings
from parley.http.deps import CSRF_COOKIE, DB, SESSION_COOKIE, CurrentPrincipal, SettingsDep
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.instance import values as instance
from parley.storage.tables import User

router = APIRouter(route_class=GuardedRoute, prefix="/api/auth", tags=["auth"])


def _set_cookies(response: Response, settings: Settings, token: str, csrf: str) -> None:
    max_age = settings.session_ttl_hours * 3600
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    # Readable by the page so it can echo it in X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        httponly=False,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/",
    )


async def _start_session(
    request: Request, response: Response, db: DB, settings: Settings, user: User
) -> UserEnvelope:
    new = await accounts.create_session(
        db,
        user,
        ttl=timedelta(hours=settings.session_ttl_hours),
        user_agent=request.headers.get("user-agent", ""),
    )
    await db.commit()
    _set_cookies(response, settings, new.token, new.csrf_token)
    return UserEnvelope.from_row(user)


@router.get("/config")
async def auth_config(db: DB, settings: SettingsDep) -> AuthConfig:
    """What the sign-in page needs to know: may people sign up, is this the first account."""
    return AuthConfig(
        signup=await instance.signup_mode(db, settings),  # type: ignore[arg-type]
        has_users=await accounts.count_users(db) > 0,
        currency=settings.currency,
    )


@router.post(
    "/signup",
    status_code=201,
    responses={202: {"model": UserEnvelope, "description": "Waiting for an admin's approval"}},
)
async def signup(
    body: SignupIn, request: Request, response: Response, db: DB, settings: SettingsDep
) -> UserEnvelope:
    mode = await instance.signup_mode(db, settings)
    first = await accounts.count_users(db) == 0
    if not first and mode == "closed":
        raise Problem(
            403, "Sign-ups are closed; ask an administrator for an account.", "signup_closed"
        )
    if problem := password_problem(body.password):
        raise Problem(422, problem, "weak_password")
    status = "pending" if (not first and mode == "approval") else "active"
    user = await accounts.create_user(
        db, email=body.email, password=body.password, name=body.name, status=status
    )
    if user.status == "pending":
        await db.commit()
        response.status_code = 202
        return UserEnvelope.from_row(user)
    return await _start_session(request, response, db, settings, user)


@router.post("/login")
async def login(
    body: LoginIn, request: Request, response: Response, db: DB, settings: SettingsDep
) -> UserEnvelope:
    client = request.client.host if request.client else "unknown"
    keys = [f"email:{accounts.normalize_email(body.email)}", f"ip:{client}"]
    window = settings.login_window_s
    if await accounts.too_many_attempts(db, keys, settings.login_attempts_per_window, window):
        raise Problem(
            429,
            "Too many failed sign-in attempts; wait a few minutes and try again.",
            "too_many_attempts",
            headers={"Retry-After": str(window)},
        )
    user = await accounts.authenticate(db, body.email, body.password)
    if user is None:
        await accounts.record_failed_attempt(db, keys, window)
        await db.commit()
        raise Problem(401, "Wrong email or password.", "bad_credentials")
    if user.status == "pending":
        raise Problem(403, "Your account is waiting for an administrator's approval.", "pending")
    if user.status != "active":
        raise Problem(403, "This account is disabled; contact an administrator.", "disabled")
    await accounts.clear_attempts(db, keys)
    return await _start_session(request, response, db, settings, user)


@router.post("/logout", status_code=204)
async def logout(principal: CurrentPrincipal, db: DB) -> Response:
    if principal.session_token:
        await accounts.end_session(db, principal.session_token)
        await db.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me")
async def me(principal: CurrentPrincipal) -> UserEnvelope:
    return UserEnvelope.from_row(principal.user)
