"""What the sandbox is built from, and whether this host has it.

Split from ``manager.py``: the settings (``SandboxConfig``, read from Parley's
``Settings``) and the check of the host's parts (bubblewrap, the kernel venv,
``jupyter_client``, seccomp) are needed by ``parley doctor`` and the feature as
much as by the manager, and read apart from its kernel bookkeeping.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from parley.config import Settings
from parley.sandbox import seccomp
from parley.sandbox.bwrap import Limits, python_prefix, resolve_bwrap
from parley.sandbox.uids import LOCK_DIR

__all__ = ["SandboxConfig", "config_from_settings", "default_python", "missing_parts"]


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How kernels are built and capped (``config_from_settings`` maps the settings)."""

    bwrap: str = "bwrap"
    python: Path = Path("/nonexistent")
    limits: Limits = field(default_factory=Limits)
    per_user: int = 2
    total: int = 16
    idle_s: float = 900.0
    host_uid_base: int = 900_000
    max_output_files: int = 10
    max_output_bytes: int = 25 * 2**20  # one file
    output_call_bytes: int = 50 * 2**20  # files and images of one call together
    output_user_bytes: int = 1024 * 2**20  # everything stored for one user
    cgroups: bool = True  # a cgroup per kernel where the host has them
    start_timeout_s: float = 15.0
    spares: int = 0  # kernels kept started for new conversations
    spare_imports: tuple[str, ...] = ("numpy", "pandas", "matplotlib.pyplot")
    spare_retry_s: float = 30.0  # after a spare failed to start
    uid_lock_dir: Path = LOCK_DIR  # where workers claim their block of host uids

    def __post_init__(self) -> None:
        # The venv folder may be a link (into /var/tmp for a private checkout):
        # bwrap binds real paths, and the link would not exist inside the sandbox.
        venv = self.python.parent.parent
        if venv.is_symlink():
            object.__setattr__(self, "python", venv.resolve() / "bin" / self.python.name)


def default_python() -> Path:
    """The kernel venv ``make install`` builds next to Parley's own: ``<venv>/sandbox``."""
    return Path(sys.prefix) / "sandbox" / "bin" / "python"


def config_from_settings(settings: Settings) -> SandboxConfig:
    mb = 2**20
    return SandboxConfig(
        bwrap=settings.sandbox_bwrap,
        python=settings.sandbox_python or default_python(),
        limits=Limits(
            memory_bytes=settings.sandbox_memory_mb * mb,
            cpu_seconds=settings.sandbox_cpu_s,
            processes=settings.sandbox_processes,
            file_bytes=settings.sandbox_file_mb * mb,
            disk_bytes=settings.sandbox_disk_mb * mb,
            wall_seconds=settings.sandbox_wall_s,
            cpus=settings.sandbox_cpus,
        ),
        per_user=settings.sandbox_kernels_per_user,
        total=settings.sandbox_max_kernels,
        spares=settings.sandbox_spare_kernels,
        idle_s=settings.sandbox_idle_s,
        host_uid_base=settings.sandbox_host_uid_base,
        output_call_bytes=settings.sandbox_output_call_mb * mb,
        output_user_bytes=settings.sandbox_output_user_mb * mb,
        cgroups=settings.sandbox_cgroups,
    )


def missing_parts(cfg: SandboxConfig) -> str:
    """Why code cannot run here ('' when the sandbox's parts are in place)."""
    if importlib.util.find_spec("jupyter_client") is None:
        return "the server lacks jupyter_client: install Parley with the `sandbox` extra."
    if resolve_bwrap(cfg.bwrap) is None:
        return (
            f"bubblewrap ('{cfg.bwrap}') was not found. Install it "
            "(Debian/Ubuntu: apt-get install bubblewrap) or set PARLEY_SANDBOX_BWRAP."
        )
    if not os.access(cfg.python, os.X_OK):
        return (
            f"the sandbox's Python ({cfg.python}) is missing: run `make install` "
            "or set PARLEY_SANDBOX_PYTHON to a venv with ipykernel, pandas and matplotlib."
        )
    if os.geteuid() == 0:
        for path in (python_prefix(cfg.python), cfg.python.parent.parent):
            if not _world_readable(path):
                return (
                    f"{path} is not readable by unprivileged users, so the sandbox "
                    "cannot use it: build the sandbox venv from a system Python (/usr)."
                )
    why = seccomp.unavailable_reason()
    if why:
        return f"the sandbox's seccomp filter cannot be built: {why}"
    return ""


def _world_readable(path: Path) -> bool:
    """Every directory on the way to ``path`` is searchable by others, and it is readable."""
    try:
        current = Path("/")
        for part in path.resolve().parts[1:]:
            current = current / part
            mode = current.stat().st_mode
            if not mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False
