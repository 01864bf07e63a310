"""The images feature's rules: make (generate, edit, vary), keep, list, delete.

``ImageService.make`` is the one path every caller takes (the web app's routes,
a chat's image request, the model's tools, ``/v1/images``): it resolves the
provider, checks an input image, calls the backend, checks every image that
comes back (``pictures.inspect``: a provider is not trusted to send an image,
let alone a small one), stores the bytes and the rows with their lineage, and
writes one usage-ledger row per call (``endpoint="images"``, the provider's
price per image times the images made; a failed call is a row with its error
code and no cost). Every read is scoped to the user: another user's image id is
"not found", the same answer as an id that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.config import Settings
from parley.errors import Invalid, NotFound, ParleyError, ProviderProtocolError, Refused
from parley.images.backends import ImageJob
from parley.images.pictures import EXTENSIONS, inspect, parse_size
from parley.images.providers import ProviderBook
from parley.images.store import ImageBlobs
from parley.images.tables import ImageRecord
from parley.messages import StepAttachment
from parley.storage.conversations import ConversationStore
from parley.storage.db import Database
from parley.storage.tables import new_id, utcnow
from parley.usage.ledger import UsageLedger

__all__ = ["OPERATIONS", "TOOL_NAMES", "ImageService", "Made"]

log = logging.getLogger(__name__)

OPERATIONS = ("generate", "edit", "variation")
# The step name a chat answer carries for each operation (the web app shows these inline).
TOOL_NAMES = {"generate": "generate_image", "edit": "edit_image", "variation": "edit_image"}
ORPHAN_GRACE_S = 600.0


@dataclass(slots=True)
class Made:
    images: list[ImageRecord]
    cost: float
    provider: str
    model: str
    latency_ms: float


def content_url(image_id: str) -> str:
    return f"/api/images/{image_id}/content"


def filename(row: ImageRecord) -> str:
    return f"image-{row.id[:8]}.{EXTENSIONS.get(row.media_type, 'png')}"


def attachment(row: ImageRecord) -> StepAttachment:
    """The image as a chat step's attachment."""
    return {
        "id": row.id,
        "filename": filename(row),
        "media_type": row.media_type,
        "kind": "image",
        "size": row.size_bytes,
        "url": content_url(row.id),
    }


