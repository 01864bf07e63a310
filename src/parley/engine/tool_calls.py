"""Running the tools one model answer asked for: concurrency, confirmation, stopping.

Split from ``loop.py`` so the loop reads as the model<->tool protocol and this
module as the rules for the calls themselves: read-only tools run together,
side-effecting ones one at a time after the user's approval (when a
``Confirm`` callback is set), an interrupt stops them and reports them as
stopped, and calls to the caller's own tools hand the reply back. A mixin,
because it reads and writes the state of the reply ``ToolLoop`` holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from parley.messages import (
    EngineEvent,
    FinishReason,
    Message,
    ToolCall,
    ToolConfirm,
    ToolResult,
    ToolStart,
)
from parley.tools.base import ToolContext, ToolOutcome, ToolRegistry

if TYPE_CHECKING:
    from .loop import Limits

__all__ = ["DENIED", "STOP_GRACE_S", "Confirm", "ToolCalls"]

logger = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # how long stopped tools (and model streams) get to wind down

# Asks the user whether a side-effecting call may run; False (or an error) denies it.
Confirm = Callable[[ToolCall], Awaitable[bool]]
DENIED = (
    "The user did not approve this call of '{name}', so it was not run. Do not retry it "
    "unless the user asks you to."
)


class ToolCalls:
    """The tool half of ``ToolLoop`` (``parley.engine.loop``), which sets these fields."""

    registry: ToolRegistry | None
    enabled: set[str]
    client: set[str]
    confirm: Confirm | None
    tool_context: ToolContext | None
    limits: Limits
    convo: list[Message]
    tools_run: int
    outcomes: list[ToolOutcome]
    finish: FinishReason
    reason: Literal["cancelled", "deadline"] | None
    _tasks: set[asyncio.Task[None]]
    _interrupted: asyncio.Future[str] | None

    async def _run_one(self, call: ToolCall) -> ToolOutcome:
        if self.registry is None or call.name not in self.enabled:
            available = ", ".join(sorted(self.enabled)) or "none"
            return ToolOutcome(
                f"Tool '{call.name}' is not available here. Available tools: {available}.", True
            )
        return await self.registry.run(
            call, timeout_s=self.limits.tool_timeout_s, context=self.tool_context
        )

    def _side_effecting(self, call: ToolCall) -> bool:
        declared = self.registry.get(call.name) if self.registry is not None else None
        return declared is not None and declared.side_effecting

    def _needs_confirmation(self, call: ToolCall) -> bool:
        return self.confirm is not None and call.name in self.enabled and self._side_effecting(call)

    async def _approved(self, call: ToolCall) -> bool:
        """The user's decision (side-effecting calls wait here; a failure denies)."""
        assert self.confirm is not None
        try:
            return bool(await self.confirm(call))
        except Exception:
            logger.exception("tool confirmation failed; denying %s", call.name)
            return False

    async def run_tools(self, calls: Sequence[ToolCall]) -> AsyncIterator[EngineEvent]:
        """Yield a ``ToolStart`` per call, run them, yield a ``ToolResult`` per call.

        Read-only tools run concurrently; side-effecting ones one at a time in
        the order the model asked, each after a ``ToolConfirm`` and the user's
        approval when a ``confirm`` callback is set. Results come in call order; ``outcomes``
        holds them. An interrupt stops the tools and reports them as stopped.
        """
        self.tools_run += len(calls)
        for call in calls:
            yield ToolStart(call.id, call.name, call.arguments)
        asks = {i for i, c in enumerate(calls) if self._needs_confirmation(c)}
        for index in sorted(asks):
            call = calls[index]
            yield ToolConfirm(call.id, call.name, call.arguments)
        found: list[ToolOutcome | None] = [None] * len(calls)

        async def one(index: int) -> None:
            if index in asks and not await self._approved(calls[index]):
                found[index] = ToolOutcome(DENIED.format(name=calls[index].name), True)
                return
            found[index] = await self._run_one(calls[index])

        async def in_order(indices: list[int]) -> None:
            for index in indices:
                await one(index)

        async def run_all() -> None:
            ordered = [i for i, c in enumerate(calls) if self._side_effecting(c)]
            parallel = [one(i) for i in range(len(calls)) if i not in ordered]
            await asyncio.gather(*parallel, in_order(ordered))

        task = asyncio.create_task(run_all())
        self._tasks.add(task)
        assert self._interrupted is not None, "ToolLoop.start() was not called"
        waiters: set[asyncio.Future[Any]] = {task, self._interrupted}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_GRACE_S)
        stopped = "the reply was stopped" if self.reason == "cancelled" else "time ran out"
        self.outcomes = [
            outcome or ToolOutcome(f"The tool did not finish: {stopped}.", True)
            for outcome in found
        ]
        for call, outcome in zip(calls, self.outcomes, strict=True):
            yield ToolResult(
                call.id,
                call.name,
                outcome.output,
                outcome.is_error,
                outcome.duration_ms,
                attachments=outcome.attachments,
            )

    async def hand_over(self, text: str, calls: Sequence[ToolCall]) -> AsyncIterator[EngineEvent]:
        """End the reply with calls for the caller to run: Parley's own tools among
        them run first (their results are kept), then a ``ToolStart`` per client call
        (never a result: the caller sends it back with the next request)."""
        own = [call for call in calls if call.name not in self.client]
        if own:
            self.convo.append(Message("assistant", text, tool_calls=own))
            async for event in self.run_tools(own):
                yield event
        for call in calls:
            if call.name in self.client:
                yield ToolStart(call.id, call.name, call.arguments)
        self.finish = "cancelled" if self.reason == "cancelled" else "tool_calls"
