"""HTTP API of projects (every route checks the caller's role on the project).

- ``GET    /api/projects`` -> ``{items: [project]}`` (owned or a member of)
- ``POST   /api/projects {name, ...}`` -> 201 ``project``
- ``GET|PATCH|DELETE /api/projects/{project_id}`` (viewer | editor | owner)
- ``GET    /api/projects/{project_id}/members``; ``POST`` ``{email | group_id, role}``
  -> 201; ``DELETE /api/projects/{project_id}/members/{member_id}`` (owner)
- ``GET    /api/projects/{project_id}/chats`` (every member's); ``POST {title?}`` ->
  201 a new chat in it with its defaults
- ``GET    /api/projects/{project_id}/chats/{conversation_id}`` -> a member's chat,
  read-only; ``PUT`` moves one of yours in, ``DELETE`` moves it out (204)
- ``GET    /api/projects/{project_id}/files``; ``PUT|DELETE .../files/{file_id}``
- ``GET    /api/projects/{project_id}/export`` -> its settings as a document (no
  chats); ``POST /api/projects/import {document}`` -> 201 ``project``
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from parley.http.bodies import Body, iso
from parley.http.deps import CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.projects.service import ProjectService, ProjectSettings
from parley.projects.tables import Project

router = APIRouter(route_class=GuardedRoute, tags=["projects"])
Projects = Annotated[ProjectService, Depends(service(ProjectService))]


class ProjectFields(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=500)
    instructions: str | None = Field(default=None, max_length=20_000)
    instructions_mode: Literal["add", "replace"] | None = Field(
        default=None, description="Add to your custom instructions, or replace them."
    )
    model: str | None = Field(default=None, max_length=300, description="Empty: none.")
    assistant_id: str | None = Field(default=None, max_length=32, description="Empty: none.")
    tools: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=100)
    memory: Literal["default", "project"] | None = Field(
        default=None, description="'project': project-only memory."
    )

    def settings(self) -> ProjectSettings:
        return ProjectSettings(**self.model_dump())


class ProjectCreate(ProjectFields):
    name: str | None = Field(min_length=1, max_length=200)


class ProjectPublic(BaseModel):
    id: str
    name: str
    description: str
    instructions: str
    instructions_mode: str
    model: str | None
    assistant_id: str | None
    tools: list[str]
    memory: str
    role: str = Field(description="Yours: owner, editor or viewer.")
    chats: int
    created_at: str | None
    updated_at: str | None


class ProjectList(BaseModel):
    items: list[ProjectPublic]


class MemberIn(Body):
    email: str | None = Field(default=None, max_length=320)
    group_id: str | None = Field(default=None, max_length=32)
    role: Literal["viewer", "editor"] = "viewer"


class MemberPublic(BaseModel):
    id: str
    kind: str
    principal_id: str
    label: str
    role: str


class MemberList(BaseModel):
    items: list[MemberPublic]


class ProjectChatIn(Body):
    title: str | None = Field(default=None, max_length=200)


class ProjectChatStarted(BaseModel):
    conversation_id: str


class ProjectChat(BaseModel):
    id: str
    title: str
    author: str
    mine: bool
    updated_at: str | None


class ProjectChatList(BaseModel):
    items: list[ProjectChat]


class ProjectMessage(BaseModel):
    id: str
    role: str
    content: str
    created_at: str | None


class ProjectTranscript(BaseModel):
    id: str
    title: str
    messages: list[ProjectMessage]


class ProjectFile(BaseModel):
    id: str
    filename: str
    status: str
    size_bytes: int
    owner: str
    mine: bool


class ProjectFileList(BaseModel):
    items: list[ProjectFile]


class ProjectDocument(BaseModel):
    """A project's settings, portable (``parley: "project"``, ``format: 1``): no
    chats, no files (their names, to upload again), no members."""

    parley: Literal["project"] = "project"
    format: int = Field(default=1, ge=1, le=1)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=500)
    instructions: str = Field(default="", max_length=20_000)
    instructions_mode: Literal["add", "replace"] = "add"
    model: str = Field(default="", max_length=300)
    tools: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    memory: Literal["default", "project"] = "default"
    files: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=1000
    )


class ProjectImport(Body):
    document: ProjectDocument


class ProjectImported(BaseModel):
    project: ProjectPublic
    dropped: list[str]
    files: list[str]


def _public(row: Project, role: str, chats: int = 0) -> ProjectPublic:
    return ProjectPublic(
        id=row.id,
        name=row.name,
        description=row.description,
        instructions=row.instructions,
        instructions_mode=row.instructions_mode,
        model=row.model,
        assistant_id=row.assistant_id,
        tools=list(row.tools or []),
        memory=row.memory,
        role=role,
        chats=chats,
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
    )


@router.get("/api/projects", response_model=ProjectList)
async def list_projects(projects: Projects, user: CurrentUser) -> ProjectList:
    return ProjectList(
        items=[_public(p.project, p.role, p.chats) for p in await projects.mine(user.id)]
    )


@router.post("/api/projects", status_code=201, response_model=ProjectPublic)
async def create_project(
    body: ProjectCreate, projects: Projects, user: CurrentUser
) -> ProjectPublic:
    return _public(await projects.create(user.id, body.settings()), "owner")


@router.post("/api/projects/import", status_code=201, response_model=ProjectImported)
async def import_project(
    body: ProjectImport, projects: Projects, user: CurrentUser
) -> ProjectImported:
    doc = body.document
    dropped: list[str] = []
    known = set(projects.tools.names())
    tools = [t for t in doc.tools if t in known]
    dropped += [f"tool {t}" for t in doc.tools if t not in known]
    model = doc.model
    if model:
        offered = {m.ref for m in await projects.models.list_models() if m.offered_to(user.id)}
        if model not in offered:
            dropped.append(f"model {model}")
            model = ""
    row = await projects.create(
        user.id,
        ProjectSettings(
            name=doc.name,
            description=doc.description,
            instructions=doc.instructions,
            instructions_mode=doc.instructions_mode,
            model=model,
            tools=tools,
            memory=doc.memory,
        ),
    )
    return ProjectImported(project=_public(row, "owner"), dropped=dropped, files=doc.files)


@router.get("/api/projects/{project_id}", response_model=ProjectPublic)
async def get_project(project_id: str, projects: Projects, user: CurrentUser) -> ProjectPublic:
    row, role = await projects.get(user.id, project_id)
    return _public(row, role)


@router.patch("/api/projects/{project_id}", response_model=ProjectPublic)
async def update_project(
    project_id: str, body: ProjectFields, projects: Projects, user: CurrentUser
) -> ProjectPublic:
    row = await projects.update(user.id, project_id, body.settings())
    _, role = await projects.get(user.id, project_id)
    return _public(row, role)


@router.delete("/api/projects/{project_id}", status_code=204)
async def delete_project(project_id: str, projects: Projects, user: CurrentUser) -> Response:
    await projects.delete(user.id, project_id)
    return Response(status_code=204)


@router.get("/api/projects/{project_id}/export", response_model=ProjectDocument)
async def export_project(project_id: str, projects: Projects, user: CurrentUser) -> ProjectDocument:
    row, _ = await projects.get(user.id, project_id)
    files = await projects.files(user.id, project_id)
    return ProjectDocument(
        name=row.name,
        description=row.description,
        instructions=row.instructions,
        instructions_mode="replace" if row.instructions_mode == "replace" else "add",
        model=row.model or "",
        tools=list(row.tools or []),
        memory="project" if row.memory == "project" else "default",
        files=[str(f["filename"]) for f in files],
    )


@router.get("/api/projects/{project_id}/members", response_model=MemberList)
async def list_members(project_id: str, projects: Projects, user: CurrentUser) -> MemberList:
    return MemberList(
        items=[
            MemberPublic(
                id=m.id,
                kind=m.principal_type,
                principal_id=m.principal_id,
                label=label,
                role=m.role,
            )
            for m, label in await projects.members(user.id, project_id)
        ]
    )


@router.post("/api/projects/{project_id}/members", status_code=201, response_model=MemberPublic)
async def add_member(
    project_id: str, body: MemberIn, projects: Projects, user: CurrentUser
) -> MemberPublic:
    m = await projects.add_member(
        user.id, project_id, body.role, email=body.email, group_id=body.group_id
    )
    label = body.email or body.group_id or ""
    return MemberPublic(
        id=m.id, kind=m.principal_type, principal_id=m.principal_id, label=label, role=m.role
    )


@router.delete("/api/projects/{project_id}/members/{member_id}", status_code=204)
async def remove_member(
    project_id: str, member_id: str, projects: Projects, user: CurrentUser
) -> Response:
    await projects.remove_member(user.id, project_id, member_id)
    return Response(status_code=204)


@router.get("/api/projects/{project_id}/chats", response_model=ProjectChatList)
async def list_chats(project_id: str, projects: Projects, user: CurrentUser) -> ProjectChatList:
    return ProjectChatList(
        items=[
            ProjectChat(
                id=c.id,
                title=c.title,
                author=email,
                mine=c.user_id == user.id,
                updated_at=iso(c.updated_at),
            )
            for c, email in await projects.chats(user.id, project_id)
        ]
    )


@router.post("/api/projects/{project_id}/chats", status_code=201, response_model=ProjectChatStarted)
async def start_chat(
    project_id: str, body: ProjectChatIn, projects: Projects, user: CurrentUser
) -> ProjectChatStarted:
    conv = await projects.start_chat(user.id, project_id, body.title)
    return ProjectChatStarted(conversation_id=conv.id)


@router.get("/api/projects/{project_id}/chats/{conversation_id}", response_model=ProjectTranscript)
async def read_chat(
    project_id: str, conversation_id: str, projects: Projects, user: CurrentUser
) -> ProjectTranscript:
    conv, messages = await projects.chat(user.id, project_id, conversation_id)
    return ProjectTranscript(
        id=conv.id,
        title=conv.title,
        messages=[
            ProjectMessage(id=m.id, role=m.role, content=m.content, created_at=iso(m.created_at))
            for m in messages
        ],
    )


@router.put("/api/projects/{project_id}/chats/{conversation_id}", status_code=204)
async def move_in(
    project_id: str, conversation_id: str, projects: Projects, user: CurrentUser
) -> Response:
    await projects.move_in(user.id, project_id, conversation_id)
    return Response(status_code=204)


@router.delete("/api/projects/{project_id}/chats/{conversation_id}", status_code=204)
async def move_out(
    project_id: str, conversation_id: str, projects: Projects, user: CurrentUser
) -> Response:
    await projects.move_out(user.id, project_id, conversation_id)
    return Response(status_code=204)


@router.get("/api/projects/{project_id}/files", response_model=ProjectFileList)
async def list_files(project_id: str, projects: Projects, user: CurrentUser) -> ProjectFileList:
    return ProjectFileList(
        items=[
            ProjectFile(
                id=str(f["id"]),
                filename=str(f["filename"]),
                status=str(f["status"]),
                size_bytes=int(f["size_bytes"] or 0),
                owner=str(f["email"]),
                mine=f["user_id"] == user.id,
            )
            for f in await projects.files(user.id, project_id)
        ]
    )


@router.put("/api/projects/{project_id}/files/{file_id}", status_code=204)
async def add_file(
    project_id: str, file_id: str, projects: Projects, user: CurrentUser
) -> Response:
    await projects.add_file(user.id, project_id, file_id)
    return Response(status_code=204)


@router.delete("/api/projects/{project_id}/files/{file_id}", status_code=204)
async def remove_file(
    project_id: str, file_id: str, projects: Projects, user: CurrentUser
) -> Response:
    await projects.remove_file(user.id, project_id, file_id)
    return Response(status_code=204)
