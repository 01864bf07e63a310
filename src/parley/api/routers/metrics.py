"""``GET /metrics`` (Prometheus) and Admin → Metrics and tracing.

``/metrics`` answers only with the metrics token (``Authorization: Bearer
<token>``): the admin's (``/api/admin/telemetry``), else ``metrics_token`` from
the config file or ``PARLEY_METRICS_TOKEN``. Without any token it answers 404:
metrics name providers, models and spending, so they are never public by
default. The circuit breakers' states are read from the shared table at each
scrape; everything else is counted as it happens (``parley.telemetry.metrics``).

The tracing endpoint an admin sets applies at once on the worker that saved it
and on the others when they start (each reads it at start-up).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from parley.http.bodies import Body
from parley.http.deps import DB, AdminUser, ServicesDep, SettingsDep, Turns
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.instance.values import clear_value, get_value, set_value
from parley.telemetry.metrics import CONTENT_TYPE, Metrics, multiprocess_dir
from parley.telemetry.tracing import Tracing

router = APIRouter(route_class=GuardedRoute, tags=["metrics"])

TOKEN_KEY = "metrics_token"  # noqa: S105  (the instance setting's name, not a secret)
OTLP_KEY = "otlp_endpoint"
Source = Literal["admin", "config", "none"]


async def metrics_token(db: DB, settings: SettingsDep) -> str | None:
    value = await get_value(db, TOKEN_KEY, None)
    return str(value) if value else settings.metrics_token or None


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    request: Request, db: DB, settings: SettingsDep, services: ServicesDep, turns: Turns
) -> Response:
    """The Prometheus metrics; 401 without the metrics token, 404 when none is set."""
    token = await metrics_token(db, settings)
    if token is None:
        raise Problem(404, "Metrics are not enabled on this server.", "not_found")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
        raise Problem(
            401,
            "Send the metrics token as 'Authorization: Bearer <token>'.",
            "not_signed_in",
            headers={"WWW-Authenticate": 'Bearer realm="parley-metrics"'},
        )
    found = services.get(Metrics)
    if found is None:
        raise Problem(404, "Metrics are not enabled on this server.", "not_found")
    states = await turns.failover.breaker.states()
    found.breakers((b.provider, b.state, b.failures) for b in states)
    await db.close()
    return Response(found.render(), media_type=CONTENT_TYPE)


class TelemetryOut(BaseModel):
    metrics_token: str | None = Field(description="the token /metrics requires; null: off")
    metrics_token_source: Source
    otlp_endpoint: str | None = Field(description="where traces go (OTLP/HTTP); null: off")
    otlp_endpoint_source: Source
    tracing: bool = Field(description="traces are being exported by this worker")
    multiprocess: bool = Field(
        description="prometheus_client multiprocess mode (PROMETHEUS_MULTIPROC_DIR): every "
        "worker's values in each scrape"
    )


class TelemetryUpdate(Body):
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="a new token; leave out to keep it (see generate_token, clear_token)",
    )
    generate_token: bool = Field(default=False, description="make a random token")
    clear_token: bool = Field(default=False, description="back to the config file's (or off)")
    otlp_endpoint: str | None = Field(default=None, max_length=500)
    clear_otlp_endpoint: bool = False


async def _overview(db: DB, settings: SettingsDep, services: ServicesDep) -> TelemetryOut:
    stored_token = await get_value(db, TOKEN_KEY, None)
    stored_otlp = await get_value(db, OTLP_KEY, None)
    tracing = services.get(Tracing)
    return TelemetryOut(
        metrics_token=stored_token or settings.metrics_token,
        metrics_token_source=_source(stored_token, settings.metrics_token),
        otlp_endpoint=stored_otlp or settings.otlp_endpoint,
        otlp_endpoint_source=_source(stored_otlp, settings.otlp_endpoint),
        tracing=tracing is not None and tracing.enabled,
        multiprocess=multiprocess_dir() is not None,
    )


def _source(stored: object, configured: object) -> Source:
    return "admin" if stored else "config" if configured else "none"


@router.get("/api/admin/telemetry", tags=["admin"])
async def telemetry_settings(
    admin: AdminUser, db: DB, settings: SettingsDep, services: ServicesDep
) -> TelemetryOut:
    return await _overview(db, settings, services)


@router.put("/api/admin/telemetry", tags=["admin"])
async def update_telemetry(
    body: TelemetryUpdate, admin: AdminUser, db: DB, settings: SettingsDep, services: ServicesDep
) -> TelemetryOut:
    """422 ``invalid_endpoint`` for a tracing endpoint that is not an http(s) URL."""
    if body.clear_token:
        await clear_value(db, TOKEN_KEY)
    elif body.generate_token:
        await set_value(db, TOKEN_KEY, secrets.token_urlsafe(32))
    elif body.metrics_token is not None:
        await set_value(db, TOKEN_KEY, body.metrics_token.strip())
    endpoint_changed = False
    if body.clear_otlp_endpoint:
        await clear_value(db, OTLP_KEY)
        endpoint_changed = True
    elif body.otlp_endpoint is not None:
        endpoint = body.otlp_endpoint.strip()
        if not endpoint.startswith(("http://", "https://")):
            raise Problem(
                422,
                "The tracing endpoint must be an http:// or https:// URL, e.g. "
                "http://127.0.0.1:4318/v1/traces.",
                "invalid_endpoint",
            )
        await set_value(db, OTLP_KEY, endpoint)
        endpoint_changed = True
    await db.commit()
    tracing = services.get(Tracing)
    if endpoint_changed and tracing is not None:
        stored = await get_value(db, OTLP_KEY, None)
        tracing.configure(stored or settings.otlp_endpoint)
    return await _overview(db, settings, services)
