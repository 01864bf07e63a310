"""After a batch of hostile programs the server (this process) is healthy:
normal code still runs, and its memory, file descriptors, threads and child
processes are back near where they started."""

from __future__ import annotations

import os
import threading

import pytest

from conftest import MemorySink, Runner, host_uid_processes, open_fds, rss_mb
from parley.sandbox import SandboxConfig, SandboxManager

# The slow tier (not in `make test-fast`): a soak run of every hostile program (about a minute).
pytestmark = pytest.mark.slow

HOSTILE = [
    "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
    "chunks = []\nwhile True: chunks.append(b'x' * 50_000_000)",
    "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 4_000_000); i += 1",
    "for _ in range(300): print('y' * 100_000)",
    "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "from IPython.display import display\ndisplay({'text/plain': 'z' * 60_000_000}, raw=True)",
]


def _children() -> set[int]:
    """This process's child processes (the suite's own servers, such as a session's
    S3 server, are children too: compare with the set from before)."""
    mine = str(os.getpid())
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[1] == mine:
                        found.add(int(entry))
            except (OSError, IndexError):
                pass
    return found


async def test_server_stays_healthy(sandbox_config: SandboxConfig) -> None:
    before = _children()
    manager = SandboxManager(sandbox_config, MemorySink())
    run = Runner(manager)
    await run("1")  # warm-up: imports and the first kernel
    await manager.close()
    fds, rss, threads = open_fds(), rss_mb(), threading.active_count()

    manager = SandboxManager(sandbox_config, MemorySink())
    uids: set[int] = set()  # this manager's own (other processes may claim other blocks)
    try:
        for i, code in enumerate(HOSTILE):
            out = await Runner(manager, "u1", f"c{i}")(code)
            assert out.text, code
            uids.update(uid for slot in range(4) if (uid := manager.host_uid(slot)) is not None)
        normal = await Runner(manager, "u1", "normal")("sum(range(101))")
        assert "result:\n5050" in normal.text
    finally:
        await manager.close()

    assert manager.kernel_count() == 0
    assert _children() - before == set(), "a sandbox process outlived its manager"
    if os.geteuid() == 0:
        assert uids, "the kernels ran as unprivileged host uids"
        for uid in uids:
            assert host_uid_processes(uid) == [], uid
    assert open_fds() <= fds + 5, (fds, open_fds())
    assert rss_mb() < rss + 150, (rss, rss_mb())
    assert threading.active_count() <= threads + 2
