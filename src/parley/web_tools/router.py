"""HTTP API of the tools feature: the tool list, confirmations, MCP admin.

- ``GET  /api/tools``: every tool a conversation can enable.
- ``GET  /api/conversations/{id}/tool-calls``: calls waiting for the user.
- ``POST /api/conversations/{id}/tool-calls/{call_id} {approve}``: the decision.
- ``/api/admin/mcp``: list, add, change, remove MCP servers (admins only: a
  stdio server is a command run on the server, so only admins may add one).
  The rules live in ``mcp_admin.McpAdmin``; this module is the HTTP shape.
- ``/api/admin/web-search``: Admin > Web search (``search_routes``, included here).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, field_validator

from parley.http.bodies import Body
from parley.http.deps import AdminUser, CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.http.problems import not_found
from parley.web_tools.mcp_admin import McpServerDraft, McpServerView
from parley.web_tools.search_config import WebSearch
from parley.web_tools.search_routes import router as search_router
from parley.web_tools.service import ToolSource, WebToolsService
from parley.web_tools.tables import ToolConfirmation

router = APIRouter(route_class=GuardedRoute, tags=["tools"])
router.include_router(search_router)

_SERVER_NAME = r"^[a-z0-9][a-z0-9-]{0,23}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


Tools = Annotated[WebToolsService, Depends(service(WebToolsService))]
Search = Annotated[WebSearch, Depends(service(WebSearch))]


class ToolDecision(Body):
    approve: bool


class McpServerIn(Body):
    name: str = Field(pattern=_SERVER_NAME)
    transport: Literal["stdio", "http"]
    command: str | None = Field(default=None, min_length=1, max_length=1000)
    args: list[str] = Field(default_factory=list, max_length=100)
    env: dict[str, str] = Field(default_factory=dict, max_length=50)
    url: str | None = Field(default=None, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    enabled: bool = True

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"invalid environment variable names: {', '.join(bad)}")
        return value


class McpServerUpdate(Body):
    enabled: bool | None = None
    args: list[str] | None = Field(default=None, max_length=100)
    env: dict[str, str] | None = Field(default=None, max_length=50)
    headers: dict[str, str] | None = Field(default=None, max_length=20)


# ---------------------------------------------------------------- responses


class ToolPublic(BaseModel):
    name: str
    title: str = Field(description='The human name shown in the Tools menu ("Run code")')
    summary: str = Field(description="One line about the tool, for people")
    description: str = Field(description="What the model is told about the tool")
    side_effecting: bool = Field(description="asks the user before each call")
    source: ToolSource
    parameters: dict[str, Any] = Field(description="the tool's JSON Schema")


class UnavailableToolPublic(BaseModel):
    """A tool the server has but cannot offer now (code execution whose sandbox
    cannot start): shown disabled, with why."""

    name: str
    title: str
    summary: str
    reason: str


class ToolList(BaseModel):
    items: list[ToolPublic] = Field(description="Every tool a conversation can enable")
    unavailable: list[UnavailableToolPublic] = Field(
        description="Tools that cannot be used now, with why (never offered to the model)"
    )
    confirm_timeout_s: float


class ToolCallPublic(BaseModel):
    """A side-effecting tool call and the user's decision on it."""

    id: str
    conversation_id: str
    message_id: str
    name: str
    arguments: str = Field(description="the call's arguments as the model wrote them (JSON text)")
    status: Literal["pending", "approved", "denied", "expired"]
    created_at: str
    expires_at: str

    @classmethod
    def from_row(cls, row: ToolConfirmation) -> ToolCallPublic:
        return cls(
            id=row.call_id,
            conversation_id=row.conversation_id,
            message_id=row.message_id,
            name=row.tool,
            arguments=row.arguments,
            status=row.status,  # type: ignore[arg-type]  # validated against the Literal
            created_at=row.created_at.isoformat(),
            expires_at=row.expires_at.isoformat(),
        )


class ToolCallList(BaseModel):
    items: list[ToolCallPublic]


class McpToolPublic(BaseModel):
    name: str
    description: str
    side_effecting: bool


