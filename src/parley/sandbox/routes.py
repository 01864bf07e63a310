"""``GET /api/sandbox/outputs/{id}``: a code interpreter output, to its owner only.

Served as an attachment with a media type from the store's allow-list and a
sandboxing CSP (``nosniff`` comes from the app's ``SecurityHeaders``), so even
a hostile file opened directly cannot run script on Parley's origin. Images
still load in ``<img>`` tags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from parley.http.deps import CurrentUser, ServicesDep
from parley.http.guard import GuardedRoute
from parley.http.problems import not_found
from parley.sandbox.outputs import OutputStore

__all__ = ["content_disposition", "router"]


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name per RFC 6266/5987."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "output"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _store(services: ServicesDep) -> OutputStore | None:
    """None while the code interpreter is off: every output is then "not found"."""
    return services.get(OutputStore)


router = APIRouter(route_class=GuardedRoute, prefix="/api/sandbox", tags=["sandbox"])


@router.get(
    "/outputs/{output_id}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The output's bytes, as an attachment",
        }
    },
)
async def get_output(
    output_id: str, user: CurrentUser, store: Annotated[OutputStore | None, Depends(_store)]
) -> Response:
    """Download a chart or file the code interpreter produced."""
    found = await store.get(user.id, output_id) if store is not None else None
    if found is None:
        raise not_found("output")
    row, data = found
    media = row.media_type
    if media.startswith("text/") or media == "application/json":
        media += "; charset=utf-8"
    headers = {
        "Content-Disposition": content_disposition(row.filename),
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, max-age=86400",
    }
    if isinstance(data, Path):
        return FileResponse(data, media_type=media, headers=headers)
    # from the object store, through this server (its authorization checked above)
    headers["Content-Length"] = str(row.size)
    return StreamingResponse(iterate_in_threadpool(data), media_type=media, headers=headers)
