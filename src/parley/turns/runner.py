"""One chat turn from request to stored answer: the service that runs turns.

Durability rules, in order:
1. ``prepare`` commits the user's message and an empty assistant message
   (status ``streaming``) before the model is called.
2. The engine runs in a background task, so a client that disconnects neither
   stops nor corrupts the answer; the HTTP layer only relays the task's queue.
3. The task's ``Recorder`` (``turns/recorder.py``) writes the text so far every
   ``flush_interval_s`` (a crash loses at most that much), and the end of the
   turn writes the full record: status, tokens, latency, time to first token,
   finish reason, cost, error.

The service lives here: its state, the features' registrations (context sources,
after-turn hooks, revokers), revocation, starting a turn and reattaching to one,
shutdown. The steps are in two modules it inherits from: ``turns/prepare.py``
(``PreparedTurn``; validate and commit before the model is called) and
``turns/driver.py`` (the context, the engine's tool loop relayed into the
recorder, the end: record, accounting, the model's title, after-turn hooks).
What to keep of the events is the recorder's business, and which stored rows
become the history is ``turns/history.py``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from parley.config import Settings
from parley.container import Services
from parley.messages import TurnEvent
from parley.providers.registry import ModelRegistry
from parley.routing.service import RoutingService
from parley.storage.db import Database
from parley.telemetry.tracing import Tracing
from parley.tools import ToolRegistry
from parley.turns.control import GenerationControl, owner, owner_of
from parley.turns.driver import (
    DEMO_CONTEXT_TOKENS,
    SEARCH_ASKED,
    SYSTEM_PROMPT,
    USER_FACING,
    TurnDriver,
)
from parley.turns.events import (
    Resync,
    Subscription,
    TitleMade,
    TurnEvents,
    make_turn_events,
)
from parley.turns.failover import FailoverService
from parley.turns.hooks import AfterTurn, ContextSource, Revoker, revoke_quietly
from parley.turns.prepare import WEB_SEARCH, PreparedTurn, TurnKind, TurnPreparation
from parley.turns.recorder import Final, Recorder
from parley.usage.ledger import UsageLedger

__all__ = [
    "DEMO_CONTEXT_TOKENS",
    "SEARCH_ASKED",
    "SYSTEM_PROMPT",
    "USER_FACING",
    "WEB_SEARCH",
    "PreparedTurn",
    "TurnItem",
    "TurnKind",
    "TurnService",
]

TurnItem = TurnEvent | Final | TitleMade | Resync


class TurnService(TurnPreparation, TurnDriver):
    """A chat turn from request to stored answer (the module's docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        registry: ModelRegistry,
        settings: Settings,
        control: GenerationControl,
        tools: ToolRegistry,
        services: Services | None = None,
        events: TurnEvents | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.control = control
        self.tools = tools
        self.services = services or Services()
        # Every turn's items, kept for readers that reattach (``turns/events.py``).
        # (``is not None``: an empty ``MemoryTurnEvents`` is falsy, it has a length)
        self.events: TurnEvents = (
            events
            if events is not None
            else make_turn_events(settings.stream_replay_events, settings.stream_replay_linger_s)
        )
        # Features add to these at start-up through the seam (parley.seam).
        self.context_sources: list[ContextSource] = []
        self.after_turn: list[AfterTurn] = []
        self.revokers: list[Revoker] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._after: dict[str, set[asyncio.Task[None]]] = {}  # after-turn work, by user
        self.failover = FailoverService(db, registry, settings)  # retries, fallbacks, breakers
        self.routing = RoutingService(db, registry, self.services)  # the Auto model
        self.tracing = Tracing()  # off until the app configures it (``parley.telemetry``)
        control.add_listener(self._on_stop)

    def add_context_source(self, source: ContextSource) -> None:
        self.context_sources.append(source)

    def remove_context_source(self, source: ContextSource) -> None:
        if source in self.context_sources:
            self.context_sources.remove(source)

    def add_after_turn(self, hook: AfterTurn) -> None:
        self.after_turn.append(hook)

    def add_revoker(self, hook: Revoker) -> None:
        self.revokers.append(hook)

    # ------------------------------------------------------------ revocation

    async def revoke_user(self, user_id: str) -> None:
        """Stop everything the user runs, on every worker: their turns end as
        stopped, their after-turn work is cancelled, the features' revokers run
        (code kernels killed). For an account disabled or deleted."""
        await self.control.stop(owner("user", user_id))

    async def revoke_api_key(self, key_id: str) -> None:
        """Stop the turns and ``/v1`` streams started with this (revoked) API key."""
        await self.control.stop(owner("key", key_id))

    def _on_stop(self, key: str) -> None:
        """Every stop signal reaching this worker; a user's revocation lands here."""
        found = owner_of(key)
        if found is None or found[0] != "user":
            return
        user_id = found[1]
        for task in self._after.pop(user_id, set()):
            task.cancel()
        for hook in self.revokers:
            self._spawn(revoke_quietly(hook, user_id))

    # ------------------------------------------------------------ run

    def start(self, turn: PreparedTurn) -> AsyncIterator[tuple[int, TurnItem]]:
        """Run the turn in the background; iterate the result to relay its items,
        each with its sequence number (``self.events``: later readers reattach)."""
        recorder = Recorder(
            self.db,
            user_id=turn.user_id,
            conversation_id=turn.conversation_id,
            message=turn.assistant_message,
            model=turn.model.info,
            title_from=turn.user_message.content if turn.title_needed else None,
            flush_interval_s=self.settings.flush_interval_s,
            prices=ledger.prices if (ledger := self.services.get(UsageLedger)) else None,
        )
        message_id = turn.assistant_message.id
        log = self.events.open(
            message_id, turn.conversation_id, recorder.snapshot, user_id=turn.user_id
        )
        recorder.seq = lambda: log.last  # stored with each flush (``turns/streams.py``)
        subscription = self.events.subscribe(message_id)
        assert subscription is not None
        self._spawn(self._run(turn, recorder, log))
        return subscription.items

    def subscribe(self, message_id: str, after: int = 0) -> Subscription | None:
        """Reattach to the running (or just finished) turn answering ``message_id``:
        its items after ``after``, then the live tail (with its conversation and user:
        the caller checks them), or None when this worker keeps none (then the stored
        message is the answer)."""
        return self.events.subscribe(message_id, after)

    async def reattach(self, message_id: str, after: int = 0) -> Subscription | None:
        """``subscribe``, and also a turn another worker runs (``turns/streams.py``:
        its Redis stream, or its stored answer followed while it streams)."""
        return await self.events.reattach(message_id, after)

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Shutting down: let running turns (and after-turn hooks) finish for up to
        ``grace_s``; the turns still running then are stopped (their answers are
        stored as they are, ``cancelled``), with a few seconds to write them."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, grace_s))
        if self._tasks:
            self.control.stop_all_local()
            await asyncio.wait(set(self._tasks), timeout=5)
        self.events.clear()
        await self.routing.aclose()
