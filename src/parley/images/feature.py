"""The images feature: providers, the image tools, routes, and the user's images.

``images_feature(settings)`` is the factory listed in
``parley.api.app.DEFAULT_FEATURES``. ``start`` builds the service on the shared
database, offers ``generate_image`` and ``edit_image`` while an image provider
is configured (withheld with a reason otherwise; re-checked when an admin
changes providers on this worker and every ``REFRESH_S`` on the others),
registers the user-data hook (export, import, deletion) and sweeps image bytes
no row names. Nothing is loaded until an image is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from parley.config import Settings
from parley.images.openai_routes import router as openai_router
from parley.images.providers import ProviderBook
from parley.images.router import router as native_router
from parley.images.service import ImageService
from parley.images.store import ImageBlobs
from parley.images.tools import make_image_tools
from parley.images.userdata import ImagesUserData
from parley.net import AddressPolicy
from parley.seam import FeatureContext
from parley.tools import Tool
from parley.usage.ledger import UsageLedger

__all__ = ["ImagesFeature", "images_feature"]

log = logging.getLogger(__name__)
MULTIPART_OVERHEAD = 64 * 1024
REFRESH_S = 15.0


class _Routers:
    """Both routers as one (the seam takes one router per feature)."""

    def __init__(self) -> None:
        from fastapi import APIRouter

        self.router = APIRouter()
        self.router.include_router(native_router)
        self.router.include_router(openai_router)


class ImagesFeature:
    name = "images"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.router: Any = _Routers().router
        # /v1/images/edits carries an image (and perhaps a mask) in multipart; a
        # variation, an image.
        self.body_limits = {
            "/v1/images/edits": 2 * settings.images_max_bytes + MULTIPART_OVERHEAD,
            "/v1/images/variations": settings.images_max_bytes + MULTIPART_OVERHEAD,
        }
        self._service: ImageService | None = None
        self._ctx: FeatureContext | None = None
        self._tools: list[Tool] = []
        self._task: asyncio.Task[None] | None = None
        self._offered: bool | None = None

    @property
    def service(self) -> ImageService:
        assert self._service is not None, "the images feature was not started"
        return self._service

    async def start(self, ctx: FeatureContext) -> None:
        self._ctx = ctx
        policy = AddressPolicy.from_entries(self.settings.fetch_allow_hosts)
        book = ProviderBook(self.settings, policy)
        service = ImageService(
            ctx.db,
            self.settings,
            book,
            ImageBlobs(self.settings.data_dir / "images"),
            ctx.lookup(UsageLedger),
        )
        service.on_change = self.refresh_tools
        self._service = service
        ctx.provide(ImageService, service)
        data = ImagesUserData(service)
        ctx.add_user_data(data)
        ctx.add_conversation_data(data)  # a temporary chat's pictures go with it
        self._tools = make_image_tools(service)
        await self.refresh_tools()
        with contextlib.suppress(Exception):
            removed = await service.sweep_orphans()
            if removed:
                log.info("removed %d image files no record named", removed)
        self._task = asyncio.create_task(self._refresh_loop(), name="images-refresh")

    async def refresh_tools(self) -> None:
        """Offer the image tools when a provider exists, else withhold them."""
        ctx, service = self._ctx, self._service
        if ctx is None or service is None:
            return
        async with service.db.session() as session:
            available = bool(await service.book.all(session))
        if available == self._offered:
            return
        self._offered = available
        for tool in self._tools:
            if available:
                ctx.add_tool(tool, replace=True)
            else:
                ctx.remove_tool(tool.name)
                ctx.withhold_tool(
                    tool, "No image provider is set up (an admin adds one in Admin → Images)."
                )

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh_tools()
            except Exception:
                log.exception("could not check the image providers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ctx is not None:
            for tool in self._tools:
                self._ctx.remove_tool(tool.name)
        if self._service is not None:
            await self._service.book.aclose()


def images_feature(settings: Settings) -> ImagesFeature:
    return ImagesFeature(settings)
