"""What the Responses API keeps beside the chat it runs in.

A response is one turn of a Parley conversation (its answer is a message row);
this row holds what the message does not: the request's settings echoed back by
``GET /v1/responses/{id}``, the input items as the caller sent them, the output
items in the order they were streamed, the status of a background response and
the chain (``previous_response_id``). A Conversation's ``metadata`` lives in
``conversation_metadata``: the chat itself is the conversation row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["ConversationMetadata", "ResponseRecord"]


class ResponseRecord(Base):
    """One ``/v1/responses`` call. ``status``: queued, in_progress, completed,
    incomplete, failed, cancelled. ``message_id`` is the answer's row (None until
    the turn is prepared); deleting the conversation deletes its responses."""

    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_user_created", "user_id", "created_at"),
        Index("ix_responses_user_chain", "user_id", "chain_hash"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(String(32), index=True)
    previous_response_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)  # settings echoed back
    input: Mapped[list[Any]] = mapped_column(default=list)  # input items as sent
    output: Mapped[list[Any]] = mapped_column(default=list)  # output items as streamed
    usage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    incomplete_reason: Mapped[str | None] = mapped_column(String(64))
    # a stateless client's whole exchange so far (``responses/chain.py``): its next
    # call, repeating this history, continues this response's chat
    chain_hash: Mapped[str | None] = mapped_column(String(64))
    # store=false: the chat is temporary and removed once the answer is out
    stored: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConversationMetadata(Base):
    """A chat's ``metadata`` for the Conversations API (up to 16 string pairs)."""

    __tablename__ = "conversation_metadata"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
