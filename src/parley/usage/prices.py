"""Model prices: what the usage ledger and chat messages charge per token.

A model's price is, in order: an administrator's (``model_prices``, edited in Admin
→ Prices or ``PUT /api/admin/prices``), else the model's own (``ModelInfo``: the
provider's settings, the config file, or ``parley.providers.known_models`` for
common hosted models), per million input, cached-input and output tokens, in the
instance's currency (the ``currency`` setting).

``PriceBook`` keeps the administrators' prices in memory: pricing a call is a dict
lookup (it happens at the end of every model call, on paths that cannot wait for a
query). ``fresh()`` re-reads the table at most every ``REFRESH_S``, and callers
await it where they can before a call (a turn's preparation, a ``/v1`` request),
so an edit reaches every worker within seconds. A row of the ledger stores the
cost it was charged: a price changes only what comes after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select

from parley.providers.base import ModelInfo
from parley.storage.db import Database
from parley.usage.tables import ModelPrice

__all__ = ["Price", "PriceBook", "default_price"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Price:
    """Per million tokens, in the instance's currency."""

    input: float = 0.0
    cached_input: float = 0.0
    output: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """``input_tokens`` includes the cached ones (as providers count them)."""
        cached = min(max(0, cached_input_tokens), max(0, input_tokens))
        fresh = max(0, input_tokens) - cached
        total = fresh * self.input + cached * self.cached_input + output_tokens * self.output
        return total / 1_000_000


def default_price(info: ModelInfo) -> Price:
    """The model's own price (provider settings, config file, known defaults)."""
    return Price(info.input_price, info.cached_input_price, info.output_price)


@dataclass(frozen=True, slots=True)
class SetPrice:
    """An administrator's price, with when and by whom it was set."""

    model: str
    price: Price
    updated_at: datetime
    updated_by: str | None


class PriceBook:
    """Administrators' prices, cached; see the module."""

    REFRESH_S = 2.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self._set: dict[str, Price] = {}
        self._read_at = -1e9
        self._lock = asyncio.Lock()

    async def fresh(self) -> None:
        """Re-read the administrators' prices when the copy is older than ``REFRESH_S``
        (a failed read keeps the old copy: pricing must not fail a call)."""
        if time.monotonic() - self._read_at < self.REFRESH_S:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < self.REFRESH_S:
                return
            try:
                self._set = {row.model: row.price for row in await self.list()}
            except Exception:
                log.exception("could not read the model prices; keeping the last ones")
            self._read_at = time.monotonic()

    def price(self, info: ModelInfo) -> Price:
        return self._set.get(info.ref) or default_price(info)

    def price_of(self, ref: str, default: Price | None = None) -> Price:
        """The price of a model known only by its ref (an embedding model)."""
        return self._set.get(ref) or default or Price()

    def cost(
        self, info: ModelInfo, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
    ) -> float:
        return self.price(info).cost(input_tokens, output_tokens, cached_input_tokens)

    async def list(self) -> list[SetPrice]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ModelPrice).order_by(ModelPrice.model))
            return [
                SetPrice(
                    row.model,
                    Price(row.input_price, row.cached_input_price, row.output_price),
                    row.updated_at,
                    row.updated_by,
                )
                for row in rows
            ]

    async def set(self, ref: str, price: Price, user_id: str | None) -> SetPrice:
        """Store an administrator's price for ``ref`` (applies from now on)."""
        now = datetime.now(UTC)
        async with self.db.session() as session:
            row = await session.get(ModelPrice, ref)
            if row is None:
                row = ModelPrice(model=ref)
                session.add(row)
            row.input_price = price.input
            row.cached_input_price = price.cached_input
            row.output_price = price.output
            row.updated_at = now
            row.updated_by = user_id
            await session.commit()
        self._set[ref] = price
        self._read_at = -1e9  # the next ``fresh`` re-reads (another worker may have edited)
        return SetPrice(ref, price, now, user_id)

    async def reset(self, ref: str) -> bool:
        """Forget the administrator's price: the model's own applies again."""
        async with self.db.session() as session:
            result = await session.execute(delete(ModelPrice).where(ModelPrice.model == ref))
            await session.commit()
        self._set.pop(ref, None)
        self._read_at = -1e9
        return bool(getattr(result, "rowcount", 0))
