"""Usage views and prices: a user's CSV of their ledger rows, the administrators'
usage across users (totals and CSV), and the prices administrators edit.

``GET /api/me/usage`` (the user's totals) stays in ``me.py``. Totals are summed in
SQL (``UsageLedger.summary``); CSV is streamed from the database in batches
(``UsageLedger.rows``), so an export of a long period holds one batch in memory.
Names (users' emails, keys' names) are looked up once per response.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from parley.api.routers.openai_embeddings import embedding_ref, server_embedder
from parley.api.schemas import Timestamp, UsageTotalOut
from parley.http.bodies import iso
from parley.http.deps import DB, AdminUser, CurrentUser, Ledger, ServicesDep, SettingsDep, Sync
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.storage.tables import ApiKey, User
from parley.usage.ledger import UsageLedger
from parley.usage.prices import Price, default_price

router = APIRouter(route_class=GuardedRoute, prefix="/api", tags=["usage"])


class CSVResponse(StreamingResponse):
    """A streamed CSV download (so the API document says ``text/csv``, not JSON)."""

    media_type = "text/csv"


Days = Annotated[int, Query(ge=1, le=366, description="Days back, today included (UTC).")]
CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "One line per model call, oldest first."}
}
COLUMNS = [
    "time",
    "endpoint",
    "provider",
    "model",
    "api_key",
    "conversation_id",
    "project_id",
    "assistant_id",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost",
    "currency",
    "latency_ms",
    "outcome",
    "audio_seconds",  # speech calls (parley.speech); 0 for the others
]


# ---------------------------------------------------------------- schemas


class AdminUsageSummary(BaseModel):
    """Every user's usage since ``since`` (``GET /api/admin/usage``); ``name`` is the
    user's email (by user) or the key's name (by key)."""

    since: Timestamp
    currency: str
    by_day: list[UsageTotalOut]
    by_user: list[UsageTotalOut]
    by_model: list[UsageTotalOut]
    by_key: list[UsageTotalOut]
    by_project: list[UsageTotalOut]
    by_assistant: list[UsageTotalOut]
    by_endpoint: list[UsageTotalOut]


class ModelPriceOut(BaseModel):
    model: str = Field(description="The model's ref, provider/model.")
    display_name: str | None = None
    input_price: float = Field(description="Per million input tokens, in the currency.")
    cached_input_price: float
    output_price: float
    source: str = Field(description="`admin`: set here; `default`: the model's own price.")
    default_input_price: float
    default_cached_input_price: float
    default_output_price: float
    listed: bool = Field(description="False: priced, but no provider offers it now.")
    updated_at: Timestamp | None = None


class PriceList(BaseModel):
    currency: str
    items: list[ModelPriceOut]


class PriceIn(BaseModel):
    model: str = Field(min_length=1, max_length=300)
    input_price: float = Field(ge=0, le=1_000_000)
    cached_input_price: float = Field(ge=0, le=1_000_000)
    output_price: float = Field(ge=0, le=1_000_000)


class PriceReset(BaseModel):
    model: str = Field(min_length=1, max_length=300)


# ---------------------------------------------------------------- helpers


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``)
    is quoted with a leading apostrophe (key names and emails are typed by people)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def _csv(
    ledger: UsageLedger,
    user_id: str | None,
    days: int,
    currency: str,
    keys: dict[str, str],
    emails: dict[str, str] | None,
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((["user"] if emails is not None else []) + COLUMNS)
    async for batch in ledger.rows(user_id, days):
        for row in batch:
            line = [
                iso(row.at),
                row.endpoint,
                row.provider,
                row.model,
                keys.get(row.api_key_id or "", row.api_key_id or ""),
                row.conversation_id or "",
                row.project_id or "",
                row.assistant_id or "",
                row.input_tokens,
                row.cached_input_tokens,
                row.output_tokens,
                f"{row.cost:.8f}",
                currency,
                row.latency_ms,
                row.outcome,
                row.audio_seconds,
            ]
            if emails is not None:
                line.insert(0, emails.get(row.user_id, row.user_id))
            writer.writerow([_cell(value) for value in line])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _download(stream: AsyncIterator[bytes], name: str) -> CSVResponse:
    day = datetime.now(UTC).date().isoformat()
    return CSVResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{day}.csv"'},
    )


# ---------------------------------------------------------------- a user's own


@router.get("/me/usage.csv", response_class=CSVResponse, responses=CSV_DOC)
async def my_usage_csv(
    user: CurrentUser, db: DB, ledger: Ledger, settings: SettingsDep, days: Days = 30
) -> CSVResponse:
    """Your ledger rows of the last ``days`` days as CSV (the key's name, not its id)."""
    keys = {k.id: k.name for k in await db.scalars(select(ApiKey).where(ApiKey.user_id == user.id))}
    await db.close()  # the stream reads with its own session
    return _download(_csv(ledger, user.id, days, settings.currency, keys, None), "parley-usage")


# ---------------------------------------------------------------- administrators


@router.get("/admin/usage")
async def admin_usage(
    admin: AdminUser, db: DB, ledger: Ledger, settings: SettingsDep, days: Days = 30
) -> AdminUsageSummary:
    """Every user's usage summed by day, user, model, API key, project, assistant and
    what made the calls (``endpoint``)."""
    groups = ("day", "user", "model", "key", "project", "assistant", "endpoint")
    since, found = await ledger.summary(None, days, groups)
    emails = {u.id: u.email for u in await db.scalars(select(User))}
    keys = {k.id: k.name for k in await db.scalars(select(ApiKey))}
    return AdminUsageSummary(
        since=iso(since) or "",
        currency=settings.currency,
        by_day=[UsageTotalOut.of(t) for t in found["day"]],
        by_user=[UsageTotalOut.of(t, emails.get(t.key or "")) for t in found["user"]],
        by_model=[UsageTotalOut.of(t) for t in found["model"]],
        by_key=[UsageTotalOut.of(t, keys.get(t.key or "")) for t in found["key"]],
        by_project=[UsageTotalOut.of(t) for t in found["project"]],
        by_assistant=[UsageTotalOut.of(t) for t in found["assistant"]],
        by_endpoint=[UsageTotalOut.of(t) for t in found["endpoint"]],
    )


@router.get("/admin/usage.csv", response_class=CSVResponse, responses=CSV_DOC)
async def admin_usage_csv(
    admin: AdminUser, db: DB, ledger: Ledger, settings: SettingsDep, days: Days = 30
) -> CSVResponse:
    """Every user's ledger rows of the last ``days`` days as CSV, with the user's email."""
    emails = {u.id: u.email for u in await db.scalars(select(User))}
    keys = {k.id: k.name for k in await db.scalars(select(ApiKey))}
    await db.close()
    stream = _csv(ledger, None, days, settings.currency, keys, emails)
    return _download(stream, "parley-usage-all")


async def _prices(
    db: Any, sync: Any, ledger: UsageLedger, settings: Any, services: Any
) -> PriceList:
    """Every model a provider offers now (and the embedding model), with its price:
    an administrator's, else its own; and models priced here that no provider offers."""
    registry = await sync.ensure_fresh(db)
    set_here = {row.model: row for row in await ledger.prices.list()}
    items: list[ModelPriceOut] = []
    listed: dict[str, tuple[str | None, Price]] = {
        info.ref: (info.display_name, default_price(info)) for info in await registry.list_models()
    }
    embedder = server_embedder(services, settings)
    if embedder is not None:
        listed.setdefault(embedding_ref(embedder), (None, Price()))
    for ref in sorted(set(listed) | set(set_here)):
        display, own = listed.get(ref, (None, Price()))
        mine = set_here.get(ref)
        price = mine.price if mine else own
        items.append(
            ModelPriceOut(
                model=ref,
                display_name=display,
                input_price=price.input,
                cached_input_price=price.cached_input,
                output_price=price.output,
                source="admin" if mine else "default",
                default_input_price=own.input,
                default_cached_input_price=own.cached_input,
                default_output_price=own.output,
                listed=ref in listed,
                updated_at=iso(mine.updated_at) if mine else None,
            )
        )
    return PriceList(currency=settings.currency, items=items)


@router.get("/admin/prices")
async def list_prices(
    admin: AdminUser,
    db: DB,
    sync: Sync,
    ledger: Ledger,
    settings: SettingsDep,
    services: ServicesDep,
) -> PriceList:
    """Every model with its price per million tokens, in the instance's currency."""
    return await _prices(db, sync, ledger, settings, services)


@router.put("/admin/prices")
async def set_price(
    body: PriceIn,
    admin: AdminUser,
    db: DB,
    sync: Sync,
    ledger: Ledger,
    settings: SettingsDep,
    services: ServicesDep,
) -> ModelPriceOut:
    """Set a model's price (applies to calls from now on; recorded calls keep theirs)."""
    ref = body.model.strip()
    price = Price(body.input_price, body.cached_input_price, body.output_price)
    await ledger.prices.set(ref, price, admin.id)
    found = await _prices(db, sync, ledger, settings, services)
    return next(item for item in found.items if item.model == ref)


@router.post("/admin/prices/reset")
async def reset_price(
    body: PriceReset,
    admin: AdminUser,
    db: DB,
    sync: Sync,
    ledger: Ledger,
    settings: SettingsDep,
    services: ServicesDep,
) -> ModelPriceOut:
    """Forget the price set here: the model's own price applies again from now on."""
    if not await ledger.prices.reset(body.model):
        raise Problem(404, "This model has no price set here.", "price_not_found")
    found = await _prices(db, sync, ledger, settings, services)
    for item in found.items:
        if item.model == body.model:
            return item
    # priced here but offered by no provider: nothing is left to show
    return ModelPriceOut(
        model=body.model,
        input_price=0,
        cached_input_price=0,
        output_price=0,
        source="default",
        default_input_price=0,
        default_cached_input_price=0,
        default_output_price=0,
        listed=False,
    )
