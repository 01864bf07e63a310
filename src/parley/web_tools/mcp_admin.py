"""The admin's MCP servers: list, add, change, remove, with the rules for each.

A stdio server is a command run on the server, so only admins reach this (the
route says so); an http server's URL is held to the fetch address policy
(literal addresses now, names when the hub connects). Every change is written
to the database and then this worker's hub reconciles its connections; other
workers follow on their next refresh (``McpHub``).

Refusals are domain errors (``parley.errors``): the HTTP layer maps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from parley.errors import Conflict, Invalid, NotFound
from parley.net import FetchBlocked, SafeFetcher, parse_url
from parley.storage.db import Database
from parley.storage.tables import utcnow
from parley.web_tools.mcp import McpHub
from parley.web_tools.tables import McpServerRow

__all__ = ["McpAdmin", "McpServerDraft", "McpServerView"]

EDITABLE = frozenset({"enabled", "args", "env", "headers"})


@dataclass(slots=True)
class McpServerDraft:
    """A server to add (the body of the admin's form)."""

    name: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    url: str | None = None
    headers: Mapping[str, str] | None = None
    enabled: bool = True


@dataclass(slots=True)
class McpServerView:
    """A stored server with this worker's connection status (``McpHub.status``)."""

    row: McpServerRow
    status: dict[str, Any]


class McpAdmin:
    def __init__(self, hub: McpHub, fetcher: SafeFetcher) -> None:
        self._db: Database = hub.db
        self._hub = hub
        self._fetcher = fetcher

    def _view(self, row: McpServerRow) -> McpServerView:
        return McpServerView(row, self._hub.status(row.id))

    def _check(self, draft: McpServerDraft) -> None:
        if draft.transport == "stdio":
            if not draft.command or draft.url:
                raise Invalid("A stdio server needs a command (and no url).", "invalid_mcp")
            return
        if not draft.url or draft.command:
            raise Invalid("An http server needs a url (and no command).", "invalid_mcp")
        try:
            parsed = parse_url(draft.url)
            if parsed.ip is not None:  # literal addresses are checked now; names at connect time
                self._fetcher.policy.check_address(parsed.host, parsed.ip)
        except FetchBlocked as exc:
            raise Invalid(exc.message, "url_blocked") from exc

    async def servers(self) -> list[McpServerView]:
        async with self._db.session() as session:
            rows = (await session.scalars(select(McpServerRow).order_by(McpServerRow.name))).all()
        return [self._view(r) for r in rows]

    async def add(self, draft: McpServerDraft, created_by: str | None) -> McpServerView:
        self._check(draft)
        async with self._db.session() as session:
            if await session.scalar(select(McpServerRow.id).where(McpServerRow.name == draft.name)):
                raise Conflict(f"An MCP server named '{draft.name}' exists.", "name_taken")
            row = McpServerRow(
                name=draft.name,
                transport=draft.transport,
                command=draft.command,
                args=list(draft.args),
                env=dict(draft.env or {}),
                url=parse_url(draft.url).url if draft.url else None,
                headers=dict(draft.headers or {}),
                enabled=draft.enabled,
                created_by=created_by,
            )
            session.add(row)
            await session.commit()
        await self._hub.sync()
        return self._view(row)

    async def update(self, server_id: str, changes: Mapping[str, Any]) -> McpServerView:
        """Change ``enabled``, ``args``, ``env`` or ``headers`` (the rest is fixed)."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise TypeError(f"fields that cannot be changed: {', '.join(sorted(unknown))}")
        async with self._db.session() as session:
            row = await session.get(McpServerRow, server_id)
            if row is None:
                raise NotFound("MCP server")
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            await session.commit()
        await self._hub.sync()
        return self._view(row)

    async def delete(self, server_id: str) -> None:
        async with self._db.session() as session:
            row = await session.get(McpServerRow, server_id)
            if row is None:
                raise NotFound("MCP server")
            await session.delete(row)
            await session.commit()
        await self._hub.sync()
