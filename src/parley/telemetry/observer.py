"""The ``CallObserver`` the failover chain calls for each attempt of a model call:
the time to first token and the error (``Metrics``) and the attempt's span
(``Tracing``), both from one watch so the chain makes one call per moment."""

from __future__ import annotations

import time

from parley.messages import Finish, UsageEvent
from parley.providers.base import ChatRequest, ModelInfo
from parley.telemetry.metrics import Metrics
from parley.telemetry.tracing import CallSpan, Tracing

__all__ = ["Observer"]


class Observer:
    def __init__(self, metrics: Metrics, tracing: Tracing) -> None:
        self.metrics = metrics
        self.tracing = tracing

    def begin(self, info: ModelInfo, request: ChatRequest) -> Watch:
        return Watch(self.metrics, self.tracing.call(info, request), info)


class Watch:
    __slots__ = ("info", "metrics", "span", "started")

    def __init__(self, metrics: Metrics, span: CallSpan | None, info: ModelInfo) -> None:
        self.metrics = metrics
        self.span = span
        self.info = info
        self.started = time.monotonic()

    def first(self) -> None:
        self.metrics.first_token(self.info.provider, self.info.ref, time.monotonic() - self.started)
        if self.span is not None:
            self.span.first()

    def see(self, event: UsageEvent | Finish) -> None:
        if self.span is not None:
            self.span.see(event)

    def end(self, code: str | None) -> None:
        if code is not None and code != "cancelled":
            self.metrics.error(self.info.provider, code)
        if self.span is not None:
            self.span.end(code)
