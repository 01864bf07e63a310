"""``BudgetedModel``: a model whose every call is reserved, then settled.

The wrapper is a ``ChatModel``, like ``FailoverModel`` (which it wraps), so each
call of a chat turn's tool loop is checked on its own: a turn that runs out of
budget between two tool steps ends with the refusal as its error, and nothing
in the engine knows budgets exist. ``/v1/chat/completions`` wraps its model the
same way; ``/v1/responses`` runs turns. Before each ``stream`` the worst case
(prompt tokens x input price + the most the answer may be x output price) is
reserved against every limit that applies (``Budgets.reserve``); when the stream
ends, however it ends, the reservation is settled to what the call cost, tallied
by the ledger's ``Meter`` (the same numbers as the call's usage row).

A spent budget with a downgrade model switches the wrapper to that model for
this and the later calls of the turn (``notices`` says so; the turn stores it on
the answer), the spent budget then charged without a check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from parley.budgets.service import Budgets, Payer, Ticket, Verdict
from parley.engine.tokens import counter_for
from parley.messages import ProviderEvent
from parley.providers.base import ChatModel, ChatRequest, ModelInfo
from parley.usage.ledger import Meter

__all__ = ["BudgetedModel", "Resolver"]

Resolver = Callable[[str], Awaitable[ChatModel]]  # a model ref -> the model (the registry)


class BudgetedModel:
    def __init__(
        self,
        model: ChatModel,
        budgets: Budgets,
        payer: Payer,
        resolve: Resolver,
        *,
        exempt: frozenset[str] = frozenset(),
        notices: list[str] | None = None,
    ) -> None:
        self.model = model
        # the answering model's (after a fallback or a downgrade): set when it changes
        # and at each call's first event (a fallback is chosen before it)
        self.info: ModelInfo = model.info
        self.budgets = budgets
        self.payer = payer
        self.resolve = resolve
        self.exempt = exempt
        self.notices: list[str] = notices if notices is not None else []
        self.warnings: list[str] = []  # the newest reservation's 80% warnings
        self.downgraded = bool(exempt)

    @property
    def inner(self) -> ChatModel:
        return self.model

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)  # count_tokens, failed_over, attempts...

    async def ticket(self, request: ChatRequest) -> Ticket | None:
        """Reserve this call (switching to a downgrade model when one is set)."""
        while True:
            prompt, output = Budgets.worst_case(self.model.info, request)
            got = await self.budgets.reserve(
                self.payer,
                cost=self.budgets.estimate(self.model.info, prompt, output),
                tokens=prompt + output,
                exempt=self.exempt,
            )
            if not isinstance(got, Verdict):
                if got is not None:
                    self.warnings = got.warnings
                return got
            if got.exempt <= self.exempt:  # already exempt: cannot happen, but never loop
                return None
            if got.downgrade_model != self.model.info.ref:
                self.model = await self.resolve(got.downgrade_model)
                self.info = self.model.info
            self.exempt = self.exempt | got.exempt
            self.downgraded = True
            if got.notice not in self.notices:
                self.notices.append(got.notice)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        await self.budgets.prices.fresh()
        ticket = await self.ticket(request)
        first = True
        if ticket is None:  # no limit applies: nothing to settle
            async for event in self.model.stream(request):
                if first:
                    self.info, first = self.model.info, False
                yield event
            return
        meter = Meter(self.model.info, request, counter_for(self.model), self.budgets.prices)
        try:
            async for event in self.model.stream(request):
                if first:
                    self.info, first = self.model.info, False
                meter.see(event)
                yield event
        finally:
            self.info = meter.model = self.model.info  # a fallback that answered is charged
            fields = meter.fields()
            tokens = int(fields["input_tokens"]) + int(fields["output_tokens"])
            self.budgets.settle_soon(ticket, float(fields["cost"]), tokens)


def unwrap(model: ChatModel) -> ChatModel:
    """The model under a ``BudgetedModel`` (titles use it: they are never refused)."""
    return model.inner if isinstance(model, BudgetedModel) else model
