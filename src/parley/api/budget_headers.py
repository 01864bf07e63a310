"""The budgets on the ``/v1`` routes: wrapping a relayed model, reserving an
embeddings call, and the response headers that carry a budget's word.

``X-Parley-Budget-Warning``: a budget that applies is 80% used (which one, how
much, when it resets). ``X-Parley-Budget-Notice``: a spent budget answered with
the administrator's cheaper model (the answer's ``model`` names it too).
Refusals are errors (429, ``budget_exceeded`` / ``rate_limited``: the exception
handlers of ``parley.http.problems``).
"""

from __future__ import annotations

from typing import Any

from parley.budgets.model import BudgetedModel
from parley.budgets.service import Budgets, Ticket, Verdict
from parley.providers.base import ChatModel
from parley.providers.registry import ModelRegistry

__all__ = ["budget_headers", "budgeted", "reserve_embeddings"]


async def budgeted(services: Any, model: ChatModel, principal: Any) -> ChatModel:
    """``model`` with every call reserved against the caller's limits (as is when no
    budgets service runs)."""
    budgets = services.get(Budgets)
    registry = services.get(ModelRegistry)
    if budgets is None or registry is None:
        return model
    payer = await budgets.payer(principal.user.id, principal.api_key_id)
    return BudgetedModel(model, budgets, payer, registry.resolve)


def budget_headers(model: ChatModel) -> dict[str, str] | None:
    if not isinstance(model, BudgetedModel):
        return None
    headers = {}
    if model.warnings:
        headers["X-Parley-Budget-Warning"] = " ".join(model.warnings)
    if model.notices:
        headers["X-Parley-Budget-Notice"] = " ".join(model.notices)
    return headers or None


async def reserve_embeddings(
    services: Any, principal: Any, cost: float, tokens: int
) -> tuple[Budgets | None, Ticket | None]:
    """Reserve an embeddings request (its cost is known exactly: the texts are the
    input). A spent budget refuses it even with a downgrade model: there is no
    cheaper embedder to answer with."""
    budgets: Budgets | None = services.get(Budgets)
    if budgets is None:
        return None, None
    payer = await budgets.payer(principal.user.id, principal.api_key_id)
    got = await budgets.reserve(payer, cost=cost, tokens=tokens)
    if isinstance(got, Verdict):  # refuse like a budget without a downgrade
        got = await budgets.reserve(payer, cost=cost, tokens=tokens, downgrade=False)
    return budgets, got if isinstance(got, Ticket) else None
