"""Users, browser sessions, API keys and the sign-in rate limit.

The first account ever created becomes the admin. Disabled and pending users
cannot sign in, and their existing sessions and keys stop working at once
(every request re-reads the user), so a revoked admin keeps nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parley.auth.passwords import dummy_hash, hash_password, verify_password
from parley.auth.scopes import KeyScopes
from parley.auth.tokens import digest, new_api_key, new_token
from parley.errors import LastAdmin
from parley.storage.tables import ApiKey, LoginAttempt, User, utcnow
from parley.storage.tables import Session as SessionRow

KEY_TOUCH_INTERVAL = timedelta(seconds=60)


class AccountError(Exception):
    """A request about accounts that cannot be honoured; ``message`` is for the user."""

    def __init__(self, message: str, status: int = 400, code: str = "account_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def count_users(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def get_user(db: AsyncSession, user_id: str) -> User | None:
    return await db.get(User, user_id)


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == normalize_email(email)))


async def create_user(
    db: AsyncSession,
    *,
    email: str,
    password: str,
    name: str = "",
    role: str | None = None,
    status: str = "active",
) -> User:
    """Create an account; the very first one is an active admin whatever was asked."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 320:
        raise AccountError("Enter a valid email address.", 422, "invalid_email")
    if await user_by_email(db, email) is not None:
        raise AccountError("An account with this email already exists.", 409, "email_taken")
    first = await count_users(db) == 0
    user = User(
        email=email,
        name=name.strip()[:200] or email.split("@")[0],
        password_hash=await hash_password(password),
        role="admin" if first else (role or "user"),
        status="active" if first else status,
    )
    db.add(user)
    await db.flush()
    return user


async def ensure_an_admin_remains(
    db: AsyncSession,
    user: User,
    *,
    role: str | None = None,
    status: str | None = None,
    deleting: bool = False,
) -> None:
    """Raise ``LastAdmin`` when giving ``user`` this role or status (or deleting the
    account) would leave no active administrator.

    The one place the rule lives: an admin demoting or suspending someone and a
    user deleting their own account both ask it. Only a change that takes an
    active admin away counts; a disabled admin may be changed freely.
    """
    if user.role != "admin" or user.status != "active":
        return
    stays = not deleting and (role or user.role) == "admin" and (status or user.status) == "active"
    if stays:
        return
    others = await db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.status == "active", User.id != user.id)
    )
    if not others:
        raise LastAdmin(
            "Parley needs at least one active administrator; make someone else an admin first."
        )


async def authenticate(db: AsyncSession, email: str, password: str) -> User | None:
    """The user if the password matches, else None (constant work either way)."""
    user = await user_by_email(db, email)
    hashed = user.password_hash if user else await asyncio.to_thread(dummy_hash)
    ok = await verify_password(hashed, password)
    return user if user is not None and ok else None


# ---------------------------------------------------------------- sessions


@dataclass(slots=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: datetime


async def create_session(
    db: AsyncSession, user: User, *, ttl: timedelta, user_agent: str = ""
) -> NewSession:
    token, csrf = new_token(), new_token()
    expires = utcnow() + ttl
    db.add(
        SessionRow(
            id=digest(token),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=expires,
            user_agent=user_agent[:300],
        )
    )
    await db.flush()
    return NewSession(token, csrf, expires)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


async def session_user(db: AsyncSession, token: str) -> tuple[User, SessionRow] | None:
    """The signed-in user and session for a cookie token, if valid and active."""
    row = await db.get(SessionRow, digest(token))
    if row is None or _aware(row.expires_at) <= utcnow():
        return None
    user = await db.get(User, row.user_id)
    if user is None or user.status != "active":
        return None
    return user, row


async def end_session(db: AsyncSession, token: str) -> None:
    await db.execute(delete(SessionRow).where(SessionRow.id == digest(token)))


async def end_all_sessions(db: AsyncSession, user_id: str, keep: str | None = None) -> None:
    query = delete(SessionRow).where(SessionRow.user_id == user_id)
    if keep is not None:
        query = query.where(SessionRow.id != digest(keep))
    await db.execute(query)


# ---------------------------------------------------------------- API keys


async def create_api_key(
    db: AsyncSession,
    user_id: str,
    name: str,
    *,
    expires_at: datetime | None = None,
    scopes: KeyScopes | None = None,
) -> tuple[ApiKey, str]:
    """A new key row and the plaintext key, which is shown once and never stored."""
    plaintext = new_api_key()
    row = ApiKey(
        user_id=user_id,
        name=name.strip()[:200] or "API key",
        prefix=plaintext[:10],
        key_hash=digest(plaintext),
        expires_at=expires_at,
        scopes=scopes.to_stored() if scopes is not None else None,
    )
    db.add(row)
    await db.flush()
    return row, plaintext


@dataclass(slots=True)
class KeyLookup:
    """What a presented API key turned out to be.

    ``user`` is set only for a usable key (known, unrevoked, unexpired, its owner
    active); ``expired_at`` says when a known key expired (the caller says so
    rather than "not valid"); ``touched``: its last-use time was written."""

    user: User | None
    key: ApiKey | None = None
    touched: bool = False
    expired_at: datetime | None = None

    @property
    def scopes(self) -> KeyScopes:
        return KeyScopes.from_stored(self.key.scopes if self.key is not None else None)


async def api_key_user(db: AsyncSession, plaintext: str) -> KeyLookup:
    """The active owner of a valid, unrevoked, unexpired key, and whether its
    last-use time was written (at most once a minute, so most requests only read)."""
    found = (
        await db.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == digest(plaintext))
        )
    ).first()
    if found is None:
        return KeyLookup(None)
    row, user = found
    if row.revoked_at is not None or user.status != "active":
        return KeyLookup(None)
    now = utcnow()
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        return KeyLookup(None, row, expired_at=_aware(row.expires_at))
    if row.last_used_at is None or now - _aware(row.last_used_at) > KEY_TOUCH_INTERVAL:
        await db.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        return KeyLookup(user, row, touched=True)
    return KeyLookup(user, row)


async def list_api_keys(db: AsyncSession, user_id: str) -> list[ApiKey]:
    rows = await db.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
    )
    return list(rows)


async def revoke_api_key(db: AsyncSession, user_id: str, key_id: str) -> bool:
    result = await db.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


# ---------------------------------------------------------------- rate limit


async def too_many_attempts(db: AsyncSession, keys: list[str], limit: int, window_s: int) -> bool:
    """Whether any of ``keys`` (email, client address) failed ``limit`` times in the window."""
    since = utcnow() - timedelta(seconds=window_s)
    count = await db.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.key.in_(keys), LoginAttempt.at > since)
        .group_by(LoginAttempt.key)
        .order_by(func.count().desc())
        .limit(1)
    )
    return int(count or 0) >= limit


async def record_failed_attempt(db: AsyncSession, keys: list[str], window_s: int) -> None:
    db.add_all(LoginAttempt(key=key) for key in keys)
    # Old rows are useless; pruning here keeps the table small without a job.
    cutoff = utcnow() - timedelta(seconds=window_s * 2)
    await db.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff))


async def clear_attempts(db: AsyncSession, keys: list[str]) -> None:
    await db.execute(delete(LoginAttempt).where(LoginAttempt.key.in_(keys)))
