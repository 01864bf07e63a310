"""``POST /v1/images/generations``, ``/v1/images/edits`` (with an optional mask) and
``/v1/images/variations``: OpenAI's images API.

Authorised by API keys like the rest of ``/v1`` (endpoint group ``images``), and
made by ``ImageService.make`` like every image, so results are the key owner's
stored images (in their library, priced in the ledger with the key). ``model``
picks an image provider by name (or ``<provider>/<model>``, the ledger's ref);
another name uses the default provider, so clients written for OpenAI's model
names work unchanged; a key limited to some models must list that ref.

``response_format``: ``b64_json`` (the bytes inline) or ``url``, which is a
Parley URL (``/v1/images/{id}/content``, fetched with the same API key): the
provider's own URLs never reach the client.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from parley.errors import Refused
from parley.http.deps import DB, Principal, api_key_for, model_allowed, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.images.service import ImageService, Made, filename
from parley.storage.inproject import check_chat_id

__all__ = ["router"]

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["openai-compatible"])
Images = Annotated[ImageService, Depends(service(ImageService))]
ImagesKey = Annotated[Principal, Depends(api_key_for("images"))]


class GenerationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(min_length=1, max_length=100_000)
    model: str | None = Field(default=None, max_length=300)
    n: int = Field(default=1, ge=1, le=16)
    size: str | None = Field(default=None, max_length=20)
    response_format: Literal["url", "b64_json"] | None = None
    user: str | None = Field(default=None, max_length=300)


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]


async def _provider_ref(images: ImageService, principal: Principal, model: str | None) -> str:
    """The name of the provider ``model`` names (else the default's), after the
    key's model scope allowed its ref."""
    async with images.db.session() as session:
        rows = await images.book.all(session)
        chosen = None
        if model:
            chosen = next(
                (r for r in rows if model in (r.name, f"{r.name}/{r.model or r.kind}")), None
            )
        if chosen is None:
            chosen = await images.book.default(session)
    model_allowed(principal, f"{chosen.name}/{chosen.model or chosen.kind}")
    return chosen.name


async def _answer(
    request: Request, images: ImageService, made: Made, response_format: str | None
) -> ImagesResponse:
    data = []
    for row in made.images:
        if response_format == "b64_json":
            picture = await asyncio.to_thread(images.blobs.read, row.sha256)
            data.append(ImageData(b64_json=base64.b64encode(picture).decode("ascii")))
        else:
            url = str(request.url_for("v1_image_content", image_id=row.id))
            data.append(ImageData(url=url))
    return ImagesResponse(created=int(time.time()), data=data)


@router.post("/images/generations", response_model=ImagesResponse, response_model_exclude_none=True)
async def create_images(
    body: GenerationIn, request: Request, principal: ImagesKey, images: Images
) -> Any:
    provider = await _provider_ref(images, principal, body.model)
    made = await images.make(
        principal.user.id,
        operation="generate",
        prompt=body.prompt,
        size=body.size,
        n=body.n,
        api_key_id=principal.api_key_id,
        provider=provider,
    )
    return await _answer(request, images, made, body.response_format)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _multipart_doc(*, prompt: bool) -> dict[str, Any]:
    """The OpenAPI description of an edit's or a variation's multipart body."""
    properties: dict[str, Any] = {
        "image": {"type": "string", "format": "binary"},
        "model": {"type": "string"},
        "n": {"type": "integer"},
        "size": {"type": "string"},
        "response_format": {"type": "string", "enum": ["url", "b64_json"]},
    }
    if prompt:
        properties["prompt"] = {"type": "string"}
        properties["mask"] = {
            "type": "string",
            "format": "binary",
            "description": "A PNG of the image's size; its transparent pixels mark where to edit.",
        }
    schema = {
        "type": "object",
        "required": ["image", "prompt"] if prompt else ["image"],
        "properties": properties,
    }
    return {
        "requestBody": {"content": {"multipart/form-data": {"schema": schema}}, "required": True}
    }


async def _from_form(
    request: Request, images: ImageService, principal: Principal, operation: str
) -> Any:
    """An edit or a variation from OpenAI's multipart body, made and answered."""
    limit = images.settings.images_max_bytes
    try:
        form = await request.form(max_files=4, max_fields=32, max_part_size=limit + 1)
    except Exception as exc:  # a malformed body or a part over the limit
        raise Problem(
            400,
            f"The multipart body could not be read (each part at most {limit:,} bytes).",
            "invalid_request",
        ) from exc
    upload = form.get("image") or form.get("image[]")
    if not isinstance(upload, UploadFile):
        raise Problem(
            400, "Send the image in the multipart field 'image'.", "invalid_request", param="image"
        )
    picture = await upload.read(limit + 1)
    mask_upload = form.get("mask")
    if mask_upload is not None and operation != "edit":
        raise Problem(400, "A mask only applies to an edit.", "invalid_request", param="mask")
    if mask_upload is not None and not isinstance(mask_upload, UploadFile):
        raise Problem(400, "Send the mask as a PNG file.", "invalid_request", param="mask")
    mask = await mask_upload.read(limit + 1) if mask_upload is not None else None
    prompt = (_field(form, "prompt") or "").strip()
    if operation == "edit" and not prompt:
        raise Problem(400, "'prompt' is required.", "invalid_request", param="prompt")
    try:
        n = int(_field(form, "n") or 1)
    except ValueError:
        raise Problem(400, "'n' must be a whole number.", "invalid_request", param="n") from None
    response_format = _field(form, "response_format")
    if response_format not in (None, "url", "b64_json"):
        raise Problem(400, "'response_format' is url or b64_json.", "invalid_request")
    provider = await _provider_ref(images, principal, _field(form, "model"))
    made = await images.make(
        principal.user.id,
        operation=operation,
        prompt=prompt,
        size=_field(form, "size"),
        n=n,
        image=picture,
        mask=mask,
        api_key_id=principal.api_key_id,
        provider=provider,
    )
    return await _answer(request, images, made, response_format)


@router.post(
    "/images/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    openapi_extra=_multipart_doc(prompt=True),
)
async def edit_images(request: Request, principal: ImagesKey, images: Images) -> Any:
    """An edit of the uploaded image, in the masked area when a ``mask`` is sent."""
    return await _from_form(request, images, principal, "edit")


@router.post(
    "/images/variations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    openapi_extra=_multipart_doc(prompt=False),
)
async def vary_images(request: Request, principal: ImagesKey, images: Images) -> Any:
    """Variations of the uploaded image (no prompt)."""
    return await _from_form(request, images, principal, "variation")


@router.get(
    "/images/{image_id}/content",
    name="v1_image_content",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The image's bytes",
        }
    },
)
async def v1_image_content(
    image_id: str, principal: ImagesKey, images: Images, db: DB
) -> FileResponse:
    """An image a ``url`` answer pointed at (the key owner's images only; one made
    in a chat, only when that chat is in the request's project, if it runs in one)."""
    try:
        row, path = await images.content(principal.user.id, image_id)
    except Refused:
        raise Problem(404, "No such image.", "not_found") from None
    if row.conversation_id is not None:
        await check_chat_id(db, row.conversation_id, principal.project_id)
    return FileResponse(
        path,
        media_type=row.media_type,
        headers={
            "Content-Disposition": f'inline; filename="{filename(row)}"',
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )
