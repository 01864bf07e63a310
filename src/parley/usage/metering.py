"""Ledger rows for the model calls that are neither a chat turn's nor a ``/v1``
relay's: titles, memory extraction, summaries, compaction, remote embeddings.

Those paths call a ``ChatModel`` or an ``Embedder`` deep inside a feature, so
rather than threading the ledger through each of them the caller wraps what it
hands over:

- ``metered(model, ledger, charge)`` is the model with every ``stream`` metered:
  one row when the stream ends, however it ends (``ok``, the provider's error
  code, ``cancelled`` when the consumer stopped reading or timed out). Tokens and
  cost come from ``Meter``, so they follow the ``/v1`` rules (the provider's
  report, else counted; a non-empty answer is never zero).
- ``meter_embedder(embedder, ledger)`` sets a remote embedder's ``on_call`` hook
  (``parley.embeddings``, a layer below, cannot import the ledger); each HTTP
  request to the endpoint is one row, charged to whoever ``billed_to`` names in
  the calling task's context. An embedding made with no payer in context is the
  ``/v1/embeddings`` route's (which records its own row) or the instance's own
  (topic vectors): not recorded here.

``Charge`` says who pays and under which label (``endpoint``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

from parley.embeddings import EmbedCall
from parley.engine.tokens import counter_for
from parley.errors import ProviderError
from parley.messages import ProviderEvent
from parley.providers.base import ChatModel, ChatRequest
from parley.usage.ledger import Meter, UsageLedger

__all__ = [
    "EMBEDDINGS_PROVIDER",
    "Charge",
    "LedgerRef",
    "MeteredModel",
    "billed_to",
    "meter_embedder",
    "metered",
]

EMBEDDINGS_PROVIDER = "embeddings"  # as ``/v1/embeddings`` records its rows
LedgerRef = Callable[[], UsageLedger | None]  # ``ctx.lookup(UsageLedger)``


@dataclass(frozen=True, slots=True)
class Charge:
    """Who a call is charged to, and what it was for (``endpoint``: ``title``,
    ``memory``, ``summary``, ``compact``, ``embeddings``...)."""

    user_id: str
    endpoint: str
    api_key_id: str | None = None
    conversation_id: str | None = None
    project_id: str | None = None
    assistant_id: str | None = None

    def fields(self) -> dict[str, Any]:
        return asdict(self)


class MeteredModel:
    """A ``ChatModel`` whose every stream writes one ledger row (see the module)."""

    def __init__(self, model: ChatModel, ledger: UsageLedger, charge: Charge) -> None:
        self.info = model.info
        self.model = model
        self.ledger = ledger
        self.charge = charge

    def __getattr__(self, name: str) -> Any:
        # ``count_tokens`` (the local model's tokenizer) and the like pass through
        return getattr(self.model, name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        await self.ledger.prices.fresh()
        meter = Meter(self.info, request, counter_for(self.model), self.ledger.prices)
        outcome = "cancelled"  # the consumer stopped reading (a timeout, a break)
        try:
            async for event in self.model.stream(request):
                meter.see(event)
                yield event
            outcome = "ok"
        except ProviderError as exc:
            outcome = exc.code
            raise
        except Exception:
            outcome = "internal_error"
            raise
        finally:
            self.ledger.charged(**self.charge.fields(), **meter.fields(outcome))


def metered(model: ChatModel, ledger: UsageLedger | None, charge: Charge) -> ChatModel:
    """``model`` metered for ``charge``; as is when there is no ledger (a test app)."""
    if ledger is None:
        return model
    return MeteredModel(model, ledger, charge)


# Who the embeddings made by the current task are for (``billed_to``).
_PAYER: ContextVar[Charge | None] = ContextVar("parley_usage_payer", default=None)


@contextmanager
def billed_to(charge: Charge) -> Iterator[None]:
    """Remote embeddings made inside this block (in this task) are ``charge``'s."""
    token = _PAYER.set(charge)
    try:
        yield
    finally:
        _PAYER.reset(token)


def meter_embedder(embedder: Any, ledger: LedgerRef) -> None:
    """Record each request ``embedder`` sends to a remote endpoint, when it has the
    ``on_call`` hook (``OpenAIEmbedder``; the embedded model costs nothing)."""
    if embedder is None or not hasattr(embedder, "on_call"):
        return

    def record(call: EmbedCall) -> None:
        payer, found = _PAYER.get(), ledger()
        if payer is None or found is None:
            return
        ref = EMBEDDINGS_PROVIDER + "/" + call.model
        found.charged(
            **payer.fields(),
            provider=EMBEDDINGS_PROVIDER,
            model=ref,
            input_tokens=call.input_tokens,
            cost=found.prices.price_of(ref).cost(call.input_tokens, 0),
            latency_ms=call.latency_ms,
            outcome=call.outcome,
        )

    embedder.on_call = record
