"""HTTP API of sharing, the gallery, copies and files of assistants.

- ``GET    /api/assistants/{id}/shares`` -> ``{items: [share]}`` (owner)
- ``POST   /api/assistants/{id}/shares {kind: user|group|everyone|link, role, email?,
  group_id?}`` -> 201 ``share`` (a link's ``token`` is in it)
- ``PATCH  /api/assistants/{id}/shares/{share_id} {role}`` -> 204; ``DELETE`` -> 204
- ``POST   /api/assistants/{id}/owner {email}`` -> 204 (transfer; you keep edit)
- ``POST   /api/assistant-links {token}`` -> ``{assistant_id, role}`` (open a link)
- ``GET    /api/assistant-gallery?q=`` -> ``{items: [entry]}`` (what you may use)
- ``POST   /api/assistants/{id}/duplicate`` -> 201 ``assistant`` (needs view)
- ``GET    /api/assistants/{id}/export`` -> the document (needs view)
- ``POST   /api/assistants/import {document}`` -> 201 ``{assistant, dropped, files}``
- ``GET    /api/admin/assistants?q=``, ``PUT /api/admin/assistants/{id}/featured``,
  ``GET|PUT /api/admin/assistant-policy`` (admins)
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from parley.assistants.portable import AssistantDocument
from parley.assistants.router import PREFIX, AssistantPublic, Assistants, public
from parley.assistants.sharing import Policy, ShareView, SharingService
from parley.http.bodies import Body, iso
from parley.http.deps import AdminUser, CurrentUser, service
from parley.http.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["assistants"])
Sharing = Annotated[SharingService, Depends(service(SharingService))]
RoleName = Literal["chat", "view", "edit"]


class ShareIn(Body):
    kind: Literal["user", "group", "everyone", "link"]
    role: RoleName = "chat"
    email: str | None = Field(default=None, max_length=320)
    group_id: str | None = Field(default=None, max_length=32)


class SharePatch(Body):
    role: RoleName


class SharePublic(BaseModel):
    id: str
    kind: str
    principal_id: str = Field(description="The user or group id (empty for everyone).")
    label: str
    role: str
    token: str | None = Field(description="A link's secret (the owner only sees shares).")
    via_link: bool
    created_at: str | None


class ShareList(BaseModel):
    items: list[SharePublic]


class TransferIn(Body):
    email: str = Field(min_length=3, max_length=320)


class LinkIn(Body):
    token: str = Field(min_length=8, max_length=64)


class LinkOpened(BaseModel):
    assistant_id: str


class GalleryItem(BaseModel):
    id: str
    slug: str
    model_id: str
    name: str
    description: str
    featured: bool
    role: str
    owner: str
    avatar_url: str


class GalleryList(BaseModel):
    items: list[GalleryItem]


class ImportIn(Body):
    document: AssistantDocument


class Imported(BaseModel):
    assistant: AssistantPublic
    dropped: list[str] = Field(description="Tools or a model this instance does not have.")
    files: list[str] = Field(description="Knowledge files to upload again.")


class FeaturedIn(Body):
    featured: bool


class AdminAssistant(BaseModel):
    id: str
    slug: str
    name: str
    owner: str
    featured: bool


class AdminAssistantList(BaseModel):
    items: list[AdminAssistant]


class PolicyBody(Body):
    creators: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None, max_length=500, description="Group ids whose members may create; null: all."
    )
    sharers: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None, max_length=500, description="Group ids whose members may share; null: all."
    )


class PolicyPublic(BaseModel):
    creators: list[str] | None
    sharers: list[str] | None


def _share(view: ShareView) -> SharePublic:
    row = view.share
    link = row.principal_type == "link"
    return SharePublic(
        id=row.id,
        kind=row.principal_type,
        principal_id="" if link else row.principal_id,
        label=view.label,
        role=row.role,
        token=row.principal_id if link else None,
        via_link=row.link_id is not None,
        created_at=iso(row.created_at),
    )


def _policy(policy: Policy) -> PolicyPublic:
    return PolicyPublic(creators=policy.creators, sharers=policy.sharers)


@router.get("/api/assistants/{assistant_id}/shares", response_model=ShareList)
async def list_shares(assistant_id: str, sharing: Sharing, user: CurrentUser) -> ShareList:
    return ShareList(items=[_share(v) for v in await sharing.shares(user.id, assistant_id)])


@router.post("/api/assistants/{assistant_id}/shares", status_code=201, response_model=SharePublic)
async def add_share(
    assistant_id: str, body: ShareIn, sharing: Sharing, user: CurrentUser
) -> SharePublic:
    view = await sharing.share(
        user, assistant_id, body.kind, body.role, email=body.email, group_id=body.group_id
    )
    return _share(view)


@router.patch("/api/assistants/{assistant_id}/shares/{share_id}", status_code=204)
async def change_share(
    assistant_id: str, share_id: str, body: SharePatch, sharing: Sharing, user: CurrentUser
) -> Response:
    await sharing.set_role(user.id, assistant_id, share_id, body.role)
    return Response(status_code=204)


@router.delete("/api/assistants/{assistant_id}/shares/{share_id}", status_code=204)
async def revoke_share(
    assistant_id: str, share_id: str, sharing: Sharing, user: CurrentUser
) -> Response:
    await sharing.revoke(user.id, assistant_id, share_id)
    return Response(status_code=204)


@router.post("/api/assistants/{assistant_id}/owner", status_code=204)
async def transfer_assistant(
    assistant_id: str, body: TransferIn, sharing: Sharing, user: CurrentUser
) -> Response:
    await sharing.transfer(user.id, assistant_id, body.email)
    return Response(status_code=204)


@router.post("/api/assistant-links", response_model=LinkOpened)
async def open_link(body: LinkIn, sharing: Sharing, user: CurrentUser) -> LinkOpened:
    return LinkOpened(assistant_id=await sharing.claim(user.id, body.token))


@router.get("/api/assistant-gallery", response_model=GalleryList)
async def gallery(
    sharing: Sharing,
    user: CurrentUser,
    q: Annotated[str, Query(max_length=200)] = "",
) -> GalleryList:
    entries = await sharing.gallery(user.id, q)
    return GalleryList(
        items=[
            GalleryItem(
                id=e.assistant.id,
                slug=e.assistant.slug,
                model_id=PREFIX + e.assistant.slug,
                name=e.assistant.name,
                description=e.assistant.description,
                featured=e.assistant.featured,
                role=e.role,
                owner=e.owner,
                avatar_url=f"/api/assistants/{e.assistant.id}/avatar",
            )
            for e in entries
        ]
    )


@router.post(
    "/api/assistants/{assistant_id}/duplicate", status_code=201, response_model=AssistantPublic
)
async def duplicate_assistant(
    assistant_id: str, assistants: Assistants, sharing: Sharing, user: CurrentUser
) -> AssistantPublic:
    await sharing.require(user, "create")
    return public(await assistants.duplicate(user.id, assistant_id))


@router.get("/api/assistants/{assistant_id}/export", response_model=AssistantDocument)
async def export_assistant(
    assistant_id: str, assistants: Assistants, user: CurrentUser
) -> AssistantDocument:
    return await assistants.export(user.id, assistant_id)


@router.post("/api/assistants/import", status_code=201, response_model=Imported)
async def import_assistant(
    body: ImportIn, assistants: Assistants, sharing: Sharing, user: CurrentUser
) -> Imported:
    await sharing.require(user, "create")
    loaded, dropped = await assistants.import_document(user.id, body.document)
    return Imported(
        assistant=public(loaded),
        dropped=dropped,
        files=body.document.files + [f"collection {c}" for c in body.document.collections],
    )


@router.get("/api/admin/assistants", response_model=AdminAssistantList)
async def admin_assistants(
    sharing: Sharing, admin: AdminUser, q: Annotated[str, Query(max_length=200)] = ""
) -> AdminAssistantList:
    return AdminAssistantList(
        items=[
            AdminAssistant(id=a.id, slug=a.slug, name=a.name, owner=email, featured=a.featured)
            for a, email in await sharing.every(q)
        ]
    )


@router.put("/api/admin/assistants/{assistant_id}/featured", response_model=AdminAssistant)
async def feature_assistant(
    assistant_id: str, body: FeaturedIn, sharing: Sharing, admin: AdminUser
) -> AdminAssistant:
    row = await sharing.feature(assistant_id, body.featured)
    return AdminAssistant(id=row.id, slug=row.slug, name=row.name, owner="", featured=row.featured)


@router.get("/api/admin/assistant-policy", response_model=PolicyPublic)
async def get_policy(sharing: Sharing, admin: AdminUser) -> PolicyPublic:
    return _policy(await sharing.policy())


@router.put("/api/admin/assistant-policy", response_model=PolicyPublic)
async def set_policy(body: PolicyBody, sharing: Sharing, admin: AdminUser) -> PolicyPublic:
    return _policy(await sharing.set_policy(body.creators, body.sharers))
