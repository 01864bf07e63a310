"""RFC 9457 problem documents for every error the API returns.

Handlers raise ``Problem`` (or let a ``ParleyError``/validation error escape);
the exception handlers here render ``application/problem+json`` with a stable
``code`` a client can branch on and a ``detail`` a person can act on. The
services below HTTP (chat turns, the features' rules) raise only the domain
errors of ``parley.errors``; ``DOMAIN_STATUS`` is the one place that gives each
its HTTP status, so no status code lives outside this layer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from parley.auth.accounts import AccountError
from parley.errors import (
    Busy,
    Conflict,
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


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        errors.append({"field": loc, "message": err.get("msg", "invalid")})
    if not errors:
        return "The request is not valid.", errors
    first = errors[0]
    where = f" ({first['field']})" if first["field"] else ""
    return f"Invalid request{where}: {first['message']}.", errors


def _respond(
    request: Request,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    if request.url.path.startswith("/v1/"):
        # OpenAI SDKs read `error.message`; the problem fields stay alongside.
        extra["error"] = {"message": detail, "type": code, "code": code}
    return problem_response(status, detail, code, headers, **extra)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return _respond(request, exc.status, exc.detail, exc.code, exc.headers, **exc.extra)

    async def on_account(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AccountError)
        return _respond(request, exc.status, exc.message, exc.code)

    async def on_parley(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ParleyError)
        return _respond(request, domain_status(exc), exc.message, exc.code)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, errors = _validation_detail(exc)
        return _respond(request, 422, detail, "invalid_request", errors=errors)

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
