"""OpenTelemetry traces of turns and model calls, with the GenAI semantic
conventions (``gen_ai.*`` attributes). Off unless an OTLP endpoint is set
(``otlp_endpoint``, or Admin → Metrics and tracing).

A turn is one ``invoke_agent parley`` span (``gen_ai.operation.name``
``invoke_agent``, the conversation id, the model Auto chose and why); each
attempt of each model call inside it is a ``chat <model>`` child span
(``gen_ai.operation.name`` ``chat``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.request.max_tokens``/``temperature``,
``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.response.model``,
``gen_ai.response.finish_reasons``, ``error.type`` when it failed). A ``/v1``
relay's calls are spans of their own (no turn around them). Prompts and answers
are not recorded: a trace collector is not where users' text should go.

The tracer provider is the app's own, never the process-global one: tests build
many apps, and an embedding application may trace its own way.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from parley import __version__
from parley.messages import Finish, UsageEvent
from parley.providers.base import ChatRequest, ModelInfo

__all__ = ["Tracing"]

log = logging.getLogger(__name__)


class Tracing:
    """The app's tracer: ``enabled`` once an endpoint (or a test's exporter) is set."""

    def __init__(self) -> None:
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        self.endpoint: str | None = None

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def configure(self, endpoint: str | None, exporter: SpanExporter | None = None) -> None:
        """Export to the OTLP/HTTP ``endpoint`` (e.g. ``http://collector:4318/v1/traces``),
        or to ``exporter`` synchronously (tests); neither: tracing off."""
        old = self.provider
        self.provider = self.tracer = None
        self.endpoint = endpoint or None
        if exporter is None and not endpoint:
            self._shutdown(old)
            return
        provider = TracerProvider(
            resource=Resource.create({"service.name": "parley", "service.version": __version__})
        )
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.provider = provider
        self.tracer = provider.get_tracer("parley", __version__)
        self._shutdown(old)

    @staticmethod
    def _shutdown(provider: TracerProvider | None) -> None:
        if provider is not None:
            try:
                provider.shutdown()
            except Exception:
                log.exception("could not shut the old tracer provider down")

    def close(self) -> None:
        self._shutdown(self.provider)
        self.provider = self.tracer = None

    @contextlib.contextmanager
    def turn(self, attributes: dict[str, Any]) -> Iterator[Span | None]:
        """A turn's span, current while the turn runs (its model calls nest in it)."""
        tracer = self.tracer
        if tracer is None:
            yield None
            return
        with tracer.start_as_current_span(
            "invoke_agent parley",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "parley",
                **{k: v for k, v in attributes.items() if v is not None},
            },
        ) as span:
            yield span

    def call(self, info: ModelInfo, request: ChatRequest) -> CallSpan | None:
        tracer = self.tracer
        if tracer is None:
            return None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": info.provider,
            "gen_ai.request.model": info.name,
            "parley.model.ref": info.ref,
        }
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        span = tracer.start_span(f"chat {info.name}", kind=SpanKind.CLIENT, attributes=attributes)
        return CallSpan(span, info)


class CallSpan:
    """One attempt's span: usage and finish noted as they pass, ended once."""

    __slots__ = ("info", "span", "started")

    def __init__(self, span: Span, info: ModelInfo) -> None:
        self.span = span
        self.info = info
        self.started = time.monotonic()

    def first(self) -> None:
        self.span.add_event("gen_ai.first_token")

    def see(self, event: UsageEvent | Finish) -> None:
        if isinstance(event, UsageEvent):
            self.span.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
            self.span.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
        else:
            self.span.set_attribute("gen_ai.response.finish_reasons", [event.reason])

    def end(self, code: str | None) -> None:
        self.span.set_attribute("gen_ai.response.model", self.info.name)
        if code is not None:
            self.span.set_attribute("error.type", code)
            self.span.set_status(Status(StatusCode.ERROR, code))
        self.span.end()
