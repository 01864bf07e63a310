"""Chat turns as a service: prepare (validate, commit the user's message), run the
engine in a background task that persists as it streams, and stop on request.

Sits between the engine (no ORM) and the HTTP API / CLI, which only relay events.
A turn that cannot start raises a domain error of ``parley.errors`` (``NotFound``,
``Invalid``, ``NoModelAvailable``, ``ModelNotFound``); the HTTP layer maps them.
"""

from parley.turns.control import GenerationControl, LocalControl, RedisControl, make_control
from parley.turns.recorder import Final
from parley.turns.runner import PreparedTurn, TurnItem, TurnService

__all__ = [
    "Final",
    "GenerationControl",
    "LocalControl",
    "PreparedTurn",
    "RedisControl",
    "TurnItem",
    "TurnService",
    "make_control",
]
