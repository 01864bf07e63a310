"""HTTP API of groups: admins manage them; signed-in users see names to share with.

- ``GET    /api/admin/groups`` -> ``{items: [group]}`` (with member counts)
- ``POST   /api/admin/groups {name, description?}`` -> 201 ``group``
- ``PATCH  /api/admin/groups/{group_id} {name?, description?}`` -> ``group``
- ``DELETE /api/admin/groups/{group_id}`` -> 204 (its shares end at once)
- ``GET    /api/admin/groups/{group_id}/members`` -> ``{items: [member]}``
- ``PUT    /api/admin/groups/{group_id}/members/{user_id}`` -> 204
- ``DELETE /api/admin/groups/{group_id}/members/{user_id}`` -> 204
- ``PUT    /api/admin/groups/{group_id}/models {models: [ref]}`` -> ``{models}``: the
  models the group's members may pick directly (empty: all; ``parley.turns.picks``)
- ``GET    /api/groups`` -> ``{items: [{id, name}]}``: every group's name, for the
  share dialogs (members are not listed to non-admins)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from parley.groups.service import GroupService
from parley.groups.tables import Group
from parley.http.bodies import Body, iso
from parley.http.deps import AdminUser, CurrentUser, Models, service
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem

router = APIRouter(route_class=GuardedRoute, tags=["groups"])
Groups = Annotated[GroupService, Depends(service(GroupService))]


class GroupIn(Body):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)


class GroupPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class GroupPublic(BaseModel):
    id: str
    name: str
    description: str
    members: int
    created_at: str | None
    models: list[str] = Field(
        default_factory=list, description="Models its members may pick; empty: all."
    )


class GroupModelsIn(Body):
    models: list[str] = Field(max_length=500, description="Model refs; empty: all models.")


class GroupModelsOut(BaseModel):
    models: list[str]


class GroupList(BaseModel):
    items: list[GroupPublic]


class GroupMemberPublic(BaseModel):
    id: str
    email: str
    name: str


class GroupMemberList(BaseModel):
    items: list[GroupMemberPublic]


class GroupName(BaseModel):
    id: str
    name: str


class GroupNames(BaseModel):
    items: list[GroupName]


def _public(group: Group, members: int = 0, models: list[str] | None = None) -> GroupPublic:
    return GroupPublic(
        id=group.id,
        name=group.name,
        description=group.description,
        members=members,
        created_at=iso(group.created_at),
        models=models or [],
    )


@router.get("/api/admin/groups", response_model=GroupList)
async def list_groups(groups: Groups, admin: AdminUser) -> GroupList:
    rows = await groups.all()
    models = await groups.models([r.group.id for r in rows])
    return GroupList(items=[_public(r.group, r.members, models.get(r.group.id)) for r in rows])


@router.put("/api/admin/groups/{group_id}/models", response_model=GroupModelsOut)
async def set_group_models(
    group_id: str, body: GroupModelsIn, groups: Groups, registry: Models, admin: AdminUser
) -> GroupModelsOut:
    """Which models the group's members may pick directly (empty: all)."""
    known = {m.ref for m in await registry.list_models()}
    unknown = sorted({ref for ref in body.models if ref not in known})
    if unknown:
        raise Problem(
            422,
            f"No such model: {', '.join(unknown)}. Choose among the configured models.",
            "unknown_model",
            param="models",
        )
    return GroupModelsOut(models=await groups.set_models(group_id, body.models))


@router.post("/api/admin/groups", status_code=201, response_model=GroupPublic)
async def create_group(body: GroupIn, groups: Groups, admin: AdminUser) -> GroupPublic:
    return _public(await groups.create(body.name, body.description))


@router.patch("/api/admin/groups/{group_id}", response_model=GroupPublic)
async def update_group(
    group_id: str, body: GroupPatch, groups: Groups, admin: AdminUser
) -> GroupPublic:
    row = await groups.update(group_id, body.name, body.description)
    models = (await groups.models([group_id])).get(group_id)
    return _public(row, len(await groups.members(group_id)), models)


@router.delete("/api/admin/groups/{group_id}", status_code=204)
async def delete_group(group_id: str, groups: Groups, admin: AdminUser) -> Response:
    await groups.delete(group_id)
    return Response(status_code=204)


@router.get("/api/admin/groups/{group_id}/members", response_model=GroupMemberList)
async def list_members(group_id: str, groups: Groups, admin: AdminUser) -> GroupMemberList:
    return GroupMemberList(
        items=[
            GroupMemberPublic(id=u.id, email=u.email, name=u.name)
            for u in await groups.members(group_id)
        ]
    )


@router.put("/api/admin/groups/{group_id}/members/{user_id}", status_code=204)
async def add_member(group_id: str, user_id: str, groups: Groups, admin: AdminUser) -> Response:
    await groups.add(group_id, user_id)
    return Response(status_code=204)


@router.delete("/api/admin/groups/{group_id}/members/{user_id}", status_code=204)
async def remove_member(group_id: str, user_id: str, groups: Groups, admin: AdminUser) -> Response:
    await groups.remove(group_id, user_id)
    return Response(status_code=204)


@router.get("/api/groups", response_model=GroupNames)
async def group_names(groups: Groups, user: CurrentUser) -> GroupNames:
    return GroupNames(
        items=[GroupName(id=r.group.id, name=r.group.name) for r in await groups.all()]
    )
