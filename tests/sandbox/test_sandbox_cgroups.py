"""Limits for the whole sandbox, and nothing outliving its call (issue 11, item 4).

Before: a call that started detached processes returned while they kept
running (past the CPU and wall limits, until the idle reaper), three children
of 600 MB each held 1.8 GB in a sandbox limited to 1 GB (RLIMIT_AS is per
process), and each child had a CPU budget of its own.

Now each kernel has a cgroup (memory, pids, cpu): these tests need one, and
where the host offers none they fail in CI (CI=true) and skip elsewhere. The
kill-after-call and CPU tests also run with cgroups turned off: the processes
under the sandbox's pid 1 are then killed and counted from ``/proc``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from conftest import TEST_LIMITS, MemorySink, Runner, our_cgroups, require_cgroups
from parley.sandbox import SandboxConfig, SandboxManager
from parley.sandbox.kernel import Kernel
from parley.sandbox.procs import descendants as _descendants
from parley.sandbox.procs import proc_table as _proc_table

# The slow tier (not in `make test-fast`): each program runs into a limit.
pytestmark = pytest.mark.slow


@pytest.fixture(params=["cgroups", "no-cgroups"])
async def either_manager(
    request: pytest.FixtureRequest, sandbox_config: SandboxConfig, sink: MemorySink
) -> AsyncIterator[SandboxManager]:
    with_cgroups = request.param == "cgroups"
    if with_cgroups:
        require_cgroups()
    mgr = SandboxManager(replace(sandbox_config, cgroups=with_cgroups), sink)
    try:
        yield mgr
    finally:
        await mgr.close()
    assert our_cgroups() == []


async def assert_quiet(manager: SandboxManager, idle_s: float = 0.0) -> Kernel:
    """The session's kernel is alive and alone in its sandbox, and (over ``idle_s``)
    nothing in the sandbox uses CPU between calls."""
    kernel = manager.kernel_for("u1", "c1")
    assert kernel is not None and kernel.alive
    assert live_processes(kernel) == [kernel.kernel_pid]
    if idle_s:
        before = kernel.cpu_ns()
        await asyncio.sleep(idle_s)
        assert kernel.cpu_ns() - before < 300_000_000
        assert live_processes(kernel) == [kernel.kernel_pid]
    return kernel


def live_processes(kernel: Kernel) -> list[int]:
    """Host pids of the sandbox's processes (under its pid 1), zombies left out."""
    table = _proc_table()
    return [p for p in _descendants(table, kernel.sandbox_pid) if table[p][1] != "Z"]


DETACH = r"""
import os, subprocess, sys, time, multiprocessing
BURN = 'while True: pass'
# double fork with setsid: the grandchild is an orphan in its own session
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            pass
    os._exit(0)
# nohup, in a new session, output thrown away
subprocess.Popen(['nohup', sys.executable, '-c', BURN], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
# a multiprocessing child (not joined)
def burn():
    while True:
        pass
multiprocessing.Process(target=burn).start()
time.sleep(0.5)
print('started')
"""


async def test_detached_processes_die_when_the_call_ends(either_manager: SandboxManager) -> None:
    run = Runner(either_manager)
    out = await run(DETACH)
    assert "started" in out.text, out.text
    assert "were stopped when the call ended" in out.text, out.text
    await assert_quiet(either_manager, idle_s=1.0)
    # the session is intact
    assert "still 3" in (await run("print('still', 1 + 2)")).text


async def test_threads_left_running_do_nothing_between_calls(
    either_manager: SandboxManager,
) -> None:
    """Threads live in the kernel, which must survive: it is stopped between calls,
    so a spinning thread burns nothing and a delayed one starts no process."""
    run = Runner(either_manager)
    out = await run(
        "import threading, subprocess, sys, time\n"
        "def later():\n    time.sleep(1.0)\n"
        "    subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "def spin():\n    while True: pass\n"
        "threading.Thread(target=later, daemon=True).start()\n"
        "threading.Thread(target=spin, daemon=True).start()\n"
        "print('threads started')"
    )
    assert "threads started" in out.text, out.text
    await assert_quiet(either_manager, idle_s=2.0)
    assert "next 7" in (await run("print('next', 3 + 4)")).text
    await assert_quiet(either_manager)


async def test_background_processes_after_a_timeout_die_too(
    either_manager: SandboxManager,
) -> None:
    run = Runner(either_manager)
    out = await run(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'while True: pass'], start_new_session=True)\n"
        "time.sleep(3600)"
    )
    assert "ran longer than the 6 s limit" in out.text, out.text
    await assert_quiet(either_manager, idle_s=1.0)


