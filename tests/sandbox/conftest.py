"""Sandbox fixtures: a real bubblewrap + ipykernel sandbox with small limits, and
for tests in the whole app, the app of ``tests/conftest.py`` on SQLite with this
sandbox (the sandbox is what they test, not the database).

Without bubblewrap or the kernel venv these tests FAIL (never skip): install
bubblewrap (``apt-get install bubblewrap``) and run ``make install``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from parley.sandbox import Limits, SandboxConfig, SandboxManager
from parley.sandbox.cgroups import PREFIX, detect
from parley.sandbox.feature import default_python, render
from parley.sandbox.manager import RunResult
from parley.sandbox.outputs import Attachment, media_type_for
from parley.tools import ToolOutput

TEST_LIMITS = Limits(
    memory_bytes=1024 * 2**20,
    cpu_seconds=20,
    processes=48,
    file_bytes=8 * 2**20,
    disk_bytes=32 * 2**20,
    tmp_bytes=16 * 2**20,
    wall_seconds=6.0,
)
SECRET = "parley-test-secret-3f9c1e"


def require_sandbox() -> SandboxConfig:
    bwrap = "/usr/bin/bwrap"
    if not os.access(bwrap, os.X_OK):
        pytest.fail("bubblewrap is missing: install it (apt-get install bubblewrap)")
    python = default_python()
    if not os.access(python, os.X_OK):
        pytest.fail(f"the sandbox venv is missing at {python}: run `make install`")
    return SandboxConfig(bwrap=bwrap, python=python, limits=TEST_LIMITS, idle_s=3600)


class MemorySink:
    """Outputs kept in memory (the API test covers the database-backed store)."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[str, str | None, str, bytes]] = {}

    async def save(
        self, user_id: str, conversation_id: str | None, filename: str, data: bytes
    ) -> Attachment:
        media, kind = media_type_for(filename, data[:16])
        output_id = f"out{len(self.saved)}"
        self.saved[output_id] = (user_id, conversation_id, filename, data)
        return Attachment(output_id, filename, media, kind, len(data))

    async def used_bytes(self, user_id: str) -> int:
        return sum(len(data) for owner, _, _, data in self.saved.values() if owner == user_id)


def require_cgroups() -> None:
    """Cgroups on this host, or: fail in CI (root on a host that has them), skip elsewhere."""
    support = detect()
    if support.available:
        return
    message = f"cgroups are unavailable here: {support.reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI runs as root on a host with cgroups: they must work)")
    pytest.skip(message)


def our_cgroups() -> list[Path]:
    """Kernel cgroups this test process made that still exist (none once managers close)."""
    support = detect()
    found: list[Path] = []
    for parent in set(support.parents.values()):
        found += parent.glob(f"{PREFIX}{os.getpid()}-*")
    return found


@pytest.fixture(autouse=True)
def no_cgroup_leaks() -> Iterator[None]:
    """Every kernel's cgroup is gone once the test's managers (and apps) are closed."""
    yield
    assert our_cgroups() == [], "a kernel's cgroup outlived its manager"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"


@pytest.fixture
def overrides() -> dict[str, Any]:
    config = require_sandbox()
    return {
        "sandbox_bwrap": config.bwrap,
        "sandbox_python": config.python,
        "sandbox_wall_s": TEST_LIMITS.wall_seconds,
    }


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return require_sandbox()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
async def manager(sandbox_config: SandboxConfig, sink: MemorySink) -> AsyncIterator[SandboxManager]:
    mgr = SandboxManager(sandbox_config, sink)
    try:
        yield mgr
    finally:
        await mgr.close()
    assert mgr.kernel_count() == 0


class Runner:
    """``await run(code)`` in one conversation; returns the rendered tool output."""

    def __init__(self, manager: SandboxManager, user: str = "u1", conversation: str = "c1"):
        self.manager, self.user, self.conversation = manager, user, conversation
        self.last: RunResult | None = None

    async def __call__(self, code: str) -> ToolOutput:
        self.last = await self.manager.run(self.user, self.conversation, code)
        return render(self.last, self.manager.config.limits)


@pytest.fixture
def run(manager: SandboxManager) -> Runner:
    return Runner(manager)


def host_uid_processes(uid: int) -> list[int]:
    """Host pids whose real uid is ``uid`` (the sandbox's processes when tests run as root).

    Zombies are left out: they hold nothing but a pid, and reaping the ones
    reparented to pid 1 is up to the machine's init (lazy in some VMs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("State", "").strip().startswith("Z"):
                continue
            if int(fields.get("Uid", "-1 ").split()[0]) == uid:
                found.append(int(entry.name))
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
