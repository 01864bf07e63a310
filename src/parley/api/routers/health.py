"""Liveness and readiness, for a load balancer and a service manager.

``/healthz/live`` answers while the event loop does (restart the worker when it
stops answering). ``/healthz/ready`` answers 200 only when this worker can serve:
the database answers, its schema is at the newest migration (a worker started
before ``parley migrate`` ran elsewhere is not ready), and Redis answers when it
is configured. Redis away answers 200 with ``status: degraded``, not 503: every
worker shares one Redis, so failing readiness for it would take them all out of
the load balancer and turn a degradation (streams follow the stored answer, stops
travel through the database) into an outage. Both are public and say nothing
about the configuration: the reason is logged for the admin.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from parley import __version__
from parley.config import Settings
from parley.http.deps import service
from parley.storage.db import Database
from parley.turns.streams import SharedTurnEvents

log = logging.getLogger(__name__)

router = APIRouter(prefix="/healthz", tags=["meta"])

CHECK_TIMEOUT_S = 3.0

Check = Literal["ok", "failing", "not_configured"]


class Liveness(BaseModel):
    status: Literal["alive"]
    version: str


class Readiness(BaseModel):
    """Whether this worker can serve, and each check's outcome."""

    status: Literal["ready", "degraded", "not_ready"] = Field(
        description="`degraded`: serving without Redis (HTTP 200); `not_ready`: HTTP 503."
    )
    database: Check = Field(description="The database answers.")
    migrations: Check = Field(description="The schema is at the newest migration.")
    redis: Check = Field(description="Redis answers (when it is configured).")


@router.get("/live")
async def live() -> Liveness:
    return Liveness(status="alive", version=__version__)


async def _database(db: Database) -> tuple[Check, Check]:
    try:
        at_head = await asyncio.wait_for(db.at_head(), CHECK_TIMEOUT_S)
    except Exception as exc:
        log.warning("readiness: the database does not answer (%s)", exc)
        return "failing", "failing"
    if not at_head:
        log.warning("readiness: the database schema is not at the newest migration")
    return "ok", "ok" if at_head else "failing"


@router.get("/ready", responses={503: {"model": Readiness, "description": "Not ready."}})
async def ready(
    db: Annotated[Database, Depends(service(Database))],
    settings: Annotated[Settings, Depends(service(Settings))],
    events: Annotated[SharedTurnEvents, Depends(service(SharedTurnEvents))],
) -> Readiness:
    database, migrations = await _database(db)
    redis: Check = "not_configured"
    if settings.redis_url:
        redis = "ok" if await events.ping() else "failing"
        if redis == "failing":
            log.warning("readiness: Redis does not answer")
    status: Literal["ready", "degraded", "not_ready"] = "ready"
    if "failing" in (database, migrations):
        status = "not_ready"
    elif redis == "failing":
        status = "degraded"
    answer = Readiness(
        status=status,
        database=database,
        migrations=migrations,
        redis=redis,
    )
    if answer.status == "not_ready":
        return JSONResponse(answer.model_dump(), status_code=503)  # type: ignore[return-value]
    return answer
