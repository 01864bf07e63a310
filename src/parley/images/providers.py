"""The image providers admins add (Admin -> Images), and the backend for each.

Rows of ``image_providers`` are read on every image job (one small query next
to a job that takes seconds), so an admin's change reaches every worker at once
with nothing cached. A provider's key is write-only: stored, sent to the
provider, never returned. The default provider is the one ``is_default`` marks,
else the oldest.

The provider's host is allowed for its own API calls (an admin chose it, and a
ComfyUI box is usually on the LAN); image URLs its answers point at are fetched
under the instance's ordinary policy plus that host, redirects re-checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import Settings
from parley.errors import Conflict, Invalid, NoModelAvailable, NotFound
from parley.images.backends import ComfyBackend, ImageBackend, OpenAIImagesBackend, check_mapping
from parley.images.tables import ImageProviderRecord
from parley.net import AddressPolicy, FetchError, Resolver, SafeFetcher, parse_url
from parley.storage.tables import utcnow

__all__ = ["ImagesUnavailable", "ProviderBook", "ProviderFields"]

KINDS = ("openai", "comfyui")


class ImagesUnavailable(NoModelAvailable):
    """No image provider is configured (503)."""

    code = "images_unavailable"


@dataclass(slots=True)
class ProviderFields:
    """What an admin sends; ``None`` leaves a field as it is on an edit."""

    name: str | None = None
    kind: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    workflow: Any = None
    mapping: Any = None
    price_per_image: float | None = None
    is_default: bool | None = None


def _check_url(url: str) -> str:
    try:
        parsed = parse_url(url)
    except FetchError as exc:
        raise Invalid(f"The provider URL is not valid: {exc}", code="bad_url") from None
    return parsed.url.rstrip("/")


class ProviderBook:
    def __init__(
        self, settings: Settings, policy: AddressPolicy, resolver: Resolver | None = None
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.resolver = resolver
        # provider id -> (the row's updated_at, its backend): a backend keeps its
        # connections (and TLS context) from one job to the next; an edited row gets a
        # new one, the old is closed at stop (a job may still be using it).
        self._backends: dict[str, tuple[datetime, ImageBackend]] = {}
        self._retired: list[ImageBackend] = []

    async def all(self, session: AsyncSession) -> list[ImageProviderRecord]:
        rows = await session.scalars(
            select(ImageProviderRecord).order_by(
                ImageProviderRecord.created_at, ImageProviderRecord.name
            )
        )
        return list(rows)

    async def get(self, session: AsyncSession, provider_id: str) -> ImageProviderRecord:
        row = await session.get(ImageProviderRecord, provider_id)
        if row is None:
            raise NotFound("image provider")
        return row

    async def named(self, session: AsyncSession, name: str) -> ImageProviderRecord | None:
        return await session.scalar(
            select(ImageProviderRecord).where(ImageProviderRecord.name == name)
        )

    async def default(self, session: AsyncSession) -> ImageProviderRecord:
        rows = await self.all(session)
        if not rows:
            raise ImagesUnavailable(
                "Image generation is not set up on this server; ask your administrator "
                "to add an image provider."
            )
        return next((r for r in rows if r.is_default), rows[0])

    async def add(self, session: AsyncSession, fields: ProviderFields) -> ImageProviderRecord:
        if not fields.name or not fields.kind or not fields.base_url:
            raise Invalid("A provider needs a name, a kind and a URL.", code="incomplete")
        row = ImageProviderRecord(
            name=fields.name, kind=fields.kind, base_url="", model="", price_per_image=0.0
        )
        self._apply(row, fields)
        if await session.scalar(
            select(ImageProviderRecord.id).where(ImageProviderRecord.name == row.name)
        ):
            raise Conflict(f"An image provider named {row.name!r} exists.", code="name_taken")
        first = not await self.all(session)
        row.is_default = bool(fields.is_default) or first
        if row.is_default:
            await session.execute(update(ImageProviderRecord).values(is_default=False))
        session.add(row)
        await session.flush()
        return row

    async def change(
        self, session: AsyncSession, provider_id: str, fields: ProviderFields
    ) -> ImageProviderRecord:
        row = await self.get(session, provider_id)
        if fields.name and fields.name != row.name:
            taken = await session.scalar(
                select(ImageProviderRecord.id).where(ImageProviderRecord.name == fields.name)
            )
            if taken:
                raise Conflict(
                    f"An image provider named {fields.name!r} exists.", code="name_taken"
                )
        self._apply(row, fields)
        if fields.is_default:
            await session.execute(
                update(ImageProviderRecord)
                .where(ImageProviderRecord.id != row.id)
                .values(is_default=False)
            )
            row.is_default = True
        row.updated_at = utcnow()
        await session.flush()
        return row

    async def remove(self, session: AsyncSession, provider_id: str) -> None:
        await session.delete(await self.get(session, provider_id))
        await session.flush()

    def _apply(self, row: ImageProviderRecord, fields: ProviderFields) -> None:
        if fields.name is not None:
            row.name = fields.name.strip()[:64]
        if fields.kind is not None:
            if fields.kind not in KINDS:
                raise Invalid("The kind is 'openai' or 'comfyui'.", code="bad_kind")
            row.kind = fields.kind
        if fields.base_url is not None:
            row.base_url = _check_url(fields.base_url)
        if fields.api_key is not None:
            row.api_key = fields.api_key or None  # "" removes the key
        if fields.model is not None:
            row.model = fields.model.strip()[:200]
        if fields.price_per_image is not None:
            if fields.price_per_image < 0:
                raise Invalid("A price cannot be negative.", code="bad_price")
            row.price_per_image = float(fields.price_per_image)
        if fields.workflow is not None:
            row.workflow = fields.workflow
        if fields.mapping is not None:
            row.mapping = fields.mapping
        if row.kind == "comfyui":
            row.mapping = check_mapping(row.workflow, row.mapping)

    def backend(self, row: ImageProviderRecord) -> ImageBackend:
        """The provider's backend, reused while its row is unchanged."""
        cached = self._backends.get(row.id)
        if cached is not None and cached[0] == row.updated_at:
            return cached[1]
        backend = self._build(row)
        self._backends[row.id] = (row.updated_at, backend)
        if cached is not None:
            self._retired.append(cached[1])
        return backend

    async def aclose(self) -> None:
        for backend in [b for _, b in self._backends.values()] + self._retired:
            await backend.aclose()
        self._backends.clear()
        self._retired.clear()

    def _build(self, row: ImageProviderRecord) -> ImageBackend:
        host = parse_url(row.base_url).host
        own = SafeFetcher(
            self.policy.with_hosts(host),
            resolver=self.resolver,
            max_bytes=self.settings.images_max_bytes,
            timeout_s=self.settings.images_timeout_s,
            max_redirects=0,
        )
        if row.kind == "comfyui":
            return ComfyBackend(
                row.base_url,
                workflow=row.workflow or {},
                mapping=row.mapping or {},
                fetcher=own,
                max_bytes=self.settings.images_max_bytes,
                timeout_s=self.settings.images_timeout_s,
                api_key=row.api_key,
            )
        return OpenAIImagesBackend(
            row.base_url,
            model=row.model,
            api_key=row.api_key,
            fetcher=own,
            downloads=SafeFetcher(
                self.policy.with_hosts(host),
                resolver=self.resolver,
                max_bytes=self.settings.images_max_bytes,
                timeout_s=self.settings.images_timeout_s,
                max_redirects=self.settings.fetch_max_redirects,
            ),
            max_bytes=self.settings.images_max_bytes,
            timeout_s=self.settings.images_timeout_s,
        )
