"""Parley's exception tree, drawn once here.

    ParleyError                      base; ``code`` is stable, ``message`` is for the user
    ├── ProviderError                a model provider failed
    │   ├── ProviderAuthError        bad or missing key (401/403)         code=provider_auth
    │   ├── ProviderRateLimited      429; retryable                       code=provider_rate_limited
    │   ├── ProviderUnavailable      5xx, connection refused; retryable   code=provider_unavailable
    │   ├── ProviderTimeout          no answer in time; retryable         code=provider_timeout
    │   ├── ProviderProtocolError    malformed or cut stream; retryable   code=provider_protocol
    │   ├── ProviderBadRequest       the provider refused the request     code=provider_bad_request
    │   └── BudgetExceeded           a budget or rate limit is reached    code=budget_exceeded (429)
    ├── ModelNotFound                no such model configured             code=model_not_found
    ├── NoModelAvailable             no model to answer with at all       code=no_model (503)
    ├── ToolError                    a tool failed (reported to the model, not fatal)
    ├── LimitExceeded                max steps / deadline                 code=limit_exceeded
    ├── LastAdmin                    would leave no active administrator  code=last_admin
    ├── ProviderExists               a provider of that name exists       code=provider_exists
    ├── ProviderNotStored            not added in the web app (read-only) code=not_found
    ├── InvalidImport                an import file Parley cannot read    code=invalid_import
    └── Refused                      a request the rules of a feature refuse; ``code`` per case
        ├── NotFound                 no such record, or not the user's    code=not_found (404)
        ├── Conflict                 the name or state is taken           (409)
        ├── Invalid                  content the rules do not accept      (422)
        ├── TooLarge                 over a size limit                    (413)
        ├── UnsupportedContent       a kind of file Parley cannot take    (415)
        ├── Gone                     the record exists, its bytes do not  (410)
        ├── Forbidden                an API key's scopes do not allow it  (403)
        └── Busy                     too much at once; try again shortly  (429)

Services (chat turns, the features' rules) raise these and know no HTTP;
``parley.http.problems`` maps the tree to RFC 9457 problem documents in one
table. The engine turns provider errors into ``ErrorEvent`` so a stream never
hangs.
"""

from __future__ import annotations


class ParleyError(Exception):
    code = "error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderError(ParleyError):
    code = "provider_error"
    # Seconds the provider asked to wait before trying again (its ``Retry-After``
    # header), when it said; ``parley.providers.failover`` honours it.
    retry_after: float | None = None


class AccessRevoked(ProviderError):
    """A relayed stream ended because its API key was revoked or its account
    disabled (a ``ProviderError`` so the relay reports it like any broken stream)."""

    code = "access_revoked"


class ProviderAuthError(ProviderError):
    code = "provider_auth"


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    retryable = True


class ProviderProtocolError(ProviderError):
    code = "provider_protocol"
    retryable = True


class ProviderBadRequest(ProviderError):
    code = "provider_bad_request"


class BudgetExceeded(ProviderError):
    """A call refused before it reached the model: a budget is spent or a rate limit
    reached (``parley.budgets``). A ``ProviderError`` so the engine ends a tool loop's
    call with it like any failed call; ``details`` (which limit, what is left, when it
    resets) go into the problem document. The message names no setting: users see it."""

    code = "budget_exceeded"

    def __init__(self, message: str, code: str, details: dict[str, object]) -> None:
        super().__init__(message)
        self.code = code  # budget_exceeded (cost) or rate_limited (requests, tokens)
        self.details = details


class ModelNotFound(ParleyError):
    code = "model_not_found"


class NoModelAvailable(ParleyError):
    """No model was asked for and none is the default: no provider is configured
    and the local model is off (``parley doctor`` says why)."""

    code = "no_model"


class ToolError(ParleyError):
    code = "tool_error"


class LimitExceeded(ParleyError):
    code = "limit_exceeded"


class LastAdmin(ParleyError):
    """A role change, suspension or account deletion that would leave Parley
    without an active administrator (``parley.auth.accounts.ensure_an_admin_remains``)."""

    code = "last_admin"


class ProviderExists(ParleyError):
    code = "provider_exists"


class ProviderNotStored(ParleyError):
    """No provider of that name was added in the web app (config-file and
    environment providers are read-only there)."""

    code = "not_found"


class InvalidImport(ParleyError):
    """An import that is not a Parley export, or one this version cannot read."""

    code = "invalid_import"


class Refused(ParleyError):
    """A request a feature's rules refuse (upload limits, MCP server names...).

    ``code`` is the class's unless the raiser names a more precise one
    (``file_too_large``, ``name_taken``): clients branch on it."""

    code = "refused"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NotFound(Refused):
    """No such record, or another user's: the two are never told apart."""

    code = "not_found"

    def __init__(self, what: str, message: str | None = None) -> None:
        super().__init__(message or f"No such {what}, or it is not yours.")
        self.what = what


class Conflict(Refused):
    code = "conflict"


class Invalid(Refused):
    code = "invalid_request"


class TooLarge(Refused):
    code = "too_large"


class UnsupportedContent(Refused):
    code = "unsupported_media_type"


class Gone(Refused):
    code = "gone"


class Forbidden(Refused):
    """The caller is who they say, but may not do this (an API key's scopes)."""

    code = "permission_denied"


class Busy(Refused):
    """Too much of something at once (uploads in flight): try again shortly."""

    code = "too_many_requests"


# What an ordinary user is told when a model call fails. The messages above are for
# whoever runs the server (they name providers, addresses, timeouts, setting names);
# a user cannot act on those, so they get what they can do instead. Administrators
# see the detailed message (and the server logs it).
_ASK_ADMIN = "if it keeps happening, ask your administrator"
USER_WORDING: dict[str, str] = {
    "provider_auth": "The model's provider refused Parley's access. Ask your administrator "
    "to check the model's settings.",
    "provider_unavailable": f"The model cannot be reached right now. Try again in a moment; "
    f"{_ASK_ADMIN}.",
    "provider_timeout": f"The model took too long to answer. Try again; {_ASK_ADMIN}.",
    "provider_rate_limited": "The model is busy right now. Wait a moment and try again.",
    "provider_protocol": f"The answer was cut off by the model's connection. Try again; "
    f"{_ASK_ADMIN}.",
    "provider_bad_request": f"The model refused this request. Try rephrasing it or another "
    f"model; {_ASK_ADMIN}.",
    "model_not_found": f"This model is not available. Choose another one; {_ASK_ADMIN}.",
    "no_model": "No model is available yet. Ask your administrator to set one up.",
}
_FALLBACK_WORDING = f"Something went wrong while answering. Try again; {_ASK_ADMIN}."


def user_wording(code: str) -> str:
    """The message an ordinary user sees for error ``code`` (no addresses, no setting
    names, no provider internals)."""
    return USER_WORDING.get(code, _FALLBACK_WORDING)
