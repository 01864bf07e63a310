"""Admin > Models: download GGUF models from Hugging Face and choose the one the
embedded model runs. The rules live in ``parley.instance.model_downloads``
(the transfer) and ``parley.instance.local_choice`` (the choice); these handlers
translate HTTP to them. The admin page polls ``GET /api/admin/local-models``
for progress while a download runs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from parley.api.local_model_schemas import (
    CuratedModelOut,
    DownloadIn,
    DownloadOut,
    LocalModelsOut,
    UseModelIn,
    UseModelOut,
)
from parley.http.deps import DB, AdminUser, SettingsDep, Sync, service
from parley.http.guard import GuardedRoute
from parley.instance import local_choice
from parley.instance.model_catalog import CURATED
from parley.instance.model_downloads import Download, ModelDownloads

router = APIRouter(route_class=GuardedRoute, prefix="/api/admin/local-models", tags=["admin"])
Downloads = Annotated[ModelDownloads, Depends(service(ModelDownloads))]


def download_out(item: Download, in_use: str | None) -> DownloadOut:
    return DownloadOut(
        file=item.file,
        repo=item.repo,
        revision=item.revision,
        status=item.status,
        done_bytes=item.done,
        total_bytes=item.total,
        rate=round(item.current_rate(), 1),
        sha256=item.sha256,
        verified=item.verified,
        error=item.error,
        in_use=item.file == in_use and item.status == "done",
    )


@router.get("")
async def list_local_models(
    downloads: Downloads, sync: Sync, settings: SettingsDep, admin: AdminUser, db: DB
) -> LocalModelsOut:
    """The curated list, every model file on this server and the one in use."""
    registry = await sync.ensure_fresh(db)
    in_use = await local_choice.chosen_file(db)
    return LocalModelsOut(
        curated=[CuratedModelOut(**asdict(c)) for c in CURATED],
        files=[download_out(item, in_use) for item in downloads.list()],
        in_use=in_use,
        local_enabled=registry.local is not None,
        free_bytes=downloads.free_bytes(),
        endpoint=settings.hf_endpoint,
    )


@router.post("/downloads", status_code=202)
async def start_download(
    body: DownloadIn, downloads: Downloads, admin: AdminUser, db: DB
) -> DownloadOut:
    """Checks the file with the server and the free disk space first (422
    ``model_file_not_found`` / ``not_enough_space``, 409 when it is already there
    or downloading), then downloads in the background."""
    item = await downloads.start(body.repo.strip(), body.file.strip(), body.revision.strip())
    return download_out(item, await local_choice.chosen_file(db))


@router.post("/downloads/{file}/resume", status_code=202)
async def resume_download(file: str, downloads: Downloads, admin: AdminUser, db: DB) -> DownloadOut:
    """Continue an interrupted download from the bytes already on disk."""
    item = await downloads.resume(file)
    return download_out(item, await local_choice.chosen_file(db))


@router.delete("/downloads/{file}", status_code=204)
async def cancel_download(file: str, downloads: Downloads, admin: AdminUser) -> Response:
    """Stop a download (or dismiss a failed or interrupted one) and delete its bytes."""
    await downloads.cancel(file)
    return Response(status_code=204)


@router.delete("/files/{file}", status_code=204)
async def delete_file(file: str, downloads: Downloads, admin: AdminUser, db: DB) -> Response:
    """Delete a downloaded model (409-like refusal while the embedded model runs it)."""
    await local_choice.delete_download(db, downloads, file)
    return Response(status_code=204)


@router.post("/use")
async def use_model(
    body: UseModelIn, downloads: Downloads, sync: Sync, admin: AdminUser, db: DB
) -> UseModelOut:
    """Make a downloaded file the embedded model (loads on its next message), or
    go back to the configured one with ``file: null``."""
    ref = await local_choice.use_local_model(db, sync, downloads, body.file)
    return UseModelOut(ref=ref)
