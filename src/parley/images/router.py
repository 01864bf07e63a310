"""HTTP API of the images feature (native routes; ``/v1`` is ``openai_routes``).

- ``GET    /api/images?conversation_id=&limit=`` -> ``{items: [image]}`` (mine, newest first)
- ``POST   /api/images {prompt, size?, negative_prompt?, seed?, n?}`` -> 201 ``{items}``
- ``GET    /api/images/{image_id}`` -> ``image``; ``DELETE`` -> 204 (the bytes too)
- ``GET    /api/images/{image_id}/content`` -> the bytes (inline, ``sandbox`` CSP)
- ``GET    /api/images/{image_id}/lineage`` -> ``{items: [image]}`` (its whole line)
- ``POST   /api/images/{image_id}/edits {prompt, size?}`` -> 201 ``{items}``
- ``POST   /api/images/{image_id}/variations {}`` -> 201 ``{items}``
- ``POST   /api/conversations/{conversation_id}/images {prompt, operation, parent_id?,
  size?}`` -> 201 ``{user_message_id, message_id, items}``: the composer's image mode
- ``GET    /api/images/settings`` -> ``{available, default_size, max_bytes, max_n}``
- Admin: ``GET|POST /api/admin/images/providers``, ``PATCH|DELETE
  /api/admin/images/providers/{provider_id}`` (``provider``: the key never returned)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from parley.errors import NotFound
from parley.http.bodies import Body, iso
from parley.http.deps import AdminUser, CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.images.providers import ProviderFields
from parley.images.service import ImageService, Made, content_url, filename
from parley.images.tables import ImageProviderRecord, ImageRecord
from parley.storage.conversations import ConversationStore

__all__ = ["ImagePublic", "router"]

router = APIRouter(route_class=GuardedRoute, tags=["images"])
Images = Annotated[ImageService, Depends(service(ImageService))]


class ImagePublic(BaseModel):
    id: str
    url: str = Field(description="Parley's URL of the bytes (never the provider's).")
    filename: str
    conversation_id: str | None
    message_id: str | None
    parent_id: str | None
    root_id: str
    operation: Literal["generate", "edit", "variation"]
    prompt: str
    negative_prompt: str
    size: str
    seed: int | None
    provider: str
    model: str
    media_type: str
    width: int
    height: int
    size_bytes: int
    cost: float
    created_at: str

    @classmethod
    def of(cls, row: ImageRecord) -> ImagePublic:
        return cls(
            id=row.id,
            url=content_url(row.id),
            filename=filename(row),
            conversation_id=row.conversation_id,
            message_id=row.message_id,
            parent_id=row.parent_id,
            root_id=row.root_id,
            operation=row.operation,  # type: ignore[arg-type]
            prompt=row.prompt,
            negative_prompt=row.negative_prompt,
            size=row.size,
            seed=row.seed,
            provider=row.provider,
            model=row.model,
            media_type=row.media_type,
            width=row.width,
            height=row.height,
            size_bytes=row.size_bytes,
            cost=row.cost,
            created_at=iso(row.created_at) or "",
        )


class ImageList(BaseModel):
    items: list[ImagePublic]


class ChatImages(BaseModel):
    user_message_id: str
    message_id: str
    items: list[ImagePublic]


class ImageSettings(BaseModel):
    available: bool
    default_size: str
    max_bytes: int
    max_n: int


class ImageGenerateIn(Body):
    prompt: str = Field(min_length=1, max_length=100_000)
    size: str | None = Field(default=None, max_length=20)
    negative_prompt: str = Field(default="", max_length=100_000)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    n: int = Field(default=1, ge=1, le=16)
    conversation_id: str | None = Field(default=None, max_length=64)


class ImageEditIn(Body):
    prompt: str = Field(min_length=1, max_length=100_000)
    size: str | None = Field(default=None, max_length=20)


class ImageVaryIn(Body):
    size: str | None = Field(default=None, max_length=20)


class ChatImageIn(Body):
    prompt: str = Field(default="", max_length=100_000)
    operation: Literal["generate", "edit", "variation"] = "generate"
    parent_id: str | None = Field(default=None, max_length=64)
    size: str | None = Field(default=None, max_length=20)


def _items(made: Made) -> ImageList:
    return ImageList(items=[ImagePublic.of(r) for r in made.images])


@router.get("/api/images/settings", response_model=ImageSettings)
async def image_settings(images: Images, user: CurrentUser) -> ImageSettings:
    """Whether image generation is set up, and its limits (the composer's image mode)."""
    async with images.db.session() as session:
        available = bool(await images.book.all(session))
    s = images.settings
    return ImageSettings(
        available=available,
        default_size=s.images_default_size,
        max_bytes=s.images_max_bytes,
        max_n=s.images_max_n,
    )


@router.get("/api/images", response_model=ImageList)
async def list_images(
    images: Images,
    user: CurrentUser,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ImageList:
    rows = await images.list_images(user.id, conversation_id, limit)
    return ImageList(items=[ImagePublic.of(r) for r in rows])


@router.post("/api/images", response_model=ImageList, status_code=201)
async def generate(body: ImageGenerateIn, images: Images, user: CurrentUser) -> ImageList:
    made = await images.make(
        user.id,
        operation="generate",
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        size=body.size,
        seed=body.seed,
        n=body.n,
        conversation_id=await _own_chat(images, user.id, body.conversation_id),
    )
    return _items(made)


async def _own_chat(images: ImageService, user_id: str, conversation_id: str | None) -> str | None:
    if conversation_id is None:
        return None
    async with images.db.session() as session:
        if await ConversationStore(session, user_id).get(conversation_id) is None:
            raise NotFound("conversation")
    return conversation_id


@router.get("/api/images/{image_id}", response_model=ImagePublic)
async def get_image(image_id: str, images: Images, user: CurrentUser) -> ImagePublic:
    return ImagePublic.of(await images.get(user.id, image_id))


@router.delete("/api/images/{image_id}", status_code=204)
async def delete_image(image_id: str, images: Images, user: CurrentUser) -> Response:
    await images.delete(user.id, image_id)
    return Response(status_code=204)


@router.get(
    "/api/images/{image_id}/content",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The image's bytes",
        }
    },
)
async def image_content(
    image_id: str,
    images: Images,
    user: CurrentUser,
    download: Annotated[bool, Query()] = False,
) -> FileResponse:
    """The bytes, from Parley (never the provider). ``download=true`` makes it an
    attachment; either way a ``sandbox`` CSP and ``nosniff`` keep it inert."""
    row, path = await images.content(user.id, image_id)
    name = filename(row)
    return FileResponse(
        path,
        media_type=row.media_type,
        headers={
            "Content-Disposition": f'{"attachment" if download else "inline"}; filename="{name}"',
            "Content-Security-Policy": "sandbox; default-src 'none'",
            # Revalidated each time (a 304 is cheap): a deleted picture must not live on
            # in the browser's cache.
            "Cache-Control": "private, no-cache",
        },
    )


