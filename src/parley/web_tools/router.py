"""HTTP API of the tools feature: the tool list, confirmations, MCP admin.

- ``GET  /api/tools``: every tool a conversation can enable.
- ``GET  /api/conversations/{id}/tool-calls``: calls waiting for the user.
- ``POST /api/conversations/{id}/tool-calls/{call_id} {approve}``: the decision.
- ``/api/admin/mcp``: list, add, change, remove MCP servers (admins only: a
  stdio server is a command run on the server, so only admins may add one).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import Field, field_validator
from sqlalchemy import select

from parley.http.bodies import Body
from parley.http.deps import DB, AdminUser, CurrentUser, service
from parley.http.problems import Problem, not_found
from parley.net import FetchBlocked, parse_url
from parley.storage.conversations import ConversationStore
from parley.storage.tables import utcnow
from parley.web_tools.confirm import confirmation_out
from parley.web_tools.service import WebToolsService
from parley.web_tools.tables import McpServerRow

router = APIRouter(tags=["tools"])

_SERVER_NAME = r"^[a-z0-9][a-z0-9-]{0,23}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


Tools = Annotated[WebToolsService, Depends(service(WebToolsService))]


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


def mcp_server_out(row: McpServerRow, status: dict[str, Any]) -> dict[str, Any]:
    """Never returns ``env`` or ``headers`` values (they may hold secrets)."""
    return {
        "id": row.id,
        "name": row.name,
        "transport": row.transport,
        "command": row.command,
        "args": row.args,
        "url": row.url,
        "env_keys": sorted(row.env or {}),
        "header_keys": sorted(row.headers or {}),
        "enabled": row.enabled,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        **status,
    }


# ---------------------------------------------------------------- tools and confirmations


@router.get("/api/tools")
async def list_tools(tools: Tools, user: CurrentUser) -> dict[str, Any]:
    return {
        "items": tools.describe_tools(),
        "confirm_timeout_s": tools.settings.tool_confirm_timeout_s,
    }


@router.get("/api/conversations/{conversation_id}/tool-calls")
async def pending_tool_calls(
    conversation_id: str, tools: Tools, user: CurrentUser, db: DB
) -> dict[str, Any]:
    if await ConversationStore(db, user.id).get(conversation_id) is None:
        raise not_found("conversation")
    rows = await tools.confirmer.pending(user.id, conversation_id)
    return {"items": [confirmation_out(r) for r in rows]}


@router.post("/api/conversations/{conversation_id}/tool-calls/{call_id}")
async def decide_tool_call(
    conversation_id: str, call_id: str, body: ToolDecision, tools: Tools, user: CurrentUser
) -> dict[str, Any]:
    row = await tools.confirmer.decide(user.id, conversation_id, call_id[:200], body.approve)
    if row is None:
        raise not_found("tool call waiting for your answer")
    return confirmation_out(row)


# ---------------------------------------------------------------- MCP servers (admin)


def _check_server(body: McpServerIn, tools: Tools) -> None:
    if body.transport == "stdio":
        if not body.command or body.url:
            raise Problem(422, "A stdio server needs a command (and no url).", "invalid_mcp")
        return
    if not body.url or body.command:
        raise Problem(422, "An http server needs a url (and no command).", "invalid_mcp")
    try:
        parsed = parse_url(body.url)
        if parsed.ip is not None:  # literal addresses are checked now; names at connect time
            tools.fetcher.policy.check_address(parsed.host, parsed.ip)
    except FetchBlocked as exc:
        raise Problem(422, exc.message, "url_blocked") from exc


@router.get("/api/admin/mcp")
async def list_mcp_servers(tools: Tools, admin: AdminUser, db: DB) -> dict[str, Any]:
    hub = tools.hub
    rows = (await db.scalars(select(McpServerRow).order_by(McpServerRow.name))).all()
    return {"items": [mcp_server_out(r, hub.status(r.id)) for r in rows]}


@router.post("/api/admin/mcp", status_code=201)
async def add_mcp_server(
    body: McpServerIn, tools: Tools, admin: AdminUser, db: DB
) -> dict[str, Any]:
    _check_server(body, tools)
    if await db.scalar(select(McpServerRow.id).where(McpServerRow.name == body.name)):
        raise Problem(409, f"An MCP server named '{body.name}' exists.", "name_taken")
    row = McpServerRow(
        name=body.name,
        transport=body.transport,
        command=body.command,
        args=body.args,
        env=body.env,
        url=parse_url(body.url).url if body.url else None,
        headers=body.headers,
        enabled=body.enabled,
        created_by=admin.id,
    )
    db.add(row)
    await db.commit()
    hub = tools.hub
    await hub.sync()
    return mcp_server_out(row, hub.status(row.id))


@router.patch("/api/admin/mcp/{server_id}")
async def update_mcp_server(
    server_id: str, body: McpServerUpdate, tools: Tools, admin: AdminUser, db: DB
) -> dict[str, Any]:
    row = await db.get(McpServerRow, server_id)
    if row is None:
        raise not_found("MCP server")
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await db.commit()
    hub = tools.hub
    await hub.sync()
    return mcp_server_out(row, hub.status(row.id))


@router.delete("/api/admin/mcp/{server_id}", status_code=204)
async def delete_mcp_server(server_id: str, tools: Tools, admin: AdminUser, db: DB) -> Response:
    row = await db.get(McpServerRow, server_id)
    if row is None:
        raise not_found("MCP server")
    await db.delete(row)
    await db.commit()
    await tools.hub.sync()
    return Response(status_code=204)
