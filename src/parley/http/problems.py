"""RFC 9457 problem documents for every error the API returns.

Handlers raise ``Problem`` (or let a ``ParleyError``/validation error escape);
the exception handlers here render ``application/problem+json`` with a stable
``code`` a client can branch on and a ``detail`` a person can act on. Under
``/v1/`` (the OpenAI-compatible API) the same errors are rendered as OpenAI
renders them instead, ``{"error": {"message", "type", "param", "code"}}``, so the
official SDKs raise their own exception classes with the message readable; that
choice is made here by path, once, for every ``/v1`` route (``error_response``). The
services below HTTP (chat turns, the features' rules) raise only the domain
errors of ``parley.errors``; ``DOMAIN_STATUS`` is the one place that gives each
its HTTP status, so no status code lives outside this layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from parley.auth.accounts import AccountError
from parley.errors import (
    BudgetExceeded,
    Busy,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    InvalidImport,
    LastAdmin,
    ModelNotFound,
    NoModelAvailable,
    NotFound,
    ParleyError,
    ProviderExists,
    ProviderNotStored,
    Refused,
    TooLarge,
    UnsupportedContent,
)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    502: "Provider error",
    503: "Unavailable",
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _TITLES.get(status, "error").lower().replace(" ", "_")
        self.headers = headers
        self.extra = extra


def problem_body(status: int, detail: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(
    status: int, detail: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, code, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# Domain errors of the services (``parley.errors``) and their HTTP status; the
# first class in a raised error's MRO found here wins, other ParleyErrors are 502.
DOMAIN_STATUS: dict[type[ParleyError], int] = {
    BudgetExceeded: 429,
    ModelNotFound: 404,
    NoModelAvailable: 503,
    LastAdmin: 409,
    ProviderExists: 409,
    ProviderNotStored: 404,
    InvalidImport: 422,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    TooLarge: 413,
    UnsupportedContent: 415,
    Gone: 410,
    Busy: 429,
    Forbidden: 403,
    Refused: 422,
}


def domain_status(exc: ParleyError) -> int:
    for cls in type(exc).__mro__:
        status = DOMAIN_STATUS.get(cls)
        if status is not None:
            return status
    return 502


def not_found(what: str = "resource") -> Problem:
    return Problem(404, f"No such {what}, or it is not yours.", "not_found")


def _field_path(loc: Sequence[Any]) -> str:
    """A validation error's location as a client names the field:
    ``messages[0].role`` (the leading ``body`` dropped)."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        loc = _field_path(err.get("loc", ()))
        errors.append({"field": loc, "message": err.get("msg", "invalid")})
    if not errors:
        return "The request is not valid.", errors
    first = errors[0]
    where = f" ({first['field']})" if first["field"] else ""
    return f"Invalid request{where}: {first['message']}.", errors


# ---------------------------------------------------------------- the /v1 shape

OPENAI_PREFIX = "/v1/"

# OpenAI's error ``type`` by HTTP status; other 4xx are ``invalid_request_error``,
# 5xx ``server_error``.
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX)


def openai_error_type(status: int) -> str:
    if status >= 500:
        return "server_error"
    return _OPENAI_TYPES.get(status, "invalid_request_error")


def openai_status(status: int) -> int:
    """OpenAI answers a request it cannot accept with 400, never 422: its clients
    treat 400 as "fix the request", so a ``/v1`` route says the same."""
    return 400 if status == 422 else status


def openai_error_body(status: int, message: str, code: str, param: str | None = None) -> Any:
    return {
        "error": {
            "message": message,
            "type": openai_error_type(status),
            "param": param,
            "code": code,
        }
    }


def error_document(
    path: str, status: int, detail: str, code: str, param: str | None = None, **extra: Any
) -> tuple[int, Any, str]:
    """(status, body, media type) of an error for a request to ``path``: an OpenAI
    error under ``/v1/``, a problem document elsewhere. Every error Parley sends
    (exception handlers, the body-size middleware) is made here."""
    if is_openai_path(path):
        return (
            openai_status(status),
            openai_error_body(status, detail, code, param),
            "application/json",
        )
    if param is not None:
        extra["param"] = param
    return status, problem_body(status, detail, code, **extra), PROBLEM_JSON


def error_response(
    path: str,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An error answer for a request to ``path`` (``extra["param"]``: the field at fault)."""
    param = extra.pop("param", None)
    status, body, media_type = error_document(path, status, detail, code, param, **extra)
    return JSONResponse(body, status_code=status, media_type=media_type, headers=headers)


def _respond(
    request: Request,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return error_response(request.url.path, status, detail, code, headers, **extra)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return _respond(request, exc.status, exc.detail, exc.code, exc.headers, **exc.extra)

    async def on_account(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AccountError)
        return _respond(request, exc.status, exc.message, exc.code)

    async def on_parley(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ParleyError)
        if isinstance(exc, BudgetExceeded):  # which limit, what is left, when it resets
            wait = exc.details.get("retry_after_s")
            headers = {"Retry-After": str(wait)} if isinstance(wait, int) else None
            return _respond(request, 429, exc.message, exc.code, headers, **exc.details)
        return _respond(request, domain_status(exc), exc.message, exc.code)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, errors = _validation_detail(exc)
        param = errors[0]["field"] or None if errors else None
        return _respond(request, 422, detail, "invalid_request", errors=errors, param=param)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(status, "Error")
        if status == 404:
            detail = "No such endpoint."
        elif status == 405:
            detail = "This endpoint does not accept that method."
        code = _TITLES.get(status, "error").lower().replace(" ", "_")
        return _respond(request, status, detail, code, getattr(exc, "headers", None))

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        return _respond(
            request,
            500,
            "Something went wrong on the server; it has been logged.",
            "internal_error",
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(AccountError, on_account)
    app.add_exception_handler(ParleyError, on_parley)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
