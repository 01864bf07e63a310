"""Spare kernels: started ahead (warmed up, still sandboxed), adopted by a new
conversation or a restart, replaced, bounded by the server cap, killed on close,
and never a way around the sandbox. Also: kernels start under uvloop (``parley
serve``'s event loop), which refuses ``user=``/``group=`` for subprocesses."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from conftest import MemorySink, Runner, host_uid_processes
from parley.sandbox import SandboxConfig, SandboxManager

# The slow tier (not in `make test-fast`): kernels started ahead, killed and replaced.
pytestmark = pytest.mark.slow

PROBE = (
    "import sys\n"
    "print('warm' if 'pandas' in sys.modules else 'cold', get_ipython().execution_count,"
    " 'pandas' in dir())"
)


@pytest.fixture
async def spare_manager(
    sandbox_config: SandboxConfig, sink: MemorySink
) -> AsyncIterator[SandboxManager]:
    # its own host uids (when root): another manager in the test uses the base ones
    own = replace(sandbox_config, spares=1, host_uid_base=sandbox_config.host_uid_base + 100)
    mgr = SandboxManager(own, sink)
    mgr.start_reaper(interval_s=3600)
    try:
        yield mgr
    finally:
        await mgr.close()
    assert mgr.kernel_count() == 0 and mgr.spare_count() == 0


async def test_new_conversation_adopts_a_warm_spare_and_it_is_replaced(
    spare_manager: SandboxManager, manager: SandboxManager
) -> None:
    cold = await Runner(manager)(PROBE)  # a kernel started on demand, for comparison
    count = cold.text.split()[2]
    assert f"cold {count} False" in cold.text, cold.text
    assert await spare_manager.spares_ready() == 1
    assert spare_manager.kernel_count() == 0  # a spare is nobody's session
    out = await Runner(spare_manager, "u1", "c1")(PROBE)
    # pandas already imported by the warm-up, which left no history and no names
    assert f"warm {count} False" in out.text, out.text
    assert not out.is_error
    assert spare_manager.kernel_count() == 1
    assert await spare_manager.spares_ready() == 1  # a replacement was started
    second = await Runner(spare_manager, "u2", "c2")(PROBE + "\nx = 5")
    assert f"warm {count} False" in second.text, second.text
    # the two conversations are separate kernels
    again = await Runner(spare_manager, "u1", "c1")("'x' in dir()")
    assert "result:\nFalse" in again.text


async def test_spares_count_toward_the_server_cap(
    sandbox_config: SandboxConfig, sink: MemorySink
) -> None:
    mgr = SandboxManager(replace(sandbox_config, spares=1, total=2, per_user=2), sink)
    mgr.start_reaper(interval_s=3600)
    try:
        assert await mgr.spares_ready() == 1
        await Runner(mgr, "u1", "c1")("1")
        await mgr.spares_ready()
        assert (mgr.kernel_count(), mgr.spare_count()) == (1, 1)
        await Runner(mgr, "u2", "c2")("1")
        await mgr.spares_ready()
        # two sessions fill the cap: no spare on top of them
        assert (mgr.kernel_count(), mgr.spare_count()) == (2, 0)
        # reaping frees room, and the spare comes back
        await mgr.reap_idle(now=time.monotonic() + 10**6)
        assert await mgr.spares_ready() == 1
        assert (mgr.kernel_count(), mgr.spare_count()) == (0, 1)
    finally:
        await mgr.close()
    assert mgr.spare_count() == 0


async def test_a_restart_after_a_crash_uses_the_spare(spare_manager: SandboxManager) -> None:
    run = Runner(spare_manager, "u1", "c1")
    await spare_manager.spares_ready()
    await run("value = 41")
    await spare_manager.spares_ready()
    died = await run("import os\nos._exit(3)")
    assert died.is_error
    out = await run(PROBE + "\nprint('value' in dir())")
    assert "starts fresh" in out.text
    assert out.text.rstrip().endswith("False\nFalse"), out.text  # no names, no `value`
    assert "stdout:\nwarm " in out.text, out.text


@pytest.mark.skipif(os.geteuid() != 0, reason="host uids are used only when Parley runs as root")
async def test_close_kills_spares(sandbox_config: SandboxConfig, sink: MemorySink) -> None:
    config = replace(sandbox_config, spares=1, host_uid_base=sandbox_config.host_uid_base + 500)
    mgr = SandboxManager(config, sink)
    mgr.start_reaper(interval_s=3600)
    try:
        assert await mgr.spares_ready() == 1
        # the spare holds slot 0 of whichever block this manager claimed (another
        # process on the machine may hold the first one)
        uid = mgr.host_uid(0)
        assert uid is not None
        assert host_uid_processes(uid), "the spare runs as its own unprivileged uid"
    finally:
        await mgr.close()  # a failure above must not leave the spare to the next tests
    assert host_uid_processes(uid) == []


async def test_spares_never_bypass_the_sandbox(
    sandbox_config: SandboxConfig, sink: MemorySink
) -> None:
    """A bubblewrap that cannot start: no spare, and the tool says code is unavailable."""
    broken = replace(sandbox_config, bwrap="/bin/false", spares=1, spare_retry_s=3600)
    mgr = SandboxManager(broken, sink)
    mgr.start_reaper(interval_s=3600)
    try:
        assert await mgr.spares_ready() == 0
        assert mgr.spare_count() == 0  # the failed one is dropped, retried later
        result = await mgr.run("u1", "c1", "print('ran')")
        assert result.execution is None
        assert result.unavailable.startswith("Code execution is unavailable")
        assert mgr.spare_count() == 0  # no retry before spare_retry_s
    finally:
        await mgr.close()


def test_kernel_starts_under_uvloop(sandbox_config: SandboxConfig) -> None:
    import uvloop

    async def main() -> str:
        mgr = SandboxManager(replace(sandbox_config, spares=1), MemorySink())
        mgr.start_reaper(interval_s=3600)
        try:
            ready = await mgr.spares_ready()
            result = await mgr.run("u1", "c1", "import os\nos.getuid()")
            assert result.execution is not None, result.unavailable
            return f"{ready} {result.execution.result.strip()}"
        finally:
            await mgr.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        ready, uid = runner.run(main()).split()
    assert ready == "1"
    assert uid != "0"
