"""Upstream failures as ``ProviderError``s whose message says what to do.

Split from ``openai_compat.py`` because every HTTP adapter maps failures the
same way (``anthropic.py`` uses these too): an HTTP status becomes the error
of the error tree that fits it (a missing or rejected key, a denied model, rate
limiting with its ``Retry-After``, an outage, a bad request), and timeouts and
dropped connections from any SDK or ``httpx2`` become a timeout, a broken
stream or an unreachable server. The messages name the provider and the
setting to check, never the key.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from parley.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)

__all__ = [
    "protocol_error",
    "retry_after_of",
    "short_detail",
    "status_error",
    "transport_error",
]


def short_detail(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut at ``limit`` characters (an error body can be a page)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_error(
    provider: str,
    status: int,
    detail: str,
    *,
    model: str | None = None,
    has_key: bool = True,
    admin: bool = False,
    retry_after: float | None = None,
) -> ProviderError:
    """The ProviderError for an HTTP status from provider ``provider`` (``admin``:
    one added in Admin > Providers, whose key is set there); ``retry_after`` (the
    answer's ``Retry-After``, seconds) rides on the error for the retry policy."""
    error = _status_error(provider, status, detail, model=model, has_key=has_key, admin=admin)
    error.retry_after = retry_after
    return error


def retry_after_of(exc: Any) -> float | None:
    """Seconds from an SDK error's ``Retry-After`` header (a number of seconds; an
    HTTP date or garbage counts as not said), or None."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86_400 else None


def _status_error(
    provider: str,
    status: int,
    detail: str,
    *,
    model: str | None,
    has_key: bool,
    admin: bool,
) -> ProviderError:
    detail = short_detail(detail)
    if status == 401:
        if not has_key:
            where = (
                "enter one in Admin > Providers"
                if admin
                else "set api_key or api_key_env for it (or save a key in Admin > Providers)"
            )
            return ProviderAuthError(
                f"The provider '{provider}' needs an API key and none is configured; {where}."
            )
        where = (
            "check the key entered in Admin > Providers"
            if admin
            else "check the key in its api_key / api_key_env setting (or in Admin > Providers)"
        )
        return ProviderAuthError(
            f"The provider '{provider}' rejected the API key (HTTP 401); {where}."
        )
    if status == 403:
        what = f"model '{model}'" if model else "this request"
        return ProviderAuthError(
            f"The provider '{provider}' denied access to {what} (HTTP 403); check that "
            f"the API key has permission for it. Details: {detail}"
        )
    if status == 429:
        return ProviderRateLimited(
            f"The provider '{provider}' is rate-limiting requests (HTTP 429); wait a moment "
            f"and retry, or raise the account's limits. Details: {detail}"
        )
    if status >= 500:
        return ProviderUnavailable(
            f"The provider '{provider}' failed with HTTP {status}; it may be overloaded or "
            f"down, retry later. Details: {detail}"
        )
    if status == 404 and model:
        return ProviderBadRequest(
            f"The provider '{provider}' does not know model '{model}' (HTTP 404); check the "
            f"model name in its configuration. Details: {detail}"
        )
    return ProviderBadRequest(
        f"The provider '{provider}' refused the request (HTTP {status}): {detail}"
    )


def transport_error(
    provider: str, exc: BaseException, *, base_url: str, timeout: float, started: bool
) -> ProviderError:
    """Map timeouts and connection failures (from any SDK or httpx2 itself)."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException) or (
        "timeout" in type(exc).__name__.lower()
    ):
        return ProviderTimeout(
            f"The provider '{provider}' did not answer within {timeout:g}s; retry, or raise "
            "timeout_s for this provider if its answers are slow."
        )
    if started:
        return ProviderProtocolError(
            f"The connection to provider '{provider}' dropped in the middle of the answer; "
            "retry the message."
        )
    return ProviderUnavailable(
        f"Could not reach the provider '{provider}' at {base_url}; check that the server "
        "is running and that base_url is correct."
    )


def protocol_error(provider: str, what: str) -> ProviderProtocolError:
    return ProviderProtocolError(
        f"The provider '{provider}' {what}; retry the message, and if it keeps happening "
        "check that its base_url points at an API compatible with this provider kind."
    )
