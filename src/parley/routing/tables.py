"""``routing_policies``: the Auto model's rules, per instance, assistant or project.

One row per scope: ``("instance", "")``, ``("assistant", <id>)``,
``("project", <id>)``. Ids are plain strings without foreign keys: projects have
no table yet (another feature builds them), and a policy for a deleted assistant
or project is simply never read again (``RoutingService.clear`` removes it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, utcnow

__all__ = ["RoutingPolicy"]


class RoutingPolicy(Base):
    __tablename__ = "routing_policies"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    rules: Mapped[list[Any]] = mapped_column(JSON, default=list)  # Rule.public(), in order
    default_model: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
