"""Password hashing with argon2id, off the event loop (a hash costs tens of ms)."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def password_problem(password: str) -> str | None:
    """A message the user can act on when ``password`` is unacceptable, else None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Passwords are limited to {MAX_PASSWORD_LENGTH} characters."
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(hashed: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, hashed, password)


@functools.cache
def dummy_hash() -> str:
    """A real hash to verify against when the account does not exist, so sign-in
    takes the same time whether or not the email is known. Made on first use, not
    at import: hashing is deliberately slow and would delay every start."""
    return _hasher.hash("parley-dummy-password")
