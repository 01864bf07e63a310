"""A chat turn's rows in the usage ledger: one per model call.

The engine reports every model call of a reply in ``Done.calls`` (each step of
the tool loop, a call cut short by a stop included: ``parley.engine.loop``); the
turn writes one row per call, priced as the message is (``UsageLedger.prices``: an
administrator's price, else the model's own), in the background (``record_soon``):
accounting never delays the answer. The message keeps the turn's totals, which are
the sum of these rows.
"""

from __future__ import annotations

from parley.messages import Done
from parley.providers.base import ModelInfo
from parley.storage.tables import Message as MessageRow
from parley.usage.ledger import UsageLedger
from parley.usage.metering import Charge

__all__ = ["REFUSED", "account_turn"]

# outcomes of calls a budget or rate limit refused before they were made
REFUSED = frozenset({"budget_exceeded", "rate_limited"})


def account_turn(
    ledger: UsageLedger,
    charge: Charge,
    model: ModelInfo,
    done: Done | None,
    message: MessageRow,
) -> None:
    """Write the turn's rows. A turn whose engine failed before reporting its calls
    gets one row with the message's totals, so nothing it spent goes unrecorded;
    a turn stopped before its first call has none."""
    if done is not None and done.calls:
        for call in done.calls:
            if call.outcome in REFUSED:  # never reached the model: nothing was spent
                continue
            ledger.record_soon(
                **charge.fields(),
                provider=call.provider,
                model=call.model,
                input_tokens=call.input_tokens,
                cached_input_tokens=call.cached_input_tokens,
                output_tokens=call.output_tokens,
                cost=ledger.prices.cost(
                    model, call.input_tokens, call.output_tokens, call.cached_input_tokens
                ),
                latency_ms=call.latency_ms,
                outcome=call.outcome,
                at=call.ended_at,
            )
        return
    if not (message.input_tokens or message.output_tokens):
        return
    outcome = {"complete": "ok", "cancelled": "cancelled"}.get(message.status)
    ledger.record_soon(
        **charge.fields(),
        provider=model.provider,
        model=model.ref,
        input_tokens=message.input_tokens,
        output_tokens=message.output_tokens,
        cost=message.cost,
        latency_ms=message.latency_ms or 0.0,
        outcome=outcome or (message.error_code or "error"),
    )
