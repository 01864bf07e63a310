"""The first-run setup: what an admin needs to connect a real model.

``GET /api/admin/setup/local-servers`` looks for model servers already running
on this machine (``parley.instance.local_servers``: only the loopback
addresses of the ``local_servers`` setting, never a host from the request).
Connecting one, or a hosted provider, goes through the existing
``POST /api/admin/providers/test`` and ``POST /api/admin/providers``.
"""

from __future__ import annotations

from fastapi import APIRouter

from parley.api.schemas import LocalServer, LocalServerList
from parley.http.deps import DB, AdminUser, SettingsDep, Sync
from parley.http.guard import GuardedRoute
from parley.instance.local_servers import probe_local_servers

router = APIRouter(route_class=GuardedRoute, prefix="/api/admin/setup", tags=["admin"])


@router.get("/local-servers")
async def local_servers(
    settings: SettingsDep, sync: Sync, admin: AdminUser, db: DB
) -> LocalServerList:
    """Model servers answering on this machine's usual ports, with their models."""
    registry = await sync.ensure_fresh(db)
    providers = registry.providers_info()
    taken = [str(p["name"]) for p in providers]
    by_url = {
        str(p["base_url"]).rstrip("/"): str(p["name"]) for p in providers if p.get("base_url")
    }
    found = await probe_local_servers(settings.local_servers, own_port=settings.port)
    items = []
    for server in found:
        name = server.suggested_name(taken)
        taken.append(name)
        items.append(
            LocalServer(
                address=server.address,
                kind=server.kind,
                label=server.label,
                base_url=server.base_url,
                suggested_name=name,
                models=server.models,
                added_as=by_url.get(server.base_url.rstrip("/"))
                or by_url.get(server.base_url.replace("127.0.0.1", "localhost").rstrip("/")),
            )
        )
    return LocalServerList(items=items, probed=list(settings.local_servers))