async def test_cpu_limit_counts_the_whole_tree(
    either_manager: SandboxManager, sink: MemorySink
) -> None:
    """Two children burn CPU while the kernel waits for them: the call's CPU budget
    (3 s) counts them, long before the wall limit (15 s)."""
    limits = replace(TEST_LIMITS, cpu_seconds=3, wall_seconds=15)
    config = replace(either_manager.config, limits=limits)
    manager = SandboxManager(config, sink)
    try:
        run = Runner(manager)
        await run("import subprocess, sys")  # the kernel's own start-up is not this call's
        out = await run(
            "procs = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])"
            " for _ in range(2)]\n"
            "print([p.wait() for p in procs])"
        )
        assert "CPU time limit (3 s)" in out.text, out.text
        assert run.last is not None and run.last.execution is not None
        assert run.last.execution.duration_ms < 12_000
        after = await run("print('alive', 2 + 2)")
        assert "alive 4" in after.text and "starts fresh" in after.text
    finally:
        await manager.close()


async def test_memory_limit_holds_for_the_whole_sandbox(
    manager: SandboxManager, sink: MemorySink
) -> None:
    """Three children of 600 MB in a 1 GB sandbox: not all three can hold it at once.
    (A 30 s wall limit: starting three interpreters and touching 1.8 GB takes a loaded
    CI machine longer than the usual 6 s.)"""
    require_cgroups()
    limits = replace(TEST_LIMITS, wall_seconds=30)
    own = SandboxManager(replace(manager.config, limits=limits), sink)
    try:
        run = Runner(own)
        out = await run(
            "import subprocess, sys\n"
            "CHILD = ('import time\\nx = bytearray(600 * 2**20)\\n'\n"
            "         'for i in range(0, len(x), 4096): x[i] = 1\\ntime.sleep(3)')\n"
            "procs = [subprocess.Popen([sys.executable, '-c', CHILD]) for _ in range(3)]\n"
            "print('codes', [p.wait() for p in procs])"
        )
        assert "codes [" in out.text, out.text
        codes = [int(c) for c in out.text.split("codes [")[1].split("]")[0].split(",")]
        assert any(code != 0 for code in codes), out.text  # OOM-killed (-9) or refused
        assert "ran out of memory" in out.text, out.text
        kernel = own.kernel_for("u1", "c1")
        assert kernel is not None and kernel.cgroup is not None
        assert 0 < kernel.cgroup.memory_peak() <= TEST_LIMITS.memory_bytes
        assert "fine" in (await run("print('fine')")).text
    finally:
        await own.close()


async def test_pids_limit_holds_for_the_whole_sandbox(run: Runner) -> None:
    require_cgroups()
    out = await run(
        "import os, time, threading\npids = []\ntry:\n    for _ in range(1000):\n"
        "        pid = os.fork()\n        if pid == 0:\n            time.sleep(30); os._exit(0)\n"
        "        pids.append(pid)\nexcept OSError as exc:\n"
        "    print('fork refused after', len(pids))\n"
        "threads = 0\ntry:\n    for _ in range(1000):\n"
        "        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "        threads += 1\nexcept RuntimeError:\n    print('threads refused after', threads)\n"
        "for pid in pids: os.kill(pid, 9)\nfor pid in pids: os.waitpid(pid, 0)"
    )
    assert "fork refused after" in out.text and "threads refused after" in out.text, out.text
    assert int(out.text.split("fork refused after")[1].split()[0]) < TEST_LIMITS.processes
    kernel = run.manager.kernel_for("u1", "c1")
    assert kernel is not None and kernel.cgroup is not None
    assert kernel.cgroup.pids_refused() > 0  # the cgroup, not RLIMIT_NPROC, said no
    assert len(kernel.cgroup.pids()) <= 3  # bwrap, its pid 1, the kernel
    assert "after" in (await run("print('after')")).text


async def test_the_cgroup_is_removed_with_the_kernel(manager: SandboxManager) -> None:
    require_cgroups()
    run = Runner(manager)
    await run("print(1)")
    kernel = manager.kernel_for("u1", "c1")
    assert kernel is not None and kernel.cgroup is not None
    dirs = list(kernel.cgroup.dirs.values())
    assert all(d.is_dir() for d in dirs)
    assert kernel.proc is not None and kernel.proc.pid in kernel.cgroup.pids()
    out = await run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert "was killed" in out.text, out.text
    assert not any(d.exists() for d in dirs)  # the dead kernel's group went with it
    assert "2" in (await run("print(2)")).text
    await manager.close()
    assert our_cgroups() == []
