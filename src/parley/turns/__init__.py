"""Chat turns as a service: prepare (validate, commit the user's message), run the
engine in a background task that persists as it streams, and stop on request.

Sits between the engine (no ORM) and the HTTP API / CLI, which only relay events.
"""

from parley.turns.control import GenerationControl, LocalControl, RedisControl, make_control
from parley.turns.runner import PreparedTurn, TurnError, TurnService

__all__ = [
    "GenerationControl",
    "LocalControl",
    "PreparedTurn",
    "RedisControl",
    "TurnError",
    "TurnService",
    "make_control",
]