class McpServerPublic(BaseModel):
    """A connected MCP server; never the values of ``env`` or ``headers`` (they may
    hold secrets), only their names."""

    id: str
    name: str
    transport: Literal["stdio", "http"]
    command: str | None
    args: list[str]
    url: str | None
    env_keys: list[str]
    header_keys: list[str]
    enabled: bool
    created_at: str
    updated_at: str
    status: Literal["disabled", "connecting", "connected", "error", "closed"] = Field(
        description="this worker's connection"
    )
    error: str | None
    tools: list[McpToolPublic]

    @classmethod
    def from_view(cls, view: McpServerView) -> McpServerPublic:
        row, status = view.row, view.status
        return cls(
            id=row.id,
            name=row.name,
            transport=row.transport,  # type: ignore[arg-type]  # validated against the Literal
            command=row.command,
            args=row.args,
            url=row.url,
            env_keys=sorted(row.env or {}),
            header_keys=sorted(row.headers or {}),
            enabled=row.enabled,
            created_at=row.created_at.isoformat(),
            updated_at=row.updated_at.isoformat(),
            status=status["status"],
            error=status["error"],
            tools=[McpToolPublic(**t) for t in status["tools"]],
        )


class McpServerList(BaseModel):
    items: list[McpServerPublic]


# ---------------------------------------------------------------- tools and confirmations


@router.get("/api/tools")
async def list_tools(tools: Tools, search: Search, user: CurrentUser) -> ToolList:
    await search.refresh()  # another worker may have changed Admin > Web search
    return ToolList(
        items=[ToolPublic.model_validate(t, from_attributes=True) for t in tools.describe_tools()],
        unavailable=[
            UnavailableToolPublic.model_validate(t, from_attributes=True)
            for t in tools.unavailable_tools()
        ],
        confirm_timeout_s=tools.settings.tool_confirm_timeout_s,
    )


@router.get("/api/conversations/{conversation_id}/tool-calls")
async def pending_tool_calls(conversation_id: str, tools: Tools, user: CurrentUser) -> ToolCallList:
    rows = await tools.pending_calls(user.id, conversation_id)
    return ToolCallList(items=[ToolCallPublic.from_row(r) for r in rows])


@router.post("/api/conversations/{conversation_id}/tool-calls/{call_id}")
async def decide_tool_call(
    conversation_id: str, call_id: str, body: ToolDecision, tools: Tools, user: CurrentUser
) -> ToolCallPublic:
    row = await tools.confirmer.decide(user.id, conversation_id, call_id[:200], body.approve)
    if row is None:
        raise not_found("tool call waiting for your answer")
    return ToolCallPublic.from_row(row)


# ---------------------------------------------------------------- MCP servers (admin)


@router.get("/api/admin/mcp")
async def list_mcp_servers(tools: Tools, admin: AdminUser) -> McpServerList:
    return McpServerList(items=[McpServerPublic.from_view(v) for v in await tools.mcp.servers()])


@router.post("/api/admin/mcp", status_code=201)
async def add_mcp_server(body: McpServerIn, tools: Tools, admin: AdminUser) -> McpServerPublic:
    draft = McpServerDraft(
        name=body.name,
        transport=body.transport,
        command=body.command,
        args=body.args,
        env=body.env,
        url=body.url,
        headers=body.headers,
        enabled=body.enabled,
    )
    return McpServerPublic.from_view(await tools.mcp.add(draft, created_by=admin.id))


@router.patch("/api/admin/mcp/{server_id}")
async def update_mcp_server(
    server_id: str, body: McpServerUpdate, tools: Tools, admin: AdminUser
) -> McpServerPublic:
    view = await tools.mcp.update(server_id, body.model_dump(exclude_none=True))
    return McpServerPublic.from_view(view)


@router.delete("/api/admin/mcp/{server_id}", status_code=204)
async def delete_mcp_server(server_id: str, tools: Tools, admin: AdminUser) -> Response:
    await tools.mcp.delete(server_id)
    return Response(status_code=204)
