"""Admin > Jobs: the durable queue's jobs (dead letters first) and where files are stored.

``GET /api/admin/jobs?state=`` lists jobs newest change first with a count per
state; ``POST /api/admin/jobs/{job_id}/retry`` queues a dead (or waiting) job
again with its attempts reset; ``DELETE /api/admin/jobs/{job_id}`` discards a
dead or waiting one (a running job belongs to its worker). ``GET
/api/admin/storage`` says which object store holds uploaded files and code
outputs; the secret key is never sent back, only whether one is set. Admins
only. The rules are ``parley.jobs.queue``'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from parley.api.schemas import Timestamp
from parley.errors import NotFound
from parley.http.bodies import iso
from parley.http.deps import AdminUser, SettingsDep, service
from parley.http.guard import GuardedRoute
from parley.jobs.runner import Jobs
from parley.jobs.tables import Job

router = APIRouter(route_class=GuardedRoute, prefix="/api/admin", tags=["admin"])

JobsDep = Annotated[Jobs, Depends(service(Jobs))]
JobState = Literal["queued", "running", "done", "dead"]


class JobPublic(BaseModel):
    id: str
    kind: str = Field(description="what the job does, e.g. knowledge.ingest")
    state: JobState
    attempts: int
    max_attempts: int
    user_id: str | None = Field(description="whose work it is, when it is a user's")
    payload: dict[str, Any]
    last_error: str | None
    worker: str | None = Field(description="the worker holding a running job")
    run_after: Timestamp = Field(description="a queued job waits until then (retry backoff)")
    lease_until: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: Timestamp | None

    @classmethod
    def of(cls, job: Job) -> JobPublic:
        return cls(
            id=job.id,
            kind=job.kind,
            state=job.state,  # type: ignore[arg-type]
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            user_id=job.user_id,
            payload=dict(job.payload or {}),
            last_error=job.last_error,
            worker=job.worker,
            run_after=iso(job.run_after) or "",
            lease_until=iso(job.lease_until),
            created_at=iso(job.created_at) or "",
            updated_at=iso(job.updated_at) or "",
            finished_at=iso(job.finished_at),
        )


class JobCounts(BaseModel):
    queued: int
    running: int
    done: int
    dead: int


class JobList(BaseModel):
    items: list[JobPublic]
    counts: JobCounts
    runs_here: bool = Field(description="this server process runs jobs (else only workers do)")


class StoragePublic(BaseModel):
    backend: Literal["local", "s3"]
    location: str = Field(description="the data directory, or the bucket's endpoint and name")
    bucket: str | None
    endpoint_url: str | None
    region: str | None
    prefix: str | None
    path_style: bool | None
    access_key_id: str | None
    secret_set: bool = Field(description="a secret key is configured (it is never shown)")


@router.get("/jobs")
async def list_jobs(
    admin: AdminUser,
    jobs: JobsDep,
    state: Annotated[JobState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JobList:
    rows = await jobs.queue.recent(state, limit)
    return JobList(
        items=[JobPublic.of(row) for row in rows],
        counts=JobCounts(**await jobs.queue.counts()),
        runs_here=jobs.running,
    )


@router.post("/jobs/{job_id}/retry")
async def retry_job(job_id: str, admin: AdminUser, jobs: JobsDep) -> JobPublic:
    """404 when there is no such job, or it is running or done."""
    row = await jobs.queue.retry(job_id)
    if row is None:
        raise NotFound("dead or waiting job")
    jobs.wake()
    return JobPublic.of(row)


@router.delete("/jobs/{job_id}", status_code=204)
async def discard_job(job_id: str, admin: AdminUser, jobs: JobsDep) -> Response:
    """404 when there is no such job, or it is running or done."""
    if not await jobs.queue.discard(job_id):
        raise NotFound("dead or waiting job")
    return Response(status_code=204)


@router.get("/storage")
async def storage_settings(admin: AdminUser, settings: SettingsDep) -> StoragePublic:
    if settings.storage_backend == "s3":
        return StoragePublic(
            backend="s3",
            location=f"{settings.s3_endpoint_url or 'AWS S3'} / {settings.s3_bucket}",
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            path_style=settings.s3_path_style,
            access_key_id=settings.s3_access_key_id,
            secret_set=bool(settings.s3_secret_access_key),
        )
    return StoragePublic(
        backend="local",
        location=str(settings.data_dir),
        bucket=None,
        endpoint_url=None,
        region=None,
        prefix=None,
        path_style=None,
        access_key_id=None,
        secret_set=False,
    )
