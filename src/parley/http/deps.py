"""Request dependencies: the database session, shared services and the requesting principal.

Handlers reach every service through a typed dependency from here
(``Turns``, ``Models``, ``service(MemoryService)``...): this module is the only
place that reads ``request.app.state``, where the composition root
(``parley.api.app``) put the settings, the database and the ``Services`` box.

This is the single authorization entry point: every handler that touches a
user's data takes ``CurrentUser`` and passes ``user.id`` to stores that scope
every query by it. Credentials are accepted in exactly two places: the
httpOnly session cookie (with a CSRF token on writes) and an API key in the
``Authorization: Bearer`` header. Any other header (``x-api-key``...) is ignored.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Request, WebSocket
from sqlalchemy.ext.asyncio import AsyncSession

from parley.auth import accounts
from parley.auth.scopes import PROJECT_GROUPS, EndpointGroup, KeyScopes, ProjectRefused
from parley.config import Settings
from parley.container import Key, MissingService, Services
from parley.http.problems import Problem
from parley.instance.providers import RegistrySync
from parley.providers.registry import ModelRegistry
from parley.storage.db import Database
from parley.storage.tables import User
from parley.tools import ToolRegistry
from parley.turns import TurnService
from parley.turns.options import PROJECT_ACCESS
from parley.usage.ledger import UsageLedger

T = TypeVar("T")

SESSION_COOKIE = "parley_session"
CSRF_COOKIE = "parley_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROJECT_HEADER = "x-parley-project"  # the project a /v1 request runs in (auth.scopes)


# The dependencies below are ``async def`` although they never wait: FastAPI runs a
# plain ``def`` dependency in a worker thread, a hop that cost every request about
# a millisecond (more on a busy machine) for reading an attribute.


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


def service(key: type[T] | Key[T]) -> Callable[..., Any]:
    """A dependency that hands a handler the service under ``key``.

    Use as ``Annotated[MemoryService, Depends(service(MemoryService))]``. A service
    whose feature is not running answers 503 rather than failing inside the handler.
    """

    async def dependency(services: ServicesDep) -> T:
        try:
            return services.require(key)
        except MissingService:
            raise Problem(503, "This part of Parley is not running.", "unavailable") from None

    return dependency


# Where ``parley.http.guard`` leaves the principal it resolved before the body was
# read, and the session it used (the handler's ``DB`` is that same session).
_RESOLVED = "parley.principal"
_SESSION = "parley.session"


async def get_db(request: Request, services: ServicesDep) -> AsyncIterator[AsyncSession]:
    opened: AsyncSession | None = request.scope.get("state", {}).get(_SESSION)
    if opened is not None:  # the guard's, closed by the guard when the handler returns
        yield opened
        return
    async with services.require(Database).session() as session:
        yield session


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DB = Annotated[AsyncSession, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Turns = Annotated[TurnService, Depends(service(TurnService))]
Models = Annotated[ModelRegistry, Depends(service(ModelRegistry))]
Sync = Annotated[RegistrySync, Depends(service(RegistrySync))]
Tools = Annotated[ToolRegistry, Depends(service(ToolRegistry))]
Ledger = Annotated[UsageLedger, Depends(service(UsageLedger))]


@dataclass(slots=True)
class Principal:
    user: User
    via: Literal["session", "api_key"]
    session_token: str | None = None
    api_key_id: str | None = None  # with ``via="api_key"``: revoking it stops its turns
    scopes: KeyScopes = field(default_factory=KeyScopes)  # an API key's limits; a session has none
    project_id: str | None = None  # the project a /v1 request runs in (``in_project``)

    def may_use(self, group: str) -> bool:
        """Whether this caller may call the ``/v1`` endpoint group ``group``."""
        return self.scopes.allows_endpoint(group)

    def may_use_model(self, ref: str) -> bool:
        """Whether this caller may use the model ``ref`` (``provider/model``): every
        ``/v1`` route that resolves a model asks this (the Responses routes too)."""
        return self.scopes.allows_model(ref)


def _unauthorized(detail: str, code: str = "not_signed_in") -> Problem:
    return Problem(401, detail, code, headers={"WWW-Authenticate": 'Bearer realm="parley"'})


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def principal_from_api_key(db: AsyncSession, authorization: str) -> Principal:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send an API key as 'Authorization: Bearer <key>'.", "invalid_api_key")
    found = await accounts.api_key_user(db, token.strip())
    if found.expired_at is not None:
        raise _unauthorized(
            f"This API key expired on {_when(found.expired_at)}; create a new one in "
            "Settings → API keys.",
            "api_key_expired",
        )
    if found.user is None or found.key is None:
        raise _unauthorized(
            "This API key is not valid or was revoked; create a new one in Settings.",
            "invalid_api_key",
        )
    if found.touched:
        await db.commit()  # keeps the key's last-use time (written at most once a minute)
    return Principal(found.user, "api_key", api_key_id=found.key.id, scopes=found.scopes)


async def _resolved(request: Request, db: AsyncSession) -> Principal | None:
    """The principal the guard already resolved for this request (its user
    belongs to the same session the handler gets)."""
    found: Principal | None = request.scope.get("state", {}).get(_RESOLVED)
    return found


def remember_principal(request: Request, principal: Principal, session: AsyncSession) -> None:
    """For the guard: the handler's principal and ``DB`` dependencies reuse these."""
    state = request.scope.setdefault("state", {})
    state[_RESOLVED] = principal
    state[_SESSION] = session


