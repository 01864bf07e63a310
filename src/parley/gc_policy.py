"""The server process's garbage-collector policy: no pause that grows with load.

CPython runs a full collection whenever the young generations have promoted a
quarter as many objects as the old one holds. Under a burst of streams that is
every second or two, and each one walks every live object with the event loop
stopped: at 500 concurrent streams about 200,000 objects, 50-150 ms, to find
nothing (request objects die by reference counting; ``collected 0``). So in a
server process:

- objects that live as long as the process (modules, routes, settings, models)
  are frozen once started and never scanned again;
- young collections stay automatic: they only walk recently made objects;
- automatic full collections are off; a task runs one every ``FULL_EVERY_S``,
  so cyclic garbage that reached the old generation is still freed, at one known
  pause a minute instead of one per burst; and sooner when the process's
  resident memory has grown by a quarter (and 64 MB) since the last one, so a
  burst of cyclic garbage cannot pile up for a whole minute.

Tests and embedding apps keep CPython's defaults (``create_app`` without
``server_process``). On CPython 3.14, whose collector is incremental, the threshold
change is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FULL_EVERY_S = 60.0
CHECK_EVERY_S = 5.0
GROWTH_RATIO = 1.25
GROWTH_BYTES = 64 * 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc``), or None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


# Young-generation collections between automatic full ones: in effect never.
NO_AUTOMATIC_FULL = 1_000_000


class ServerGC:
    """``start()`` once the app is up (inside the running loop); ``stop()`` at shutdown."""

    def __init__(
        self,
        full_every_s: float = FULL_EVERY_S,
        check_every_s: float = CHECK_EVERY_S,
        rss: Callable[[], int | None] = resident_bytes,
    ) -> None:
        self.full_every_s = full_every_s
        self.check_every_s = check_every_s
        self.full_collections = 0
        self._rss = rss
        self._saved: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        gc.freeze()
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL)
        self._task = asyncio.get_running_loop().create_task(self._collect_periodically())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    async def _collect_periodically(self) -> None:
        last = time.monotonic()
        baseline = self._rss()
        while True:
            await asyncio.sleep(self.check_every_s)
            rss = self._rss()
            grown = (
                rss is not None
                and baseline is not None
                and rss > max(baseline * GROWTH_RATIO, baseline + GROWTH_BYTES)
            )
            if grown or time.monotonic() - last >= self.full_every_s:
                self.collect_now()
                last = time.monotonic()
                baseline = self._rss()

    def collect_now(self) -> int:
        start = time.perf_counter()
        found = gc.collect()
        self.full_collections += 1
        log.debug(
            "full collection: %d unreachable objects, %.1f ms",
            found,
            (time.perf_counter() - start) * 1000,
        )
        return found
