"""Retries, fallbacks and a circuit breaker around one model call.

``FailoverModel`` is a ``ChatModel`` over a chain: the model asked for, then its
fallbacks in order. Each ``stream(request)`` is one model call. Until the first
piece of the answer (a text, reasoning or tool-call delta) arrives, a failure
is retried with jittered exponential backoff (honouring the provider's
``Retry-After``) and, once the model's attempts are spent, the next model of the
chain answers. After the first piece an error goes to the caller as is: the text
already shown stays, and the user can retry.

Why a model and not a loop around the turn: the engine's tool loop calls
``stream`` once per model call and runs tools between calls, outside of it. A
retry therefore repeats a request to a model, never a tool: a side-effecting
call that already ran is in the history the retried request carries, and
nothing here can run it again. That is the structural guarantee the tests check.

The breaker (``Breaker``, one per provider, shared by all workers in the
database: ``parley.storage.failover``) is asked before each attempt; an open
breaker skips straight to the next model. Every failed attempt, and the one that
answered after them, is kept in ``attempts`` (model, error code, a short label,
time), which the turn stores on the message; ``info`` is the answering model's,
so the message and the usage ledger name the model that answered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from parley.errors import ProviderError, ProviderUnavailable
from parley.messages import (
    Finish,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)
from parley.providers.base import ChatModel, ChatRequest, ModelInfo

__all__ = [
    "Attempt",
    "Breaker",
    "CallObserver",
    "CallWatch",
    "FailoverModel",
    "MemoryBreaker",
    "RetryPolicy",
    "describe",
]

log = logging.getLogger(__name__)

# What a failed attempt is called where users see it (under the answer): short,
# and no provider internals (the full message goes to the server's log).
LABELS: dict[str, str] = {
    "provider_rate_limited": "rate limited",
    "provider_unavailable": "unavailable",
    "provider_timeout": "timed out",
    "provider_protocol": "connection cut",
    "provider_auth": "access refused",
    "provider_bad_request": "request refused",
    "circuit_open": "paused after repeated failures",
}
CONTENT = (TextDelta, ReasoningDelta, ToolCallDelta)


def describe(code: str) -> str:
    return LABELS.get(code, "failed")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one model before the next: ``attempts`` calls in all, waiting
    ``base_delay_s * 2**n`` (at most ``max_delay_s``, half of it random) between them.
    A ``Retry-After`` is waited exactly when it fits under ``max_delay_s``; a longer
    one moves on to the next model at once (an answer now beats one in a minute)."""

    attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, retry: int, retry_after: float | None = None) -> float | None:
        """Seconds before retry number ``retry`` (0-based); None: do not retry."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay_s else None
        ceiling = min(self.max_delay_s, self.base_delay_s * 2**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class Breaker(Protocol):
    """A circuit breaker per provider: ``allow`` before a call (False: skip the
    provider), then ``succeeded`` or ``failed``."""

    async def allow(self, provider: str) -> bool: ...

    async def succeeded(self, provider: str) -> None: ...

    async def failed(self, provider: str) -> None: ...


class CallWatch(Protocol):
    """One attempt as an observer follows it: ``first`` at the first piece of the
    answer, ``see`` for the usage report and the finish, ``end`` once (``code``: the
    error code, ``cancelled`` when the caller stopped reading, None when it answered)."""

    def first(self) -> None: ...

    def see(self, event: UsageEvent | Finish) -> None: ...

    def end(self, code: str | None) -> None: ...


class CallObserver(Protocol):
    """Metrics and traces of every model call the chain makes
    (``parley.telemetry``): ``begin`` is called before each attempt."""

    def begin(self, info: ModelInfo, request: ChatRequest) -> CallWatch: ...


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class MemoryBreaker:
    """A ``Breaker`` in this process's memory (the CLI, tests); the server shares
    one through the database (``parley.storage.failover.DatabaseBreaker``)."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.circuits: dict[str, _Circuit] = {}

    def state(self, provider: str) -> str:
        circuit = self.circuits.get(provider)
        if circuit is None or circuit.opened_at is None:
            return "closed"
        return "half_open" if circuit.probing else "open"

    async def allow(self, provider: str) -> bool:
        circuit = self.circuits.get(provider)
        if circuit is None or circuit.opened_at is None:
            return True
        if circuit.probing or self.clock() - circuit.opened_at < self.cooldown_s:
            return False
        circuit.probing = True  # this caller is the one probe
        return True

    async def succeeded(self, provider: str) -> None:
        self.circuits.pop(provider, None)

    async def failed(self, provider: str) -> None:
        circuit = self.circuits.setdefault(provider, _Circuit())
        circuit.failures += 1
        if circuit.probing or circuit.failures >= self.threshold:
            circuit.opened_at = self.clock()
            circuit.probing = False


