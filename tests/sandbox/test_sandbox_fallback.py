"""Without cgroups: `parley doctor` and the server's start say so and why, and the
per-process limits still apply (plus kill-after-call and the tree's CPU budget,
tested with cgroups off in ``test_sandbox_cgroups.py``)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from conftest import MemorySink, Runner, require_cgroups
from parley.config import load_settings
from parley.sandbox import SandboxConfig, SandboxManager, cgroups, manager
from parley.sandbox.cgroups import CgroupSupport
from parley.terminal.doctor import Doctor, _check_sandbox

pytestmark = pytest.mark.slow

NO_CGROUPS = CgroupSupport(
    reason="cannot create a cgroup in /sys/fs/cgroup/memory: Permission denied"
)


@pytest.fixture
async def no_cgroups(
    monkeypatch: pytest.MonkeyPatch, sandbox_config: SandboxConfig, sink: MemorySink
) -> AsyncIterator[SandboxManager]:
    monkeypatch.setattr(manager, "detect", lambda: NO_CGROUPS)
    mgr = SandboxManager(sandbox_config, sink)
    try:
        yield mgr
    finally:
        await mgr.close()


async def test_per_process_limits_still_apply(no_cgroups: SandboxManager) -> None:
    assert "Permission denied" in no_cgroups.cgroup_status()
    run = Runner(no_cgroups)
    out = await run("x = bytearray(8 * 2**30)")
    assert "MemoryError" in out.text and "limited to 1024 MB of memory" in out.text
    kernel = no_cgroups.kernel_for("u1", "c1")
    assert kernel is not None and kernel.cgroup is None
    out = await run(
        "import os, time\npids = []\ntry:\n    for _ in range(1000):\n"
        "        pid = os.fork()\n        if pid == 0:\n            time.sleep(30); os._exit(0)\n"
        "        pids.append(pid)\nexcept OSError:\n    print('fork refused after', len(pids))\n"
        "for pid in pids: os.kill(pid, 9)\nfor pid in pids: os.waitpid(pid, 0)"
    )
    assert "fork refused after" in out.text, out.text


def test_cgroups_turned_off_is_reported(sandbox_config: SandboxConfig, sink: MemorySink) -> None:
    mgr = SandboxManager(replace(sandbox_config, cgroups=False), sink)
    assert "PARLEY_SANDBOX_CGROUPS=false" in mgr.cgroup_status()


async def _doctor_output(monkeypatch: pytest.MonkeyPatch, cgroups_work: bool) -> str:
    if not cgroups_work:
        monkeypatch.setattr(cgroups, "detect", lambda: NO_CGROUPS)
    out = io.StringIO()
    await _check_sandbox(Doctor(out=out), load_settings(sandbox_bwrap="/usr/bin/bwrap"))
    return out.getvalue()


async def test_doctor_says_when_cgroups_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    text = await _doctor_output(monkeypatch, cgroups_work=False)
    assert "sandbox limits per process only" in text
    assert "cannot create a cgroup" in text
    assert "sandbox seccomp filter: builds" in text


async def test_doctor_with_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    require_cgroups()
    text = await _doctor_output(monkeypatch, cgroups_work=True)
    assert "sandbox limits for the whole sandbox: cgroup v" in text, text


async def test_start_warns_without_cgroups(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, make_app: Any
) -> None:
    monkeypatch.setattr(manager, "detect", lambda: NO_CGROUPS)
    with caplog.at_level(logging.WARNING, logger="parley.sandbox.feature"):
        async with make_app():
            pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "parley.sandbox.feature"]
    assert any("without cgroups" in w and "Permission denied" in w for w in warnings), warnings
