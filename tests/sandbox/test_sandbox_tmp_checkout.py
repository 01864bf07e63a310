"""A checkout (and so the kernel's venv) under /tmp: the sandbox mounts its own
private /tmp, which must not hide the venv's interpreter."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

from conftest import require_sandbox
from parley.sandbox.bwrap import LaunchPlan, Limits, bwrap_argv, passwd_bytes


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def test_a_venv_under_tmp_is_visible_inside_the_sandbox(tmp_path: Path) -> None:
    assert str(tmp_path).startswith("/tmp/"), "pytest's tmp_path is the /tmp case"
    bwrap = require_sandbox().bwrap
    env_dir = tmp_path / "checkout" / ".venv" / "sandbox"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    passwd, group = passwd_bytes()
    fds = [_memfd("kernel.json", b"{}"), _memfd("passwd", passwd), _memfd("group", group)]
    info_r, info_w = os.pipe()
    plan = LaunchPlan(bwrap, python, Limits(), fds[0], fds[1], fds[2], info_w)
    argv = bwrap_argv(plan)
    # the same sandbox, with a one-line program instead of the kernel
    argv = [*argv[: argv.index(str(python)) + 1], "-c", "import sys; print(sys.prefix)"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=(*fds, info_w),
            check=False,
        )
    finally:
        for fd in (*fds, info_r, info_w):
            os.close(fd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(env_dir)


def test_the_venv_is_bound_after_the_private_tmp() -> None:
    plan = LaunchPlan("bwrap", Path("/tmp/x/.venv/sandbox/bin/python"), Limits(), 3, 4, 5, 6)
    argv = bwrap_argv(plan)
    tmp = next(i for i, arg in enumerate(argv) if arg == "/tmp" and argv[i - 1] == "--tmpfs")
    bind = argv.index("/tmp/x/.venv/sandbox")
    assert argv[bind - 1] == "--ro-bind"
    assert bind > tmp