@dataclass(slots=True)
class Attempt:
    """One try of one model: ``code`` None for the one that answered."""

    model: str
    code: str | None
    at: str
    ms: float = 0.0
    label: str = field(default="")

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "error": self.code,
            "label": self.label,
            "at": self.at,
            "ms": round(self.ms, 1),
        }


# Errors a retry of the same model may cure; an auth error or a refused request
# will fail again there (a fallback on another provider may still answer).
def _retryable(exc: ProviderError) -> bool:
    return exc.retryable


# The breaker counts what says the provider is unwell: not a refused request
# (that is the request's fault, and would open the circuit for everyone).
def _counts(exc: ProviderError) -> bool:
    return exc.code != "provider_bad_request"


class FailoverModel:
    """The chain ``models`` (the one asked for first) as one ``ChatModel``.

    ``info`` is the model that answered the last call (the first one until then);
    later calls of the same turn start from it, so a tool loop does not pay the
    failed model's retries again on every step. ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        models: Sequence[ChatModel],
        *,
        policy: RetryPolicy = RetryPolicy(),  # frozen: one shared default is safe
        breaker: Breaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: CallObserver | None = None,
    ) -> None:
        if not models:
            raise ValueError("a failover chain needs at least one model")
        self.models = list(models)
        self.policy = policy
        self.breaker = breaker
        self.sleep = sleep
        self.observer = observer
        self.attempts: list[Attempt] = []
        self._current = 0
        self.info: ModelInfo = self.models[0].info  # the answering model's, once one answered

    def _answered_by(self, index: int) -> None:
        self._current = index
        self.info = self.models[index].info

    @property
    def primary(self) -> ChatModel:
        return self.models[0]

    @property
    def failed_over(self) -> bool:
        """Whether any attempt failed (then ``attempts`` is worth storing)."""
        return any(a.code is not None for a in self.attempts)

    def _note(self, model: ChatModel, code: str | None, started: float) -> None:
        self.attempts.append(
            Attempt(
                model.info.ref,
                code,
                datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                (time.monotonic() - started) * 1000,
                describe(code) if code else "",
            )
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        first = len(self.attempts)  # this call's attempts are those noted from here
        last: ProviderError | None = None
        for index in range(self._current, len(self.models)):
            model = self.models[index]
            provider = model.info.provider
            for retry in range(max(1, self.policy.attempts)):
                started = time.monotonic()
                if self.breaker is not None and not await self.breaker.allow(provider):
                    self._note(model, "circuit_open", started)
                    break
                answered = False
                failure: ProviderError | None = None
                watch = self.observer.begin(model.info, request) if self.observer else None
                outcome: str | None = "cancelled"  # what the watch hears if we never get on
                stream = model.stream(request)
                try:
                    async for event in stream:
                        if not answered and isinstance(event, CONTENT):
                            answered = True
                            self._answered_by(index)
                            if watch is not None:
                                watch.first()
                        elif watch is not None and isinstance(event, (UsageEvent, Finish)):
                            watch.see(event)
                        yield event
                    outcome = None
                except ProviderError as exc:
                    outcome = exc.code
                    if answered:  # after the first token: reported, the text kept
                        if self.breaker is not None:
                            await self.breaker.failed(provider)
                        raise
                    failure = exc
                finally:  # the caller stopped reading, or it failed: end the request now
                    if watch is not None:
                        watch.end(outcome)
                    aclose = getattr(stream, "aclose", None)
                    if aclose is not None:
                        await aclose()
                if failure is None:
                    self._answered_by(index)
                    if len(self.attempts) > first:
                        self._note(model, None, started)
                    if self.breaker is not None:
                        await self.breaker.succeeded(provider)
                    return
                if self.breaker is not None:  # a refused request proves the provider is up
                    report = self.breaker.failed if _counts(failure) else self.breaker.succeeded
                    await report(provider)
                log.warning("model %s failed before answering: %s", model.info.ref, failure)
                self._note(model, failure.code, started)
                last = failure
                wait = (
                    self.policy.delay(retry, failure.retry_after) if _retryable(failure) else None
                )
                if wait is None or retry + 1 >= self.policy.attempts:
                    break  # the next model of the chain
                await self.sleep(wait)
        raise self._exhausted(last, self.attempts[first:])

    def _exhausted(self, last: ProviderError | None, tried: list[Attempt]) -> ProviderError:
        """The error when no model of the chain answered this call: the last one's kind,
        with every attempt named (administrators see it; users see its code's wording)."""
        if last is None:
            names = ", ".join(dict.fromkeys(a.model.partition("/")[0] for a in tried))
            return ProviderUnavailable(
                f"Calls to provider {names} are paused after repeated failures (circuit "
                "breaker); it is tried again after its cooldown. Configure a fallback model "
                "to keep answering meanwhile."
            )
        if len(tried) <= 1:
            return last
        named = "; ".join(f"{a.model}: {describe(a.code or '')}" for a in tried)
        error = type(last)(f"Every attempt failed ({named}). The last error: {last.message}")
        error.retry_after = last.retry_after
        return error
