"""The images feature's tables: the providers admins add, and every image made.

``image_providers``: an OpenAI-compatible images API or a ComfyUI server (its
workflow JSON and which node fields take the prompt, negative prompt, seed,
size and input image), with a price per image; one of them is the default.

``images``: one row per picture a user has (made, edited, varied), scoped by
``user_id`` on every read. ``parent_id`` is the image it was made from (an edit
or a variation) and ``root_id`` the first of the line, so a lineage is one
indexed query. The bytes are content-addressed under ``<data dir>/images``
(``sha256``), removed when the last row naming them goes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["ImageProviderRecord", "ImageRecord"]


class ImageProviderRecord(Base):
    __tablename__ = "image_providers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # openai | comfyui
    base_url: Mapped[str] = mapped_column(String(500))
    api_key: Mapped[str | None] = mapped_column(String(500), default=None)  # write-only
    model: Mapped[str] = mapped_column(String(200), default="")
    workflow: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)  # ComfyUI's
    mapping: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)  # field -> path
    price_per_image: Mapped[float] = mapped_column(Float, default=0.0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ImageRecord(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_user_created", "user_id", "created_at"),
        Index("ix_images_user_root", "user_id", "root_id"),
        Index("ix_images_sha256", "sha256"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The chat it was made in; the image stays the user's when the chat goes.
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), default=None
    )
    message_id: Mapped[str | None] = mapped_column(String(32), default=None)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), default=None
    )
    root_id: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(16))  # generate | edit | variation
    prompt: Mapped[str] = mapped_column(Text, default="")
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[str] = mapped_column(String(20), default="")
    seed: Mapped[int | None] = mapped_column(Integer, default=None)
    provider: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
