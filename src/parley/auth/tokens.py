"""Random tokens and their stored digests."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "pk-"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)
