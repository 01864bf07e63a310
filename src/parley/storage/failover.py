"""Failover's shared state: each model's fallbacks, each provider's circuit breaker.

Both live in the database so every worker sees the same: an admin's fallback list
applies everywhere within a second (``parley.turns.failover`` re-reads the small
table at most once a second), and a provider's breaker opened by failures on one
worker skips that provider on all of them.

The breaker's transitions are single conditional ``UPDATE`` statements, so two
workers failing at once count two failures and only one of them gets the probe
of a half-open circuit (a compare-and-set on ``generation``). Successes write
nothing while the circuit is closed and clean (``allow`` read the row just before),
and a circuit read clean is trusted for ``FRESH_S`` on this worker: the healthy path
costs at most one primary-key read per provider and half second, and another
worker's opening of a circuit reaches this one within that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, String, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.db import Database
from parley.storage.tables import Base, UTCDateTime, utcnow

FRESH_S = 0.5  # how long this worker trusts a circuit it read closed and clean

__all__ = [
    "BreakerState",
    "DatabaseBreaker",
    "ModelFallback",
    "ProviderBreaker",
    "clear_fallbacks",
    "set_fallbacks",
    "stored_fallbacks",
]


class ModelFallback(Base):
    """A model's fallbacks as an admin set them (over the config file's; ``[]``: none)."""

    __tablename__ = "model_fallbacks"

    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    fallbacks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # refs, in order
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderBreaker(Base):
    """One provider's circuit: ``closed`` (calls go through), ``open`` (skipped until
    ``opened_at`` + cooldown), ``half_open`` (one probe call in flight since ``probe_at``)."""

    __tablename__ = "provider_breakers"

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every change
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# ------------------------------------------------------------------ fallbacks


async def stored_fallbacks(session: Any) -> dict[str, list[str]]:
    """Every model's fallbacks set in Admin, by model ref."""
    rows = await session.scalars(select(ModelFallback))
    return {row.model: [str(ref) for ref in row.fallbacks or []] for row in rows}


async def set_fallbacks(session: Any, model: str, refs: list[str]) -> None:
    """Store ``refs`` as ``model``'s fallbacks (the caller commits)."""
    row = await session.get(ModelFallback, model)
    if row is None:
        session.add(ModelFallback(model=model, fallbacks=list(refs), updated_at=utcnow()))
    else:
        row.fallbacks = list(refs)
        row.updated_at = utcnow()


async def clear_fallbacks(session: Any, model: str) -> None:
    """Forget the admin's list: the config file's applies again (the caller commits)."""
    await session.execute(delete(ModelFallback).where(ModelFallback.model == model))


# ------------------------------------------------------------------ breaker


@dataclass(frozen=True, slots=True)
class BreakerState:
    provider: str
    state: str
    failures: int
    opened_at: datetime | None
    retry_at: datetime | None  # when an open circuit lets its probe through


class DatabaseBreaker:
    """A ``parley.providers.failover.Breaker`` shared by every worker on ``db``."""

    def __init__(self, db: Database, threshold: int = 5, cooldown_s: float = 30.0) -> None:
        self.db = db
        self.threshold = max(1, threshold)
        self.cooldown = timedelta(seconds=cooldown_s)
        # providers whose row read closed with no failures, and when (monotonic)
        self._clean: dict[str, float] = {}

    async def allow(self, provider: str) -> bool:
        read_at = self._clean.get(provider)
        if read_at is not None and time.monotonic() - read_at < FRESH_S:
            return True
        async with self.db.session() as session:
            row = await session.get(ProviderBreaker, provider)
            if row is None or row.state == "closed":
                if row is None or row.failures == 0:
                    self._clean[provider] = time.monotonic()
                else:
                    self._clean.pop(provider, None)
                return True
            self._clean.pop(provider, None)
            now = utcnow()
            since = row.opened_at if row.state == "open" else row.probe_at
            if since is not None and now - since < self.cooldown:
                return False
            # The cooldown passed (or a probe's worker never reported back): the one
            # caller whose compare-and-set lands is the probe.
            claimed = await session.execute(
                update(ProviderBreaker)
                .where(
                    ProviderBreaker.provider == provider,
                    ProviderBreaker.generation == row.generation,
                )
                .values(
                    state="half_open",
                    probe_at=now,
                    generation=ProviderBreaker.generation + 1,
                    updated_at=now,
                )
            )
            await session.commit()
            return bool(getattr(claimed, "rowcount", 0) == 1)

    async def succeeded(self, provider: str) -> None:
        if provider in self._clean:
            return
        now = utcnow()
        async with self.db.session() as session:
            await session.execute(
                update(ProviderBreaker)
                .where(ProviderBreaker.provider == provider)
                .where((ProviderBreaker.failures > 0) | (ProviderBreaker.state != "closed"))
                .values(
                    state="closed",
                    failures=0,
                    opened_at=None,
                    probe_at=None,
                    generation=ProviderBreaker.generation + 1,
                    updated_at=now,
                )
            )
            await session.commit()
        self._clean[provider] = time.monotonic()

    async def failed(self, provider: str) -> None:
        self._clean.pop(provider, None)
        for _ in range(2):  # a second round when another worker inserted the row first
            now = utcnow()
            opens = (ProviderBreaker.state == "half_open") | (
                (ProviderBreaker.state == "closed")
                & (ProviderBreaker.failures + 1 >= self.threshold)
            )
            async with self.db.session() as session:
                counted = await session.execute(
                    update(ProviderBreaker)
                    .where(ProviderBreaker.provider == provider)
                    .values(
                        failures=ProviderBreaker.failures + 1,
                        state=case((opens, "open"), else_=ProviderBreaker.state),
                        opened_at=case((opens, now), else_=ProviderBreaker.opened_at),
                        generation=ProviderBreaker.generation + 1,
                        updated_at=now,
                    )
                )
                if getattr(counted, "rowcount", 0) == 1:
                    await session.commit()
                    return
                opened = self.threshold <= 1
                session.add(
                    ProviderBreaker(
                        provider=provider,
                        state="open" if opened else "closed",
                        failures=1,
                        generation=1,
                        opened_at=now if opened else None,
                        updated_at=now,
                    )
                )
                try:
                    await session.commit()
                    return
                except IntegrityError:
                    await session.rollback()

    async def states(self) -> list[BreakerState]:
        """Every provider that has failed since its circuit last closed clean."""
        async with self.db.session() as session:
            unwell = (ProviderBreaker.state != "closed") | (ProviderBreaker.failures > 0)
            rows = list(await session.scalars(select(ProviderBreaker).where(unwell)))
        return [
            BreakerState(
                row.provider,
                row.state,
                row.failures,
                row.opened_at,
                row.opened_at + self.cooldown
                if row.state == "open" and row.opened_at is not None
                else None,
            )
            for row in rows
        ]

    async def reset(self, provider: str) -> None:
        """Close ``provider``'s circuit now (an admin fixed the provider)."""
        async with self.db.session() as session:
            gone = delete(ProviderBreaker).where(ProviderBreaker.provider == provider)
            await session.execute(gone)
            await session.commit()
        self._clean.pop(provider, None)