@router.get("/api/images/{image_id}/lineage", response_model=ImageList)
async def image_lineage(image_id: str, images: Images, user: CurrentUser) -> ImageList:
    rows = await images.lineage(user.id, image_id)
    return ImageList(items=[ImagePublic.of(r) for r in rows])


@router.post("/api/images/{image_id}/edits", response_model=ImageList, status_code=201)
async def edit_image(
    image_id: str, body: ImageEditIn, images: Images, user: CurrentUser
) -> ImageList:
    parent = await images.get(user.id, image_id)
    made = await images.make(
        user.id,
        operation="edit",
        prompt=body.prompt,
        size=body.size,
        parent_id=image_id,
        conversation_id=parent.conversation_id,
    )
    return _items(made)


@router.post("/api/images/{image_id}/variations", response_model=ImageList, status_code=201)
async def vary_image(
    image_id: str, body: ImageVaryIn, images: Images, user: CurrentUser
) -> ImageList:
    parent = await images.get(user.id, image_id)
    made = await images.make(
        user.id,
        operation="variation",
        size=body.size,
        parent_id=image_id,
        conversation_id=parent.conversation_id,
    )
    return _items(made)


@router.post(
    "/api/conversations/{conversation_id}/images", response_model=ChatImages, status_code=201
)
async def chat_image(
    conversation_id: str, body: ChatImageIn, images: Images, user: CurrentUser
) -> ChatImages:
    """The composer's image mode: the request and its pictures become the chat's
    next exchange (no chat model is called)."""
    question, answer, made = await images.in_chat(
        user.id,
        conversation_id,
        operation=body.operation,
        prompt=body.prompt,
        parent_id=body.parent_id,
        size=body.size,
    )
    return ChatImages(
        user_message_id=question,
        message_id=answer,
        items=[ImagePublic.of(r) for r in made.images],
    )