async def get_principal(request: Request, db: DB) -> Principal:
    """A signed-in browser (session cookie, CSRF token on writes) or an API key."""
    if (resolved := await _resolved(request, db)) is not None:
        return resolved
    authorization = request.headers.get("authorization")
    if authorization:
        principal = await principal_from_api_key(db, authorization)
        if not principal.scopes.unlimited:
            raise Problem(
                403,
                "This API key is limited to parts of the OpenAI-compatible API (/v1); "
                "use a key without limits here.",
                "key_scope",
            )
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthorized("Sign in to continue.")
    found = await accounts.session_user(db, token)
    if found is None:
        raise _unauthorized("Your session has expired; sign in again.", "session_expired")
    user, session_row = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, session_row.csrf_token):
            raise Problem(
                403,
                "Missing or wrong CSRF token: reload the page and try again.",
                "csrf_failed",
            )
    return Principal(user, "session", token)


async def api_key_principal(request: Request, db: DB) -> Principal:
    """An API key only (the OpenAI-compatible ``/v1`` routes take no cookie)."""
    if (resolved := await _resolved(request, db)) is not None:
        return resolved
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Problem(
            401,
            "This endpoint takes a Parley API key: 'Authorization: Bearer pk-...'.",
            "missing_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="parley"'},
        )
    return await principal_from_api_key(db, authorization)


# Every dependency that says who is asking; ``parley.http.guard`` runs the one a
# route needs before its body is read.
PRINCIPAL_DEPENDENCIES = (get_principal, api_key_principal)


def require_scope(principal: Principal, group: EndpointGroup) -> None:
    """Raise 403 unless the key's scopes include the endpoint group ``group``."""
    if not principal.may_use(group):
        allowed = ", ".join(principal.scopes.endpoints)
        raise Problem(
            403,
            f"This API key may not use the {group} endpoints (it is limited to: "
            f"{allowed}). Create a key with that scope in Settings → API keys.",
            "key_scope",
        )


async def in_project(principal: Principal, named: str | None, services: Services) -> Principal:
    """The principal of a request that holds chats, with the project it runs in
    (``parley.auth.scopes``: the ``X-Parley-Project`` header, or the key's only
    project). Asks the projects feature now whether the key's owner may still use
    it (no cached permissions); a viewer may read a project but not add chats to
    it, so the API, which adds chats, needs an editor or the owner."""
    try:
        project = principal.scopes.project_for(named)
    except ProjectRefused as exc:
        raise Problem(403, exc.message, "project_scope") from None
    if project is None:
        return principal
    access = services.get(PROJECT_ACCESS)
    role = await access(principal.user.id, project) if access is not None else None
    if role is None:
        raise Problem(
            404,
            f"No project {project!r} is open to you: it was deleted, or you are no "
            "longer a member.",
            "project_not_found",
        )
    if role == "viewer":
        raise Problem(
            403,
            f"You may only view project {project!r}; working in it through the API "
            "needs an editor's role.",
            "project_editor_only",
        )
    return replace(principal, project_id=project)


def api_key_for(group: EndpointGroup) -> Callable[..., Any]:
    """The dependency of a ``/v1`` route in endpoint group ``group``: an API key
    whose scopes include the group (403 ``permission_error`` otherwise), and for
    the groups that hold chats, the project the request runs in (``in_project``).
    The one place endpoint and project scopes are enforced; use the aliases below
    (``ChatKey``...). The guard still authenticates before the body is read (the
    key dependency is inside this one); the scopes are checked after."""

    async def dependency(
        request: Request,
        principal: Annotated[Principal, Depends(api_key_principal)],
        services: ServicesDep,
    ) -> Principal:
        require_scope(principal, group)
        if group in PROJECT_GROUPS:
            return await in_project(principal, request.headers.get(PROJECT_HEADER), services)
        return principal

    dependency.__name__ = f"api_key_for_{group}"
    return dependency


def model_allowed(principal: Principal, ref: str) -> None:
    """Raise 403 unless ``principal`` may use model ``ref`` (for ``/v1`` routes)."""
    if not principal.may_use_model(ref):
        raise Problem(
            403,
            f"This API key may not use the model {ref!r} (it is limited to: "
            f"{', '.join(principal.scopes.models)}).",
            "model_not_allowed",
            param="model",
        )


async def get_current_user(principal: Annotated[Principal, Depends(get_principal)]) -> User:
    return principal.user


async def get_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    if user.role != "admin":
        raise Problem(403, "Only an administrator can do this.", "admin_only")
    return user


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
ApiKeyPrincipal = Annotated[Principal, Depends(api_key_principal)]
# An API key allowed to use one endpoint group of ``/v1`` (``api_key_for``).
ModelsKey = Annotated[Principal, Depends(api_key_for("models"))]
ChatKey = Annotated[Principal, Depends(api_key_for("chat"))]
ResponsesKey = Annotated[Principal, Depends(api_key_for("responses"))]
ConversationsKey = Annotated[Principal, Depends(api_key_for("conversations"))]
EmbeddingsKey = Annotated[Principal, Depends(api_key_for("embeddings"))]
AudioKey = Annotated[Principal, Depends(api_key_for("audio"))]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(get_admin)]


async def websocket_api_key(websocket: WebSocket) -> tuple[Principal, Services]:
    """Who opened a WebSocket (``/v1/responses`` in WebSocket mode): an API key in
    the handshake's ``Authorization`` header; and the app's services (a socket
    has no request, so the HTTP dependencies above do not apply). Raises
    ``Problem`` (401) like ``api_key_principal``."""
    services: Services = websocket.app.state.services
    authorization = websocket.headers.get("authorization")
    if not authorization:
        raise _unauthorized(
            "This endpoint takes a Parley API key: 'Authorization: Bearer pk-...'.",
            "missing_api_key",
        )
    async with services.require(Database).session() as session:
        principal = await principal_from_api_key(session, authorization)
    require_scope(principal, "responses")
    principal = await in_project(principal, websocket.headers.get(PROJECT_HEADER), services)
    return principal, services
