"""Prometheus metrics: requests, tokens, cost, time to first token, errors by
provider and code, circuit breakers, budget use.

Where each comes from, so that no path is counted twice or missed:

- requests, tokens, cost and call latency: each usage-ledger row
  (``UsageLedger.listeners``): every path that calls a model writes exactly one
  row per call (chat turns, ``/v1``, titles, memory, summaries, embeddings);
- time to first token and errors by provider and code: each *attempt* of the
  failover chain (``CallObserver``): a 429 that was retried and then answered is
  an error of its provider here, while the ledger's row of that call is ``ok``;
- breaker states: read from ``provider_breakers`` when ``/metrics`` is scraped
  (the table every worker shares, so every worker reports the same);
- budget use: a gauge the budgets feature sets through ``BUDGET_METRICS``.

Several workers: with ``PROMETHEUS_MULTIPROC_DIR`` set before the workers start,
``prometheus_client`` keeps each process's values in files there and ``render``
sums them (``MultiProcessCollector``), so any worker's ``/metrics`` answers for
all of them. Without it, each worker counts alone and must be scraped on its own
port (the README's "Metrics and tracing").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from parley.container import Key
from parley.usage.ledger import UsageFields

__all__ = [
    "BUDGET_METRICS",
    "CONTENT_TYPE",
    "BudgetReporter",
    "Metrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
# Time to first token: most answers start within a second or two; local models
# and reasoning ones take longer.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)
CALL_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

BudgetReporter = Callable[[str, str, float, float], None]
"""``(scope, scope_id, spent, limit)``: a budget's use now, in the instance's
currency (scope: instance, group, user, project or key). Sets
``parley_budget_spent``, ``parley_budget_limit`` and ``parley_budget_used_ratio``."""

BUDGET_METRICS: Key[BudgetReporter] = Key("budget_metrics")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """One app's metrics, on a registry of its own (tests build many apps)."""

    def __init__(self, currency: str = "USD") -> None:
        self.currency = currency
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "parley_model_requests",
            "Model calls, one per usage-ledger row (outcome: ok, an error code, cancelled).",
            ["endpoint", "provider", "model", "outcome"],
            registry=r,
        )
        self.tokens = Counter(
            "parley_tokens",
            "Tokens of model calls (kind: input, cached_input (part of input), output).",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "parley_cost",
            "What model calls cost, in the instance's currency.",
            ["provider", "model", "currency"],
            registry=r,
        )
        self.latency = Histogram(
            "parley_model_call_seconds",
            "How long a model call took, first byte to last.",
            ["provider", "model"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "parley_ttft_seconds",
            "Time from sending a request to a provider to the first piece of its answer.",
            ["provider", "model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "parley_provider_errors",
            "Failed attempts of model calls, retries included, by provider and error code.",
            ["provider", "code"],
            registry=r,
        )
        self.breaker = Gauge(
            "parley_breaker_state",
            "Each provider's circuit breaker: 0 closed, 1 half open (probing), 2 open.",
            ["provider"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.breaker_failures = Gauge(
            "parley_breaker_failures",
            "Consecutive failures a provider's circuit breaker counts.",
            ["provider"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.budget_spent = Gauge(
            "parley_budget_spent",
            "What a budget's period has spent so far (instance currency).",
            ["scope", "scope_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.budget_limit = Gauge(
            "parley_budget_limit",
            "A budget's amount for its period (instance currency).",
            ["scope", "scope_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.budget_ratio = Gauge(
            "parley_budget_used_ratio",
            "Share of a budget spent (1.0: all of it).",
            ["scope", "scope_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )

    # ------------------------------------------------------------------ feeds

    def usage(self, row: UsageFields) -> None:
        """A usage-ledger row (``UsageLedger.listeners``)."""
        self.requests.labels(row.endpoint, row.provider, row.model, row.outcome).inc()
        tokens = self.tokens
        if row.input_tokens:
            tokens.labels(row.provider, row.model, "input").inc(row.input_tokens)
        if row.cached_input_tokens:
            tokens.labels(row.provider, row.model, "cached_input").inc(row.cached_input_tokens)
        if row.output_tokens:
            tokens.labels(row.provider, row.model, "output").inc(row.output_tokens)
        if row.cost > 0:
            self.cost.labels(row.provider, row.model, self.currency).inc(row.cost)
        if row.latency_ms > 0:
            self.latency.labels(row.provider, row.model).observe(row.latency_ms / 1000)

    def first_token(self, provider: str, model: str, seconds: float) -> None:
        self.ttft.labels(provider, model).observe(seconds)

    def error(self, provider: str, code: str) -> None:
        self.errors.labels(provider, code).inc()

    def breakers(self, states: Iterable[tuple[str, str, int]]) -> None:
        """``(provider, state, failures)`` of every circuit with a row."""
        for provider, state, failures in states:
            self.breaker.labels(provider).set(BREAKER_VALUES.get(state, 0))
            self.breaker_failures.labels(provider).set(failures)

    def budget(self, scope: str, scope_id: str, spent: float, limit: float) -> None:
        """``BudgetReporter``: a budget's use, set by the budgets feature."""
        self.budget_spent.labels(scope, scope_id).set(spent)
        self.budget_limit.labels(scope, scope_id).set(limit)
        self.budget_ratio.labels(scope, scope_id).set(spent / limit if limit > 0 else 0.0)

    # ------------------------------------------------------------------ scrape

    def render(self) -> bytes:
        """The text exposition format: this process's registry, or every worker's
        values summed in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)

    def value(self, name: str, labels: dict[str, str] | None = None) -> Any:
        """One sample's value (tests, the benchmark)."""
        return self.registry.get_sample_value(name, labels or {})
