"""The sandbox's processes, read from ``/proc``: find, measure, kill.

Split from ``kernel.py``, which speaks to the kernel: these are the host-side
facts about the process tree under bwrap (the kernel's host pid, a process's
start time so a reused pid is never mistaken for it, the CPU time of the
whole tree where there is no cgroup, and the leftover processes a call
leaves behind). Plain functions over ``/proc``, run in a thread by the caller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = [
    "cpu_seconds",
    "descendants",
    "find_child",
    "kill_descendants",
    "proc_table",
    "start_time",
    "tree_cpu_ns",
    "wait_stopped",
]


def find_child(pid: int) -> int:
    """The host pid of ``pid``'s first child (the kernel under bwrap's init), or 0."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat_line = (entry / "stat").read_text()
            ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                return int(entry.name)
    return 0


def start_time(pid: int) -> int:
    """The process's start time in clock ticks (-1 when it is gone): identifies it across reuse."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return -1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_table() -> dict[int, tuple[int, str, int]]:
    """Every host process: pid -> (parent pid, state, CPU ticks incl. reaped children)."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            table[int(entry.name)] = (int(fields[1]), fields[0], ticks)
    return table


def descendants(table: dict[int, tuple[int, str, int]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_ns(root: int) -> int:
    """CPU of ``root`` and everything under it, without cgroups.

    Each live process counts its own time and that of the children it reaped;
    a process reaped by another is counted in its reaper only, so nothing is
    counted twice (orphans are reaped by the sandbox's pid 1, in the tree)."""
    table = proc_table()
    ticks = sum(table[pid][2] for pid in (root, *descendants(table, root)) if pid in table)
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def wait_stopped(pid: int) -> None:
    """Until ``pid`` is stopped (state T), or gone; at most about 0.2 s."""
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t", "Z", "X"):
                    return
        except (OSError, IndexError):
            return
        time.sleep(0.002)


def kill_descendants(root: int, keep: set[int], rounds: int = 50) -> int:
    """SIGKILL the live processes under ``root`` but ``keep``, until none is left."""
    signalled: set[int] = set()
    for _ in range(rounds):
        table = proc_table()
        extra = [p for p in descendants(table, root) if p not in keep and table[p][1] != "Z"]
        if not extra:
            break
        for pid in extra:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                signalled.add(pid)
        time.sleep(0.01)
    return len(signalled)
