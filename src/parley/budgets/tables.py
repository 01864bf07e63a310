"""The budget tables: what an administrator set, and what each period has used.

- ``budgets``: one limit on one scope. ``kind`` is ``cost`` (an amount in the
  instance's currency per ``period``: ``day``, ``week``, ``month`` or ``total``),
  ``requests`` or ``tokens`` (per ``minute``: the rate limits). ``scope`` is
  ``instance`` (``scope_id`` empty), ``group``, ``user``, ``project`` or ``key``.
  ``downgrade_model``: a cost budget that, once spent, answers with this model
  instead of refusing.
- ``budget_counters``: one row per budget and period window (``window``: the
  period's key, e.g. ``2026-12-07`` or ``m29445811``): what calls settled
  (``spent``) and what calls in flight reserved (``reserved``). Reservations are
  taken with one conditional ``UPDATE`` (``spent + reserved + x <= limit``), which
  both databases apply atomically per row.
- ``budget_reservations``: each call in flight's share of each counter, with a
  lease: a worker that crashed mid-call never settles, and a sweep gives its
  reservation back once ``expires_at`` passed (``parley.budgets.ledger``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = ["Budget", "BudgetCounter", "BudgetReservation"]


class Budget(Base):
    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("scope", "scope_id", "kind", "period", name="uq_budgets_scope"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(16))  # instance | group | user | project | key
    scope_id: Mapped[str] = mapped_column(String(64), default="")  # "" for the instance
    kind: Mapped[str] = mapped_column(String(16))  # cost | requests | tokens
    period: Mapped[str] = mapped_column(String(8))  # day | week | month | total | minute
    amount: Mapped[float] = mapped_column(Float)  # currency, requests or tokens
    downgrade_model: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BudgetCounter(Base):
    __tablename__ = "budget_counters"

    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
    )
    window: Mapped[str] = mapped_column(String(16), primary_key=True)
    spent: Mapped[float] = mapped_column(Float, default=0.0)
    reserved: Mapped[float] = mapped_column(Float, default=0.0)


class BudgetReservation(Base):
    __tablename__ = "budget_reservations"
    __table_args__ = (Index("ix_budget_reservations_expires", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
    )
    window: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
