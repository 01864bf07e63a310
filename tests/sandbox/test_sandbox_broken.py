"""A sandbox whose kernels cannot start: said once (not at every retry), the spare
refill backs off, the tool is withdrawn, and it comes back once a kernel starts."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apihelpers import make_client, signup
from conftest import MemorySink
from parley.config import Settings
from parley.sandbox import SandboxConfig, SandboxManager
from parley.sandbox.feature import TOOL_NAME, SandboxFeature


async def test_a_failing_spare_is_reported_once_and_backs_off(
    sandbox_config: SandboxConfig, caplog: pytest.LogCaptureFixture
) -> None:
    broken = replace(sandbox_config, bwrap="/bin/false", spares=1, spare_retry_s=0.05)
    mgr = SandboxManager(broken, MemorySink())
    seen: list[str] = []
    mgr.on_status = seen.append
    caplog.set_level(logging.DEBUG, logger="parley.sandbox.manager")
    mgr.start_reaper(interval_s=0.02)
    started = time.monotonic()
    try:
        while mgr._spare_failures < 3 and time.monotonic() - started < 30:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        warnings = [
            r
            for r in caplog.records
            if r.levelno >= logging.WARNING and "cannot start" in r.message
        ]
        assert len(warnings) == 1, [r.message for r in warnings]
        assert len(seen) == 1 and seen[0] and mgr.start_error == seen[0]
        # backed off: retries after 0.05, 0.1, 0.2, 0.4 s... (every 0.05 s without it)
        assert mgr._spare_failures >= 3
        assert mgr._spare_failures <= math.log2(elapsed / 0.05) + 2, (mgr._spare_failures, elapsed)
    finally:
        await mgr.close()


class _Ctx:
    def __init__(self) -> None:
        self.tools: dict[str, object] = {}

    def add_tool(self, tool: object, *, replace: bool = False) -> None:
        self.tools[tool.name] = tool  # type: ignore[attr-defined]

    def remove_tool(self, name: str) -> None:
        self.tools.pop(name, None)

    def withhold_tool(self, tool: object, reason: str) -> None:
        self.tools.pop(tool.name, None)  # type: ignore[attr-defined]
        self.withheld = reason


async def test_the_tool_is_withdrawn_while_kernels_cannot_start(
    sandbox_config: SandboxConfig, settings: Settings
) -> None:
    feature = SandboxFeature(settings)
    feature.manager = SandboxManager(replace(sandbox_config, spares=1), MemorySink())
    ctx = _Ctx()
    ctx.add_tool(feature.tool())
    feature.manager.on_status = lambda error: feature._offer(ctx, error)  # type: ignore[arg-type]
    try:
        feature.manager._start_failed(RuntimeError("bwrap: execvp python: No such file"))
        assert TOOL_NAME not in ctx.tools and "execvp" in ctx.withheld
        feature.manager._started()
        assert TOOL_NAME in ctx.tools
    finally:
        await feature.manager.close()


async def test_the_app_does_not_offer_a_sandbox_that_cannot_run(
    make_app: Any, make_settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = make_settings(sandbox_bwrap=str(tmp_path / "no-bwrap"))
    async with make_app(settings=missing) as app:
        client = make_client(app)
        await signup(client, "nosandbox@example.com")
        listed = (await client.get("/api/tools")).json()
        assert TOOL_NAME not in [t["name"] for t in listed["items"]]
        # the Tools menu shows it disabled, with why
        (withheld,) = [t for t in listed["unavailable"] if t["name"] == TOOL_NAME]
        assert withheld["title"] == "Run code" and "bubblewrap" in withheld["reason"]
    said = [r.message for r in caplog.records if "run_python is not offered" in r.message]
    assert len(said) == 1 and "bubblewrap" in said[0]
