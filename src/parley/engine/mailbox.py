"""A lean single-consumer queue for the per-token hops between tasks.

Every streamed token crosses two task boundaries (provider pump -> turn, turn ->
subscriber). ``asyncio.Queue`` keeps a size limit, unfinished-task counts and an
``Event`` per item, none of which these hops use; this keeps a deque and one
waiter, so a hop costs an append and, only when the consumer is asleep, one
future.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Unbounded; ``put_nowait`` never blocks; one task awaits ``get`` at a time."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        items = self._items
        while not items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return items.popleft()

    def empty(self) -> bool:
        return not self._items
