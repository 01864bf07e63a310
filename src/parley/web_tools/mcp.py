"""MCP servers an admin connected, their tools offered like built-ins.

Each enabled server gets one long-lived connection per worker (a task that
holds the official ``mcp`` client open: a stdio subprocess, or streamable
HTTP through the guarded transport, so an HTTP server URL is held to the same
address policy as ``fetch_page``). Its tools are registered in the shared
``ToolRegistry`` as ``<server>__<tool>``. A tool is side-effecting, and so
asks the user before each call, unless the server marks it
``readOnlyHint: true`` (MCP's defaults assume a tool may change the world).

Servers are rows in the database; every worker reconciles its connections
with them at start, after an admin change it handled, and every
``mcp_refresh_s`` seconds, so all workers converge without shared memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx2
from sqlalchemy import select

from parley.errors import ToolError
from parley.net import SafeFetcher
from parley.storage.db import Database
from parley.tools import Tool, ToolRegistry
from parley.web_tools.tables import McpServerRow

if TYPE_CHECKING:  # the MCP SDK costs ~0.5 s to import: loaded on first connection
    from mcp import Client

__all__ = ["McpConnection", "McpHub", "ServerSpec", "mcp_tool_name"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def mcp_tool_name(server: str, tool: str) -> str:
    """``<server>__<tool>`` limited to what model APIs accept as a tool name."""
    return f"{server}__{_NAME_CHARS.sub('_', tool)}"[:64]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What a connection is made from (a snapshot of the row)."""

    id: str
    name: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: McpServerRow) -> ServerSpec:
        return cls(
            id=row.id,
            name=row.name,
            transport=row.transport,
            command=row.command,
            args=tuple(str(a) for a in row.args or []),
            env=tuple(sorted((str(k), str(v)) for k, v in (row.env or {}).items())),
            url=row.url,
            headers=tuple(sorted((str(k), str(v)) for k, v in (row.headers or {}).items())),
            updated_at=row.updated_at,
        )


@dataclass(slots=True)
class RemoteTool:
    name: str  # as registered in Parley
    remote: str  # as the server calls it
    description: str
    side_effecting: bool
    parameters: dict[str, Any] = field(default_factory=dict)


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(block.text))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {getattr(block, 'mime_type', '') or 'binary'}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {getattr(block, 'uri', '')}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


