"""HTTP API of the assistants builder (every query scoped to the signed-in owner).

- ``GET    /api/assistants`` -> ``{items: [assistant]}`` (mine, newest change first)
- ``POST   /api/assistants {config, slug?}`` -> 201 ``assistant`` (version 1, published)
- ``GET    /api/assistants/{id}`` -> ``assistant`` (``config`` is the draft's)
- ``PATCH  /api/assistants/{id} {slug}`` -> ``assistant``; ``DELETE`` -> 204
- ``POST   /api/assistants/{id}/versions {config}`` -> 201 ``assistant`` (Save: a new draft)
- ``GET    /api/assistants/{id}/versions`` -> ``{items: [version]}`` (newest first)
- ``GET    /api/assistants/{id}/versions/{number}`` -> ``version``
- ``POST   /api/assistants/{id}/versions/{number}/restore`` -> 201 ``assistant``
- ``POST   /api/assistants/{id}/publish {version?}`` -> ``assistant``
- ``GET    /api/assistants/{id}/diff?from=&to=`` -> ``{instructions: [line], changes}``
- ``POST   /api/assistants/{id}/chats {preview}`` -> 201 ``{conversation_id, preview}``
- ``PUT    /api/assistants/{id}/avatar`` (the image's bytes: PNG, JPEG, GIF or WebP, at
  most 256 KB) -> ``assistant``; ``GET`` -> the image; ``DELETE`` -> 204
- ``GET    /api/conversations/{conversation_id}/assistant`` -> the chat's assistant
  (name, avatar, starters) and which version wrote each answer
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from parley.assistants.service import PREFIX, AssistantService, Loaded
from parley.assistants.sharing import SharingService
from parley.assistants.spec import (
    AssistantConfig,
    DiffLine,
    FieldChange,
    changes,
    instructions_diff,
)
from parley.assistants.tables import AssistantVersion
from parley.errors import NotFound
from parley.http.bodies import Body, iso
from parley.http.deps import DB, CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.http.problems import not_found
from parley.storage.conversations import ConversationStore

router = APIRouter(route_class=GuardedRoute, tags=["assistants"])
Assistants = Annotated[AssistantService, Depends(service(AssistantService))]
Sharing = Annotated[SharingService, Depends(service(SharingService))]


class AssistantCreate(Body):
    config: AssistantConfig
    slug: str | None = Field(default=None, max_length=64)


class AssistantSave(Body):
    config: AssistantConfig


class AssistantPatch(Body):
    slug: str = Field(min_length=1, max_length=64)


class PublishIn(Body):
    version: int | None = Field(default=None, ge=1, description="Default: the draft.")


class ChatIn(Body):
    preview: bool = Field(default=False, description="The builder's preview: uses the draft.")


class AssistantPublic(BaseModel):
    id: str
    slug: str
    model_id: str = Field(description="Its name as a /v1 model: assistant/<slug>.")
    avatar_url: str | None = Field(description="The uploaded avatar image, if any.")
    config: AssistantConfig = Field(description="The draft's (newest version's) definition.")
    draft_version: int
    published_version: int | None
    published: AssistantConfig | None = Field(description="What chats use.")
    role: str = Field(description="Your role on it: owner, edit, view or chat.")
    featured: bool
    created_at: str
    updated_at: str


class AssistantList(BaseModel):
    items: list[AssistantPublic]


class VersionPublic(BaseModel):
    id: str
    number: int
    config: AssistantConfig
    note: str
    published: bool
    draft: bool
    created_at: str


class VersionList(BaseModel):
    items: list[VersionPublic]


class AssistantDiff(BaseModel):
    from_version: int
    to_version: int
    instructions: list[DiffLine]
    changes: list[FieldChange]


class ChatStarted(BaseModel):
    conversation_id: str
    preview: bool


class AnswerVersion(BaseModel):
    message_id: str
    version: int


class ChatAssistant(BaseModel):
    """The assistant of a chat, as its header shows it (null fields when the chat
    has none or it was deleted)."""

    assistant_id: str | None
    slug: str | None
    name: str | None
    avatar: str | None
    avatar_url: str | None
    description: str | None
    model: str | None = Field(description="Its model (null: the instance default).")
    starters: list[str]
    preview: bool
    answers: list[AnswerVersion]


def _stamp(moment: datetime) -> str:
    stamp = iso(moment)
    assert stamp is not None
    return stamp


def _image_url(loaded: Loaded) -> str | None:
    if loaded.image is None:
        return None
    return f"/api/assistants/{loaded.assistant.id}/avatar?v={loaded.image[:12]}"


def public(loaded: Loaded) -> AssistantPublic:
    row = loaded.assistant
    published = loaded.published
    return AssistantPublic(
        id=row.id,
        slug=row.slug,
        model_id=PREFIX + row.slug,
        avatar_url=_image_url(loaded),
        config=loaded.config,
        draft_version=loaded.draft.number,
        published_version=published.number if published else None,
        published=AssistantConfig.model_validate(published.config) if published else None,
        role=loaded.role,
        featured=row.featured,
        created_at=_stamp(row.created_at),
        updated_at=_stamp(row.updated_at),
    )


def _version(loaded: Loaded, row: AssistantVersion) -> VersionPublic:
    return VersionPublic(
        id=row.id,
        number=row.number,
        config=AssistantConfig.model_validate(row.config),
        note=row.note,
        published=row.id == loaded.assistant.published_version_id,
        draft=row.id == loaded.assistant.draft_version_id,
        created_at=_stamp(row.created_at),
    )


@router.get("/api/assistants", response_model=AssistantList)
async def list_assistants(assistants: Assistants, user: CurrentUser) -> AssistantList:
    return AssistantList(items=[public(a) for a in await assistants.mine(user.id)])


@router.post("/api/assistants", status_code=201, response_model=AssistantPublic)
async def create_assistant(
    body: AssistantCreate, assistants: Assistants, sharing: Sharing, user: CurrentUser
) -> AssistantPublic:
    await sharing.require(user, "create")
    return public(await assistants.create(user.id, body.config, body.slug))


@router.get("/api/assistants/{assistant_id}", response_model=AssistantPublic)
async def get_assistant(
    assistant_id: str, assistants: Assistants, user: CurrentUser
) -> AssistantPublic:
    return public(await assistants.get(user.id, assistant_id))


@router.patch("/api/assistants/{assistant_id}", response_model=AssistantPublic)
async def patch_assistant(
    assistant_id: str, body: AssistantPatch, assistants: Assistants, user: CurrentUser
) -> AssistantPublic:
    return public(await assistants.set_slug(user.id, assistant_id, body.slug))


@router.delete("/api/assistants/{assistant_id}", status_code=204)
async def delete_assistant(
    assistant_id: str, assistants: Assistants, user: CurrentUser
) -> Response:
    await assistants.delete(user.id, assistant_id)
    return Response(status_code=204)


@router.put("/api/assistants/{assistant_id}/avatar", response_model=AssistantPublic)
async def put_avatar(
    assistant_id: str, request: Request, assistants: Assistants, user: CurrentUser
) -> AssistantPublic:
    """The request body is the image itself (as sent by ``fetch(url, {body: file})``)."""
    return public(await assistants.set_image(user.id, assistant_id, await request.body()))


@router.get(
    "/api/assistants/{assistant_id}/avatar",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The avatar image."}},
)
async def get_avatar(assistant_id: str, assistants: Assistants, user: CurrentUser) -> Response:
    image = await assistants.image(user.id, assistant_id)
    return Response(
        content=image.data,
        media_type=image.media_type,
        headers={
            # besides the app's own CSP and nosniff (every answer has them)
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=86400",
        },
    )


@router.delete("/api/assistants/{assistant_id}/avatar", status_code=204)
async def delete_avatar(assistant_id: str, assistants: Assistants, user: CurrentUser) -> Response:
    await assistants.clear_image(user.id, assistant_id)
    return Response(status_code=204)


@router.post(
    "/api/assistants/{assistant_id}/versions", status_code=201, response_model=AssistantPublic
)
async def save_assistant(
    assistant_id: str, body: AssistantSave, assistants: Assistants, user: CurrentUser
) -> AssistantPublic:
    return public(await assistants.save(user.id, assistant_id, body.config))


@router.get("/api/assistants/{assistant_id}/versions", response_model=VersionList)
async def list_versions(
    assistant_id: str, assistants: Assistants, user: CurrentUser
) -> VersionList:
    loaded, rows = await assistants.versions(user.id, assistant_id)
    return VersionList(items=[_version(loaded, row) for row in rows])


@router.get("/api/assistants/{assistant_id}/versions/{number}", response_model=VersionPublic)
async def get_version(
    assistant_id: str, number: int, assistants: Assistants, user: CurrentUser
) -> VersionPublic:
    loaded, row = await assistants.version(user.id, assistant_id, number)
    return _version(loaded, row)


@router.post(
    "/api/assistants/{assistant_id}/versions/{number}/restore",
    status_code=201,
    response_model=AssistantPublic,
)
async def restore_version(
    assistant_id: str, number: int, assistants: Assistants, user: CurrentUser
) -> AssistantPublic:
    return public(await assistants.restore(user.id, assistant_id, number))


@router.post("/api/assistants/{assistant_id}/publish", response_model=AssistantPublic)
async def publish_assistant(
    assistant_id: str, body: PublishIn, assistants: Assistants, user: CurrentUser
) -> AssistantPublic:
    return public(await assistants.publish(user.id, assistant_id, body.version))


@router.get("/api/assistants/{assistant_id}/diff", response_model=AssistantDiff)
async def diff_versions(
    assistant_id: str,
    assistants: Assistants,
    user: CurrentUser,
    before: Annotated[int | None, Query(alias="from", ge=1)] = None,
    after: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> AssistantDiff:
    """Version ``from`` (default: the published one) against ``to`` (default: the
    draft): without both, what publishing the draft would change."""
    loaded = await assistants.get(user.id, assistant_id)
    if before is None:
        before = loaded.published.number if loaded.published else loaded.draft.number
    after = after or loaded.draft.number
    _, a = await assistants.version(user.id, assistant_id, before)
    _, b = await assistants.version(user.id, assistant_id, after)
    old = AssistantConfig.model_validate(a.config)
    new = AssistantConfig.model_validate(b.config)
    return AssistantDiff(
        from_version=before,
        to_version=after,
        instructions=instructions_diff(old.instructions, new.instructions),
        changes=changes(old, new),
    )


@router.post("/api/assistants/{assistant_id}/chats", status_code=201, response_model=ChatStarted)
async def start_chat(
    assistant_id: str, body: ChatIn, assistants: Assistants, user: CurrentUser
) -> ChatStarted:
    conv = await assistants.start_chat(user.id, assistant_id, draft=body.preview)
    return ChatStarted(conversation_id=conv.id, preview=body.preview)


@router.get("/api/conversations/{conversation_id}/assistant", response_model=ChatAssistant)
async def chat_assistant(
    conversation_id: str, assistants: Assistants, user: CurrentUser, db: DB
) -> ChatAssistant:
    conv = await ConversationStore(db, user.id).get(conversation_id)
    if conv is None:
        raise not_found("conversation")
    empty: dict[str, Any] = {
        "assistant_id": None,
        "slug": None,
        "name": None,
        "avatar": None,
        "avatar_url": None,
        "description": None,
        "model": None,
        "starters": [],
        "preview": False,
        "answers": [],
    }
    if conv.assistant_id is None:
        return ChatAssistant(**empty)
    answers = [
        AnswerVersion(message_id=a.message_id, version=a.version_number)
        for a in await assistants.answered_by(user.id, conversation_id)
    ]
    try:
        loaded = await assistants.get(user.id, conv.assistant_id, need="chat")
    except NotFound:
        return ChatAssistant(**(empty | {"answers": answers}))
    preview = await assistants.is_preview(conversation_id)
    config = (
        loaded.config
        if preview
        else AssistantConfig.model_validate((loaded.published or loaded.draft).config)
    )
    return ChatAssistant(
        assistant_id=loaded.assistant.id,
        slug=loaded.assistant.slug,
        name=config.name,
        avatar=config.avatar,
        avatar_url=_image_url(loaded),
        description=config.description,
        model=config.model or None,
        starters=config.starters,
        preview=preview,
        answers=answers,
    )
