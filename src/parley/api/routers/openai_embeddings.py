"""``POST /v1/embeddings``: OpenAI's embeddings API, served by Parley's own embedder.

The embedder is the one the knowledge feature indexes files with (``EMBEDDER``
on the services box: the embedded all-MiniLM-L6-v2 or the configured
OpenAI-compatible endpoint, chosen once by ``parley.embeddings.build_embedder``),
so a client gets the vectors Parley's own search uses. Its model is listed by
``GET /v1/models`` as ``embeddings/<name>``.

What OpenAI accepts and Parley does not is refused with a 400 that says so:
token arrays (Parley's embedders take text), ``dimensions`` other than the
model's own (these models cannot shorten vectors). Limits (texts per call,
characters per text) are settings. Vectors are L2-normalized like OpenAI's;
``encoding_format: base64`` sends the little-endian float32 bytes.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from parley.api.budget_headers import reserve_embeddings
from parley.embeddings import EMBEDDER, Embedder, EmbeddingError, public_name
from parley.engine.tokens import estimate_tokens
from parley.http.deps import EmbeddingsKey, Ledger, ServicesDep, SettingsDep, model_allowed
from parley.http.guard import GuardedRoute
from parley.http.problems import Problem
from parley.usage.ledger import UsageLedger

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["openai-compatible"])

EMBEDDINGS_PREFIX = "embeddings/"
PROVIDER = "embeddings"


class EmbeddingsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token arrays are not accepted)."
    )
    model: str = Field(max_length=300)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=300)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 float32 bytes.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


def embedding_ref(embedder: Embedder) -> str:
    """The embedding model's id in ``/v1`` (``embeddings/all-MiniLM-L6-v2``)."""
    return EMBEDDINGS_PREFIX + public_name(embedder)


def server_embedder(services: Any, settings: Any) -> Embedder | None:
    """The server's embedder when embeddings are on and its model is there."""
    if settings.embedding_provider == "none":
        return None
    embedder: Embedder | None = services.get(EMBEDDER)
    if embedder is None or getattr(embedder, "available", True) is False:
        return None
    return embedder


def _bad(message: str, param: str, code: str = "invalid_request") -> Problem:
    return Problem(400, message, code, param=param)


def _texts(body: EmbeddingsIn, max_inputs: int, max_chars: int) -> list[str]:
    raw = body.input
    texts = [raw] if isinstance(raw, str) else raw
    if not texts:
        raise _bad("'input' is empty: send a text or a list of texts.", "input")
    if any(not isinstance(item, str) for item in texts):
        raise _bad(
            "Token arrays are not accepted here: send the text itself, as a string or a "
            "list of strings.",
            "input",
            "token_input_unsupported",
        )
    if len(texts) > max_inputs:
        raise _bad(
            f"Too many inputs: {len(texts):,} texts in one call, at most {max_inputs:,}. "
            "Split them into several calls.",
            "input",
            "too_many_inputs",
        )
    for i, text in enumerate(texts):
        assert isinstance(text, str)
        if len(text) > max_chars:
            raise _bad(
                f"Input {i} is {len(text):,} characters long; at most {max_chars:,} are "
                "accepted. Split it into smaller passages.",
                f"input[{i}]" if not isinstance(raw, str) else "input",
                "input_too_long",
            )
    return [str(t) for t in texts]


@router.post("/embeddings", response_model=EmbeddingList)
async def create_embeddings(
    body: EmbeddingsIn,
    principal: EmbeddingsKey,
    services: ServicesDep,
    settings: SettingsDep,
    ledger: Ledger,
) -> Any:
    embedder = server_embedder(services, settings)
    if embedder is None:
        raise Problem(
            503,
            "Embeddings are not available on this server; ask your administrator.",
            "embeddings_unavailable",
        )
    ref = embedding_ref(embedder)
    if body.model not in (ref, public_name(embedder), "default", "parley"):
        raise Problem(
            404,
            f"Unknown embedding model {body.model!r}; this server embeds with {ref!r} "
            "(GET /v1/models lists it).",
            "model_not_found",
            param="model",
        )
    model_allowed(principal, ref)
    texts = _texts(body, settings.embeddings_max_inputs, settings.embeddings_max_input_chars)
    tokens = sum(max(1, estimate_tokens(t)) for t in texts)
    cost = await _price(ledger, ref, tokens)
    record = {
        "user_id": principal.user.id,
        "api_key_id": principal.api_key_id,
        "endpoint": "embeddings",
        "provider": PROVIDER,
        "model": ref,
        "input_tokens": tokens,
        "cost": cost,
    }
    dim = embedder.dim
    if body.dimensions is not None and dim and body.dimensions != dim:
        raise _bad(
            f"{ref} makes {dim}-dimensional vectors and cannot shorten them; leave out "
            "'dimensions'.",
            "dimensions",
            "dimensions_unsupported",
        )
    budgets, ticket = await reserve_embeddings(services, principal, cost, tokens)
    meter_start = _now_ms()
    try:
        vectors = await embedder.embed(texts)
    except EmbeddingError as exc:
        if budgets is not None and ticket is not None:
            budgets.settle_soon(ticket, 0.0, 0)  # nothing was embedded
        ledger.record_soon(
            **record, latency_ms=_now_ms() - meter_start, outcome="embeddings_failed"
        )
        raise Problem(
            502, "The embedding model failed; try again in a moment.", "embeddings_failed"
        ) from exc
    if budgets is not None and ticket is not None:
        budgets.settle_soon(ticket, cost, tokens)
    if body.dimensions is not None and vectors.shape[1] != body.dimensions:
        # only known now for an endpoint that had not answered before
        raise _bad(
            f"{ref} makes {vectors.shape[1]}-dimensional vectors and cannot shorten them; "
            "leave out 'dimensions'.",
            "dimensions",
            "dimensions_unsupported",
        )
    ledger.record_soon(**record, latency_ms=_now_ms() - meter_start, outcome="ok")
    data: list[dict[str, Any]] = []
    for i, row in enumerate(np.asarray(vectors, dtype=np.float32)):
        value: list[float] | str = (
            base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
            if body.encoding_format == "base64"
            else row.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": ref,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _now_ms() -> float:
    return time.monotonic() * 1000


async def _price(ledger: UsageLedger, ref: str, tokens: int) -> float:
    """What the embedding call costs: an administrator's price for ``ref`` (Admin →
    Prices), else nothing (embedding models have no built-in prices)."""
    await ledger.prices.fresh()
    return ledger.prices.price_of(ref).cost(tokens, 0)