# ---------------------------------------------------------------------- admin


class ImageProviderPublic(BaseModel):
    id: str
    name: str
    kind: Literal["openai", "comfyui"]
    base_url: str
    model: str
    has_key: bool
    workflow: Any = Field(default=None, description="ComfyUI's workflow (API format).")
    mapping: dict[str, str] | None
    price_per_image: float
    is_default: bool
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, row: ImageProviderRecord) -> ImageProviderPublic:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,  # type: ignore[arg-type]
            base_url=row.base_url,
            model=row.model,
            has_key=bool(row.api_key),
            workflow=row.workflow,
            mapping=row.mapping,
            price_per_image=row.price_per_image,
            is_default=row.is_default,
            created_at=iso(row.created_at) or "",
            updated_at=iso(row.updated_at) or "",
        )


class ImageProviderList(BaseModel):
    items: list[ImageProviderPublic]


class ImageProviderIn(Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    kind: Literal["openai", "comfyui"]
    base_url: str = Field(min_length=1, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    model: str = Field(default="", max_length=200)
    workflow: dict[str, Any] | None = None
    mapping: dict[str, str] | None = None
    price_per_image: float = Field(default=0.0, ge=0)
    is_default: bool = False


class ImageProviderPatch(Body):
    name: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
    )
    base_url: str | None = Field(default=None, min_length=1, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    model: str | None = Field(default=None, max_length=200)
    workflow: dict[str, Any] | None = None
    mapping: dict[str, str] | None = None
    price_per_image: float | None = Field(default=None, ge=0)
    is_default: bool | None = None


@router.get("/api/admin/images/providers", response_model=ImageProviderList)
async def list_providers(images: Images, admin: AdminUser) -> ImageProviderList:
    async with images.db.session() as session:
        rows = await images.book.all(session)
    return ImageProviderList(items=[ImageProviderPublic.of(r) for r in rows])


@router.post("/api/admin/images/providers", response_model=ImageProviderPublic, status_code=201)
async def add_provider(
    body: ImageProviderIn, images: Images, admin: AdminUser
) -> ImageProviderPublic:
    async with images.db.session() as session:
        row = await images.book.add(session, ProviderFields(**body.model_dump()))
        await session.commit()
        out = ImageProviderPublic.of(row)
    await images.changed()
    return out


@router.patch("/api/admin/images/providers/{provider_id}", response_model=ImageProviderPublic)
async def change_provider(
    provider_id: str, body: ImageProviderPatch, images: Images, admin: AdminUser
) -> ImageProviderPublic:
    async with images.db.session() as session:
        row = await images.book.change(
            session, provider_id, ProviderFields(**body.model_dump(exclude_unset=True))
        )
        await session.commit()
        out = ImageProviderPublic.of(row)
    await images.changed()
    return out


@router.delete("/api/admin/images/providers/{provider_id}", status_code=204)
async def remove_provider(provider_id: str, images: Images, admin: AdminUser) -> Response:
    async with images.db.session() as session:
        await images.book.remove(session, provider_id)
        await session.commit()
    await images.changed()
    return Response(status_code=204)
