"""The code interpreter: a Jupyter kernel per conversation, inside bubblewrap.

- ``bwrap``: the sandbox's command line and resource limits (why each flag).
- ``kernel``: start one kernel, run code over ZeroMQ ipc, interrupt, kill.
- ``procs``: the sandbox's process tree from ``/proc`` (CPU time, leftovers).
- ``files``: symlink-safe copies into and out of the sandbox's working directory.
- ``config``: the sandbox's settings and the check that the host has its parts.
- ``manager``: one kernel per conversation, per-user and global caps, reaping.
- ``transfer``: a call's files in and outputs out, within the output quota.
- ``outputs`` / ``tables`` / ``routes``: charts and files kept for their owner.
- ``feature``: the ``run_python`` tool and the feature Parley's app loads.


Only the engine room is re-exported here (no web framework): ``parley.schema``
imports ``parley.sandbox.tables`` on the migration path.
"""

from parley.sandbox.bwrap import Limits
from parley.sandbox.manager import FilesSource, RunResult, SandboxConfig, SandboxManager

__all__ = [
    "FilesSource",
    "Limits",
    "RunResult",
    "SandboxConfig",
    "SandboxManager",
]