class McpConnection:
    """One server's client session, held open by its own task."""

    def __init__(self, spec: ServerSpec, fetcher: SafeFetcher) -> None:
        self.spec = spec
        self.fetcher = fetcher
        self.tools: list[RemoteTool] = []
        self.error: str | None = None
        self.status = "connecting"
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            assert spec.command
            from mcp.client.stdio import StdioServerParameters

            return StdioServerParameters(
                command=spec.command, args=list(spec.args), env=dict(spec.env) or None
            )
        assert spec.url
        http = self.fetcher.client(headers=dict(spec.headers), timeout=httpx2.Timeout(30, read=300))
        stack.push_async_callback(http.aclose)
        from mcp.client.streamable_http import streamable_http_client

        return streamable_http_client(spec.url, http_client=http)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.spec.name}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT_S)
        if not self._ready.is_set():
            self.status, self.error = "error", f"no answer within {CONNECT_TIMEOUT_S:g} s"

    async def _run(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                from mcp import Client

                client = await stack.enter_async_context(Client(self._transport(stack)))
                self.tools = await self._list_tools(client)
                self._client, self.status = client, "connected"
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # anyio task groups raise exception groups
            self.error = _describe(exc)
            log.warning("MCP server %s: %s", self.spec.name, self.error)
        finally:
            self._client = None
            self.status = "error" if self.error else "closed"
            self._ready.set()

    async def _list_tools(self, client: Client) -> list[RemoteTool]:
        found: list[RemoteTool] = []
        cursor: str | None = None
        for _ in range(50):  # pages
            page = await client.list_tools(cursor=cursor)
            for item in page.tools:
                hints = item.annotations
                read_only = bool(hints is not None and hints.read_only_hint is True)
                schema = dict(item.input_schema or {"type": "object", "properties": {}})
                schema.pop("title", None)
                found.append(
                    RemoteTool(
                        name=mcp_tool_name(self.spec.name, item.name),
                        remote=item.name,
                        description=(item.description or item.name)[:1000],
                        side_effecting=not read_only,
                        parameters=schema,
                    )
                )
            cursor = page.next_cursor
            if not cursor:
                break
        return found

    async def call(self, remote: str, arguments: dict[str, Any]) -> str:
        client = self._client
        if client is None:
            raise ToolError(
                f"The MCP server '{self.spec.name}' is not connected ({self.error or 'closed'})."
            )
        try:
            result = await client.call_tool(remote, arguments)
        except Exception as exc:
            raise ToolError(f"The MCP server '{self.spec.name}' failed: {_describe(exc)}") from exc
        text = _result_text(result)
        if result.is_error:
            raise ToolError(text or f"The MCP tool '{remote}' reported an error.")
        return text

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=10)
            if not done:
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class McpHub:
    """This worker's connections, reconciled with the ``mcp_servers`` table."""

    def __init__(self, db: Database, tools: ToolRegistry, fetcher: SafeFetcher) -> None:
        self.db = db
        self.registry = tools
        self.fetcher = fetcher
        self.connections: dict[str, McpConnection] = {}
        self._lock = asyncio.Lock()

    def tool_names(self) -> set[str]:
        return {t.name for c in self.connections.values() for t in c.tools}

    async def sync(self) -> None:
        """Connect new or changed enabled servers; drop removed or disabled ones."""
        async with self._lock:
            async with self.db.session() as session:
                rows = (await session.scalars(select(McpServerRow))).all()
                wanted = {r.id: ServerSpec.from_row(r) for r in rows if r.enabled}
            for server_id, conn in list(self.connections.items()):
                if wanted.get(server_id) != conn.spec:
                    await self._drop(server_id)
            for server_id, spec in wanted.items():
                if server_id not in self.connections:
                    await self._connect(spec)

    async def _connect(self, spec: ServerSpec) -> None:
        conn = McpConnection(spec, self.fetcher)
        self.connections[spec.id] = conn
        await conn.start()
        for remote in conn.tools:
            if remote.name in self.registry:
                log.warning("MCP tool %s hides nothing: a tool has that name", remote.name)
                continue
            self.registry.register(_as_tool(conn, remote))

    async def _drop(self, server_id: str) -> None:
        conn = self.connections.pop(server_id)
        for remote in conn.tools:
            declared = self.registry.get(remote.name)
            if declared is not None and getattr(declared.fn, "mcp_server", None) == server_id:
                self.registry.unregister(remote.name)
        await conn.stop()

    async def aclose(self) -> None:
        async with self._lock:
            for server_id in list(self.connections):
                await self._drop(server_id)

    def status(self, server_id: str) -> dict[str, Any]:
        conn = self.connections.get(server_id)
        if conn is None:
            return {"status": "disabled", "error": None, "tools": []}
        return {
            "status": conn.status,
            "error": conn.error,
            "tools": [
                {"name": t.name, "description": t.description, "side_effecting": t.side_effecting}
                for t in conn.tools
            ],
        }

    async def refresh_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sync()
            except Exception:
                log.exception("MCP refresh failed; will retry")


def _as_tool(conn: McpConnection, remote: RemoteTool) -> Tool:
    async def call(**arguments: Any) -> str:
        return await conn.call(remote.remote, arguments)

    call.mcp_server = conn.spec.id  # type: ignore[attr-defined]
    return Tool(
        name=remote.name,
        description=f"[{conn.spec.name}] {remote.description}",
        parameters=remote.parameters,
        fn=call,
        side_effecting=remote.side_effecting,
    )
