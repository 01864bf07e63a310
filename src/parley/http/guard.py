"""Who is asking is settled before a request's body is read.

FastAPI reads (and, for multipart forms, spools to disk) a route's body
*before* it solves the route's dependencies, so an anonymous client could make
the server receive and store a whole upload only to be told 401 at the end.
``GuardedRoute``, the route class of every Parley router, closes that on every
route that takes a body: its handler runs the route's own principal dependency
(one of ``deps.PRINCIPAL_DEPENDENCIES``: credentials, CSRF token, disabled
account) first, on headers alone. A refusal is answered at once, without
reading a byte of the body; an accepted principal, and the session that found
it, are left for the route's dependencies, which reuse them: the guard costs no
extra session or query. (A route class,
not a wrapper applied afterwards: FastAPI builds included routes' handlers
lazily, through ``get_route_handler``.)

The body's size is bounded earlier still, by ``middleware.BodyLimit``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from parley.http.deps import PRINCIPAL_DEPENDENCIES, remember_principal, services_of
from parley.storage.db import Database

__all__ = ["GuardedRoute"]


def _principal_dependency(dependant: Dependant) -> Callable[..., Any] | None:
    """The principal dependency somewhere in a route's dependency tree, if any."""
    stack = [dependant]
    while stack:
        node = stack.pop()
        if node.call in PRINCIPAL_DEPENDENCIES:
            return node.call
        stack.extend(node.dependencies)
    return None


class GuardedRoute(APIRoute):
    """Every Parley router's route class (``APIRouter(route_class=GuardedRoute)``):
    a route that reads a body and needs a principal resolves the principal first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        authenticate = _principal_dependency(self.dependant)
        if self.body_field is None or authenticate is None:
            return handler  # no body FastAPI would read early, or no caller to know

        async def guarded(request: Request) -> Response:
            database = services_of(request).require(Database)
            async with database.session() as session:  # the handler's ``DB`` too
                principal = await authenticate(request, session)  # headers only; a Problem ends it
                remember_principal(request, principal, session)
                return await handler(request)

        return guarded
