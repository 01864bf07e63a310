"""Hostile programs that exhaust resources: processes, memory, disk, CPU, output.

Each must end with a clear message to the user, leave no process behind, and
leave the server able to run normal code (the health test checks RSS and fds).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import TEST_LIMITS, Runner, host_uid_processes
from parley.sandbox import SandboxManager

# The slow tier (not in `make test-fast`): each program runs into a limit
# (seconds of wall or CPU time).
pytestmark = pytest.mark.slow


async def test_fork_bomb_is_capped(run: Runner) -> None:
    out = await run(
        "import os, time\npids = []\ntry:\n    for _ in range(100000):\n"
        "        pid = os.fork()\n        if pid == 0:\n            time.sleep(30); os._exit(0)\n"
        "        pids.append(pid)\nexcept OSError as exc:\n"
        "    print('fork refused after', len(pids), type(exc).__name__)\n"
        "for pid in pids: os.kill(pid, 9)\nfor pid in pids: os.waitpid(pid, 0)"
    )
    assert "fork refused after" in out.text, out.text
    refused_after = int(out.text.split("fork refused after")[1].split()[0])
    assert refused_after < TEST_LIMITS.processes
    assert "2" in (await run("print(1 + 1)")).text


async def test_exponential_fork_bomb_is_stopped(manager: SandboxManager) -> None:
    run = Runner(manager)
    out = await run("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass")
    assert out.is_error
    assert "longer than the" in out.text or "restarted" in out.text, out.text
    after = await run("print('fine', 2 * 21)")
    assert "fine 42" in after.text
    if os.geteuid() == 0:  # each kernel runs as its own host uid; only the live one remains
        kernel = manager.kernel_for("u1", "c1")
        assert kernel is not None
        assert len(host_uid_processes(manager.config.host_uid_base)) <= 4


async def test_memory_bomb_raises_memory_error(run: Runner) -> None:
    out = await run("x = bytearray(8 * 2**30)")
    assert "MemoryError" in out.text
    assert "limited to 1024 MB of memory" in out.text


async def test_growing_memory_bomb(run: Runner) -> None:
    out = await run("chunks = []\nwhile True:\n    chunks.append(b'x' * 50_000_000)")
    assert "MemoryError" in out.text, out.text
    assert "ok" in (await run("del chunks\nprint('ok')")).text


async def test_numpy_memory_bomb(run: Runner) -> None:
    out = await run("import numpy as np\na = np.ones((60000, 60000))")
    assert "MemoryError" in out.text or "Unable to allocate" in out.text, out.text


async def test_fill_the_disk(run: Runner, tmp_path: Path) -> None:
    before = os.statvfs(tmp_path)
    out = await run(
        "i = 0\nwhile True:\n    with open(f'fill{i}.bin', 'wb') as f:\n"
        "        f.write(b'x' * 4_000_000)\n    i += 1"
    )
    assert "No space left on device" in out.text, out.text
    assert "working directory is limited to 32 MB" in out.text
    after = os.statvfs(tmp_path)
    lost = (before.f_bavail - after.f_bavail) * before.f_frsize
    assert lost < 200 * 2**20  # the host disk is untouched (outputs are capped too)


async def test_one_huge_file(run: Runner) -> None:
    out = await run("open('/tmp/big.bin', 'wb').write(b'x' * 12_000_000)")
    assert "File too large" in out.text or "No space left" in out.text, out.text


async def test_fill_tmp_and_shm(run: Runner) -> None:
    out = await run(
        "for d in ('/tmp', '/dev/shm'):\n    try:\n        for i in range(100):\n"
        "            open(f'{d}/f{i}', 'wb').write(b'x' * 4_000_000)\n"
        "        print(d, 'FILLED 400MB')\n"
        "    except OSError as exc:\n        print(d, exc.strerror)"
    )
    assert "FILLED" not in out.text, out.text
    assert out.text.count("No space left on device") + out.text.count("File too large") == 2


async def test_infinite_loop_is_interrupted_and_state_kept(run: Runner) -> None:
    await run("kept = 'still here'")
    out = await run("while True:\n    pass")
    assert out.is_error
    assert "ran longer than the 6 s limit" in out.text
    assert "KeyboardInterrupt" in out.text
    assert "still here" in (await run("print(kept)")).text


async def test_loop_that_ignores_interrupts_restarts_the_session(run: Runner) -> None:
    await run("kept = 1")
    out = await run(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    )
    assert "did not stop after an interrupt" in out.text, out.text
    after = await run("print('alive')")
    assert "alive" in after.text
    assert "starts fresh" in after.text
    assert "NameError" in (await run("kept")).text


async def test_sleeping_forever_times_out(run: Runner) -> None:
    out = await run("import time\ntime.sleep(3600)")
    assert "ran longer than the 6 s limit" in out.text


async def test_cpu_time_limit_stops_the_kernel(sandbox_config, sink) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    limits = replace(TEST_LIMITS, cpu_seconds=2, wall_seconds=8)
    manager = SandboxManager(replace(sandbox_config, limits=limits), sink)
    try:
        run = Runner(manager)
        out = await run("while True:\n    pass")
        assert "CPU time limit (2 s)" in out.text, out.text
        assert "alive" in (await run("print('alive')")).text
    finally:
        await manager.close()


async def test_kernel_killing_itself_is_reported(run: Runner) -> None:
    out = await run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert "killed" in out.text, out.text
    after = await run("print(3)")
    assert "3" in after.text and "starts fresh" in after.text


async def test_output_flood_is_truncated(run: Runner) -> None:
    out = await run("for _ in range(200):\n    print('y' * 100_000)")
    assert len(out.text) < 20_000
    assert "characters" in out.text  # says how much was cut


async def test_oversized_message_drops_only_the_session(run: Runner) -> None:
    out = await run(
        "from IPython.display import display\ndisplay({'text/plain': 'z' * 60_000_000}, raw=True)"
    )
    assert out.is_error or "z" in out.text
    after = await run("print('next', 5)")
    assert "next 5" in after.text


async def test_symlinks_and_fifos_are_not_collected(manager: SandboxManager, sink) -> None:  # type: ignore[no-untyped-def]
    secret = Path("/etc/hostname")
    run = Runner(manager)
    out = await run(
        "import os\n"
        f"os.symlink({str(secret)!r}, 'host.txt')\n"
        "os.symlink('/proc/1/environ', 'env.txt')\n"
        "os.mkfifo('pipe.csv')\n"
        "os.mkdir('sub'); os.symlink('/etc', 'sub/etc')\n"
        "open('real.csv', 'w').write('a,b\\n1,2\\n')"
    )
    names = [a["filename"] for a in out.attachments]
    assert names == ["real.csv"], out.text
    assert all(data != secret.read_bytes() for *_, data in sink.saved.values())


async def test_many_files_are_capped(run: Runner) -> None:
    out = await run("for i in range(50):\n    open(f'f{i:02}.txt', 'w').write(str(i))")
    assert len(out.attachments) == 10
    assert "50 files changed; only the first 10 are kept" in out.text
