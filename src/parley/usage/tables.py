"""The ``usage_events`` table: what each billable call cost, kept for accounting.

A row outlives the conversation it belongs to (``conversation_id`` becomes null
when the chat is deleted) and the key that made it (keys are revoked, not deleted;
``api_key_id`` becomes null if one ever is); it goes with its user. ``project_id``
and ``assistant_id`` are the chat's scopes when the call was made, kept as plain
ids (no foreign key): what a deleted project spent stays attributed to it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["ModelPrice", "UsageEvent"]


class UsageEvent(Base):
    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_user_at", "user_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    project_id: Mapped[str | None] = mapped_column(String(32), default=None)
    assistant_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # chat, responses, chat.completions, embeddings, title, memory, summary, compact
    endpoint: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(300))  # the ref, provider/model
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)  # USD
    # seconds of audio heard or spoken (speech calls; 0 for the others)
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str] = mapped_column(String(60))  # ok | an error code | cancelled


class ModelPrice(Base):
    """An administrator's price for one model (per million tokens, in the instance's
    currency), overriding what the provider, the config file or
    ``parley.providers.known_models`` says. Rows of ``usage_events`` keep the cost
    they were charged, so changing a price changes only what comes after."""

    __tablename__ = "model_prices"

    model: Mapped[str] = mapped_column(String(300), primary_key=True)  # the ref
    input_price: Mapped[float] = mapped_column(Float, default=0.0)
    cached_input_price: Mapped[float] = mapped_column(Float, default=0.0)
    output_price: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
