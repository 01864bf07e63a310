"""The cgroup module's parsing and its v2 and v1 file layouts, on fake trees (no
kernel needed): which mount serves which controller, where a kernel's group
goes, what is written to set the limits, how usage and events are read."""

from __future__ import annotations

from pathlib import Path

from parley.sandbox import cgroups
from parley.sandbox.cgroups import CgroupLimits, CgroupSupport, KernelCgroup

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PROC_SELF = "4:memory:/process_api/abc\n8:pids:/\n1:cpu,cpuacct:/\n0::/\n"


def test_mountinfo_and_own_paths_are_parsed() -> None:
    mounts = cgroups._mounts(HYBRID)
    assert [(str(m.path), m.version) for m in mounts] == [
        ("/sys/fs/cgroup/cpu", 1),
        ("/sys/fs/cgroup/memory", 1),
        ("/sys/fs/cgroup/pids", 1),
        ("/sys/fs/cgroup/unified", 2),
    ]
    assert "memory" in mounts[1].controllers
    own = cgroups._own_paths(PROC_SELF)
    assert own == {"memory": "/process_api/abc", "pids": "/", "cpu": "/", "cpuacct": "/", "": "/"}
    assert cgroups._under(mounts[1], own["memory"]) == Path("/sys/fs/cgroup/memory/process_api/abc")
    # a hierarchy mounted from a sub-path (a container's view): paths outside it are not visible
    sub = cgroups._Mount(Path("/sys/fs/cgroup/memory"), "/docker/x", frozenset({"memory"}), 1)
    assert cgroups._under(sub, "/docker/x/inner") == Path("/sys/fs/cgroup/memory/inner")
    assert cgroups._under(sub, "/elsewhere") is None


def _v2_group(tmp_path: Path) -> KernelCgroup:
    directory = tmp_path / "unified" / "parley-1-1"
    directory.mkdir(parents=True)
    for name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "cgroup.procs"):
        (directory / name).write_text("")
    return KernelCgroup(2, {"": directory}, freezer=False)


def test_v2_limits_usage_and_events(tmp_path: Path) -> None:
    group = _v2_group(tmp_path)
    group.configure(CgroupLimits(memory_bytes=512 * 2**20, processes=32, cpus=1.5))
    d = group.dirs[""]
    assert (d / "memory.max").read_text() == str(512 * 2**20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "32"
    assert (d / "cpu.max").read_text() == "150000 100000"
    (d / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n")
    (d / "pids.events").write_text("max 7\n")
    (d / "memory.peak").write_text("123456\n")
    (d / "cgroup.procs").write_text("10\n11\n")
    assert group.cpu_ns() == 2_500_000_000
    assert group.oom_kills() == 2
    assert group.pids_refused() == 7
    assert group.memory_peak() == 123456
    assert group.pids() == {10, 11}
    assert group.procs_files() == [str(d / "cgroup.procs")]


def test_v1_limits_go_to_each_hierarchy(tmp_path: Path) -> None:
    dirs = {}
    for controller in ("memory", "pids", "cpu", "cpuacct"):
        d = tmp_path / controller / "parley-1-1"
        d.mkdir(parents=True)
        dirs[controller] = d
    (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text("")
    group = KernelCgroup(1, dirs)
    group.configure(CgroupLimits(memory_bytes=2**30, processes=64, cpus=1.0))
    assert (dirs["memory"] / "memory.limit_in_bytes").read_text() == str(2**30)
    assert (dirs["memory"] / "memory.memsw.limit_in_bytes").read_text() == str(2**30)
    assert (dirs["pids"] / "pids.max").read_text() == "64"
    assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "100000"
    (dirs["cpuacct"] / "cpuacct.usage").write_text("987654321\n")
    (dirs["memory"] / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
    )
    assert group.cpu_ns() == 987654321
    assert group.oom_kills() == 3
    assert len(group.procs_files()) == 4


def test_unavailable_support_says_why() -> None:
    support = CgroupSupport(reason="no cgroup filesystem is mounted")
    assert not support.available
    assert support.describe() == "cgroups unavailable: no cgroup filesystem is mounted"


def test_detect_reports_this_host() -> None:
    support = cgroups.detect()
    assert support.available or support.reason  # one or the other, never silent