class ImageService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        book: ProviderBook,
        blobs: ImageBlobs,
        ledger: Callable[[], UsageLedger | None],
    ) -> None:
        self.db = db
        self.settings = settings
        self.book = book
        self.blobs = blobs
        self._ledger = ledger
        # Called after an admin changed the providers (the feature re-offers its tools).
        self.on_change: Callable[[], Awaitable[None]] | None = None

    async def changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()

    # ------------------------------------------------------------------ checks

    async def check_upload(self, data: bytes) -> str:
        """The media type of an image a user sent, or a refusal (``pictures``)."""
        picture = await asyncio.to_thread(
            inspect,
            data,
            max_bytes=self.settings.images_max_bytes,
            max_pixels=self.settings.images_max_pixels,
        )
        return picture.media_type

    # ------------------------------------------------------------------ making

    async def make(
        self,
        user_id: str,
        *,
        operation: str,
        prompt: str = "",
        negative_prompt: str = "",
        size: str | None = None,
        seed: int | None = None,
        n: int = 1,
        parent_id: str | None = None,
        image: bytes | None = None,
        mask: bytes | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        api_key_id: str | None = None,
        endpoint: str = "images",
        provider: str | None = None,
    ) -> Made:
        if operation not in OPERATIONS:
            raise Invalid(f"Unknown operation {operation!r}.", code="bad_operation")
        prompt = prompt.strip()
        if operation != "variation" and not prompt:
            raise Invalid("Describe the image in the prompt.", code="prompt_required")
        if len(prompt) > self.settings.images_max_prompt_chars:
            raise Invalid(
                f"The prompt is {len(prompt):,} characters; at most "
                f"{self.settings.images_max_prompt_chars:,} are accepted.",
                code="prompt_too_long",
            )
        if not 1 <= n <= self.settings.images_max_n:
            raise Invalid(
                f"Ask for 1 to {self.settings.images_max_n} images at a time.", code="bad_n"
            )
        async with self.db.session() as session:
            chosen = await self.book.named(session, provider) if provider else None
            provider_row = chosen or await self.book.default(session)
            parent = await self._own(session, user_id, parent_id) if parent_id else None
        if operation != "generate" and image is None and parent is None:
            raise Invalid("Say which image to change.", code="image_required")
        image_type = "image/png"
        if parent is not None and image is None:
            image = await asyncio.to_thread(self.blobs.read, parent.sha256)
            image_type = parent.media_type
        elif image is not None:
            image_type = await self.check_upload(image)
        if mask is not None:
            await self._check_mask(operation, mask, image)
        if operation == "variation" and not prompt and parent is not None:
            prompt = parent.prompt
        width, height = parse_size(
            size or (parent.size if parent else "") or self.settings.images_default_size
        )
        job = ImageJob(
            operation=operation,
            prompt=prompt,
            negative_prompt=negative_prompt.strip(),
            width=width,
            height=height,
            seed=seed,
            n=n,
            image=image,
            image_type=image_type,
            mask=mask,
        )
        model = f"{provider_row.name}/{provider_row.model or provider_row.kind}"
        charge = {
            "user_id": user_id,
            "api_key_id": api_key_id,
            "conversation_id": conversation_id,
            "endpoint": endpoint,
            "provider": provider_row.name,
            "model": model,
        }
        started = time.monotonic()
        backend = self.book.backend(provider_row)
        try:
            outputs = await backend.run(job)
            checked = [await self._check_output(made.data) for made in outputs]
        except ParleyError as exc:
            await self._record(charge, started, cost=0.0, outcome=exc.code)
            raise
        except Exception:
            await self._record(charge, started, cost=0.0, outcome="error")
            raise
        cost = provider_row.price_per_image * len(outputs)
        rows = []
        async with self.db.session() as session:
            for made, (media_type, width, height) in zip(outputs, checked, strict=True):
                sha = await asyncio.to_thread(self.blobs.put, made.data)
                image_id = new_id()
                rows.append(
                    ImageRecord(
                        id=image_id,
                        user_id=user_id,
                        conversation_id=conversation_id,
                        message_id=message_id,
                        parent_id=parent.id if parent else None,
                        root_id=parent.root_id if parent else image_id,
                        operation=operation,
                        prompt=made.revised_prompt or prompt,
                        negative_prompt=job.negative_prompt,
                        size=f"{width}x{height}",
                        seed=made.seed,
                        provider=provider_row.name,
                        model=model,
                        media_type=media_type,
                        width=width,
                        height=height,
                        size_bytes=len(made.data),
                        sha256=sha,
                        cost=provider_row.price_per_image,
                        created_at=utcnow(),
                    )
                )
            session.add_all(rows)
            await session.commit()
        latency = await self._record(charge, started, cost=cost, outcome="ok")
        return Made(rows, cost, provider_row.name, model, latency)

    async def _check_mask(self, operation: str, mask: bytes, image: bytes | None) -> None:
        """An edit's mask is a PNG of the image's own size (what OpenAI's API and a
        ComfyUI mask loader expect); anything else is refused before a provider is paid."""
        if operation != "edit":
            raise Invalid("A mask only applies to an edit.", code="mask_not_for_operation")
        limits = {
            "max_bytes": self.settings.images_max_bytes,
            "max_pixels": self.settings.images_max_pixels,
        }
        shape = await asyncio.to_thread(inspect, mask, **limits)
        if shape.media_type != "image/png":
            raise Invalid(
                "The mask must be a PNG whose transparent pixels mark where to edit.",
                code="bad_mask",
            )
        if image is not None:
            picture = await asyncio.to_thread(inspect, image, **limits)
            if (shape.width, shape.height) != (picture.width, picture.height):
                raise Invalid(
                    f"The mask is {shape.width}x{shape.height} but the image is "
                    f"{picture.width}x{picture.height}; they must be the same size.",
                    code="bad_mask",
                )

    async def _check_output(self, data: bytes) -> tuple[str, int, int]:
        try:
            picture = await asyncio.to_thread(
                inspect,
                data,
                max_bytes=self.settings.images_max_bytes,
                max_pixels=self.settings.images_max_pixels,
            )
        except Refused as exc:
            raise ProviderProtocolError(
                f"The image provider sent an image Parley cannot accept: {exc.message}"
            ) from exc
        return picture.media_type, picture.width, picture.height

    async def _record(
        self, charge: dict[str, Any], started: float, *, cost: float, outcome: str
    ) -> float:
        latency = (time.monotonic() - started) * 1000
        ledger = self._ledger()
        if ledger is not None:
            await ledger.record(**charge, cost=cost, latency_ms=latency, outcome=outcome)
        return latency

    # ------------------------------------------------------------------ a chat's request

    async def in_chat(
        self,
        user_id: str,
        conversation_id: str,
        *,
        operation: str,
        prompt: str,
        parent_id: str | None = None,
        size: str | None = None,
    ) -> tuple[str, str, Made]:
        """The user asked for a picture from the composer: the request becomes the
        chat's next exchange (the question, and an answer whose step shows the
        images), so it is there after a reload like any answer. Returns the two
        message ids and what was made. The chat is checked before anything is
        made (another user's chat is "not found" and costs nothing)."""
        async with self.db.session() as session:
            store = ConversationStore(session, user_id)
            if await store.get(conversation_id) is None:
                raise NotFound("conversation")
        made = await self.make(
            user_id,
            operation=operation,
            prompt=prompt,
            parent_id=parent_id,
            size=size,
            conversation_id=conversation_id,
            endpoint="images",
        )
        async with self.db.session() as session:
            store = ConversationStore(session, user_id)
            conv = await store.get(conversation_id)
            if conv is None:
                raise NotFound("conversation")
            words = {"generate": "", "edit": "Edit: ", "variation": "Variation: "}
            question = await store.add_message(
                conv,
                role="user",
                content=f"{words[operation]}{prompt}".strip() or "Variation",
                parent_id=conv.active_leaf_id,
            )
            arguments: dict[str, Any] = {"prompt": prompt}
            if parent_id:
                arguments["image_id"] = parent_id
            if operation == "variation":
                arguments["variation"] = True
            answer = await store.add_message(
                conv,
                role="assistant",
                content="",
                parent_id=question.id,
                provider=made.provider,
                model=made.model,
                cost=made.cost,
                latency_ms=made.latency_ms,
                finish_reason="stop",
                steps=[
                    {
                        "id": f"img_{new_id()[:12]}",
                        "name": TOOL_NAMES[operation],
                        "arguments": json.dumps(arguments),
                        "offset": 0,
                        "output": describe(made.images),
                        "is_error": False,
                        "duration_ms": round(made.latency_ms, 1),
                        "attachments": [attachment(r) for r in made.images],
                    }
                ],
            )
            ids = [r.id for r in made.images]
            rows = await session.scalars(select(ImageRecord).where(ImageRecord.id.in_(ids)))
            for row in rows:
                row.message_id = answer.id
            await session.commit()
        for row in made.images:
            row.message_id = answer.id
        return question.id, answer.id, made

    # ------------------------------------------------------------------ reading

    async def _own(self, session: AsyncSession, user_id: str, image_id: str) -> ImageRecord:
        row = await session.scalar(
            select(ImageRecord).where(ImageRecord.id == image_id, ImageRecord.user_id == user_id)
        )
        if row is None:
            raise NotFound("image")
        return row

    async def get(self, user_id: str, image_id: str) -> ImageRecord:
        async with self.db.session() as session:
            return await self._own(session, user_id, image_id)

    async def content(self, user_id: str, image_id: str) -> tuple[ImageRecord, Any]:
        row = await self.get(user_id, image_id)
        path = self.blobs.path(row.sha256)
        if not path.is_file():
            raise NotFound("image")
        return row, path

    async def list_images(
        self, user_id: str, conversation_id: str | None = None, limit: int = 100
    ) -> list[ImageRecord]:
        query = select(ImageRecord).where(ImageRecord.user_id == user_id)
        if conversation_id is not None:
            query = query.where(ImageRecord.conversation_id == conversation_id)
        query = query.order_by(ImageRecord.created_at.desc(), ImageRecord.id).limit(limit)
        async with self.db.session() as session:
            return list(await session.scalars(query))

    async def lineage(self, user_id: str, image_id: str) -> list[ImageRecord]:
        """Every image of ``image_id``'s line (its first image and all made from it),
        oldest first; each row's ``parent_id`` draws the tree."""
        async with self.db.session() as session:
            row = await self._own(session, user_id, image_id)
            rows = await session.scalars(
                select(ImageRecord)
                .where(ImageRecord.user_id == user_id, ImageRecord.root_id == row.root_id)
                .order_by(ImageRecord.created_at, ImageRecord.id)
            )
            return list(rows)

    # ------------------------------------------------------------------ deleting

    async def delete(self, user_id: str, image_id: str) -> None:
        """Remove the image and, when no other row names them, its bytes. Images made
        from it keep their own bytes and their ``root_id``; their ``parent_id``
        becomes null (the database's ``SET NULL``)."""
        async with self.db.session() as session:
            row = await self._own(session, user_id, image_id)
            sha = row.sha256
            await session.execute(
                ImageRecord.__table__.update()  # type: ignore[attr-defined]
                .where(ImageRecord.parent_id == row.id)
                .values(parent_id=None)
            )
            await session.delete(row)
            await session.commit()
        await self.release([sha])

    async def release(self, shas: Sequence[str]) -> None:
        """Unlink the blobs of ``shas`` no row names any more (after a commit)."""
        if not shas:
            return
        async with self.db.session() as session:
            kept = set(
                await session.scalars(
                    select(ImageRecord.sha256).where(ImageRecord.sha256.in_(list(set(shas))))
                )
            )
        for sha in set(shas) - kept:
            await asyncio.to_thread(self.blobs.delete, sha)

    async def delete_rows(self, session: AsyncSession, user_id: str) -> list[str]:
        """Delete every image of the user in ``session`` (the caller commits); the
        digests to ``release`` afterwards."""
        shas = list(
            await session.scalars(select(ImageRecord.sha256).where(ImageRecord.user_id == user_id))
        )
        await session.execute(
            ImageRecord.__table__.update()  # type: ignore[attr-defined]
            .where(ImageRecord.user_id == user_id)
            .values(parent_id=None)
        )
        await session.execute(delete(ImageRecord).where(ImageRecord.user_id == user_id))
        return shas

    async def sweep_orphans(self) -> int:
        """Remove blobs no row names (older than ``ORPHAN_GRACE_S``: a job in flight
        writes its bytes before its row commits)."""
        candidates = list(await asyncio.to_thread(lambda: list(self.blobs.all(ORPHAN_GRACE_S))))
        if not candidates:
            return 0
        removed = 0
        async with self.db.session() as session:
            for start in range(0, len(candidates), 500):
                batch = candidates[start : start + 500]
                kept = set(
                    await session.scalars(
                        select(ImageRecord.sha256).where(ImageRecord.sha256.in_(batch))
                    )
                )
                for sha in set(batch) - kept:
                    self.blobs.delete(sha)
                    removed += 1
        return removed

    async def count(self, user_id: str) -> int:
        async with self.db.session() as session:
            return int(
                await session.scalar(
                    select(func.count(ImageRecord.id)).where(ImageRecord.user_id == user_id)
                )
                or 0
            )


def describe(rows: Sequence[ImageRecord]) -> str:
    """What the model (and a tool step) reads about images just made."""
    parts = [
        f"image id {r.id} ({r.width}x{r.height}, {r.media_type}, shown to the user)" for r in rows
    ]
    return "Made " + "; ".join(parts) + ". To change one, call edit_image with its id."
