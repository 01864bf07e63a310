"""The sandbox's seccomp filter: syscalls a data-analysis kernel never needs fail
inside (EPERM, or ENOSYS for io_uring and clone3), ordinary work still runs.

Issue 11, item 7: before the filter, io_uring_setup and keyctl worked inside.
"""

from __future__ import annotations

import platform
import re

import pytest

from conftest import Runner
from parley.sandbox import seccomp

# The slow tier (not in `make test-fast`): a sandboxed kernel per probe.
pytestmark = pytest.mark.slow

PROBE = r"""
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, errno.errorcode.get(ctypes.get_errno(), '0')
params = ctypes.create_string_buffer(128)
desc = ctypes.create_string_buffer(b'user:parley-probe')
payload = ctypes.create_string_buffer(b'secret')
attr = ctypes.create_string_buffer(128)
probes = {
    'io_uring_setup': (425, 4, ctypes.addressof(params)),
    'io_uring_enter': (426, 0, 0, 0, 0, 0, 0),
    'io_uring_register': (427, 0, 0, 0, 0),
    'keyctl': (250, 0, -3, 1),  # KEYCTL_GET_KEYRING_ID of the session keyring, create it
    'add_key': (248, ctypes.addressof(ctypes.create_string_buffer(b'user')),
                ctypes.addressof(desc), ctypes.addressof(payload), 6, -3),
    'request_key': (249, 0, 0, 0, 0),
    'bpf': (321, 0, ctypes.addressof(attr), 128),
    'perf_event_open': (298, ctypes.addressof(attr), 0, -1, -1, 0),
    'userfaultfd': (323, 0),
    'unshare': (272, 0x20000),
    'setns': (308, 0, 0),
    'ptrace': (101, 0, 0, 0, 0),  # PTRACE_TRACEME
    'process_vm_readv': (310, os.getpid(), 0, 0, 0, 0, 0),
    'kexec_load': (246, 0, 0, 0, 0),
    'init_module': (175, 0, 0, 0),
    'finit_module': (313, -1, 0, 0),
    'delete_module': (176, 0, 0),
    'mount': (165, 0, 0, 0, 0, 0),
    'umount2': (166, 0, 0),
    'pivot_root': (155, 0, 0),
    'swapon': (167, 0, 0),
    'reboot': (169, 0, 0, 0, 0),
    'acct': (163, 0),
    'quotactl': (179, 0, 0, 0, 0),
    'name_to_handle_at': (303, -100, 0, 0, 0, 0),
    'open_by_handle_at': (304, -1, 0, 0),
    'lookup_dcookie': (212, 0, 0, 0),
    'syslog': (103, 10, 0, 0),  # SYSLOG_ACTION_SIZE_BUFFER
    'personality_change': (135, 0x0040000),  # ADDR_NO_RANDOMIZE
    'clone_newuser': (56, 0x10000000 | 17, 0, 0, 0, 0),
    'clone_newnet': (56, 0x40000000 | 17, 0, 0, 0, 0),
    'clone3': (435, 0, 0),
}
for name, (nr, *args) in probes.items():
    r, err = call(nr, *args)
    print(f'{name} {r} {err}')
status = open('/proc/self/status').read()
print('seccomp-mode', status.split('Seccomp:')[1].split()[0])
print('personality-query', call(135, 0xFFFFFFFF)[0], 'personality-linux', call(135, 0)[0])
"""


async def test_denied_syscalls_fail_inside_the_sandbox(run: Runner) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the probe's syscall numbers are x86_64's")
    out = await run(PROBE)
    assert "seccomp-mode 2" in out.text, out.text
    results = dict(re.findall(r"^(\w+) -?\d+ (\w+)$", out.text, re.MULTILINE))
    assert len(results) == 32, out.text
    for name, err in results.items():
        wanted = {"ENOSYS"} if name.startswith("io_uring") or name == "clone3" else {"EPERM"}
        assert err in wanted, f"{name}: {err}\n{out.text}"
    # querying and keeping the default personality still works
    assert "personality-query 0 personality-linux 0" in out.text, out.text


async def test_ordinary_work_still_runs_under_the_filter(run: Runner) -> None:
    out = await run(
        "import subprocess, threading, multiprocessing, sys\n"
        "import numpy as np, pandas as pd, matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'a': np.arange(5), 'b': np.arange(5) ** 2})\n"
        "print('sum', int(df.b.sum()))\n"
        "plt.plot(df.a, df.b); plt.show()\n"
        "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True,"
        " text=True).stdout.strip())\n"
        "print(subprocess.run(['sh', '-c', 'echo shell $((2 + 3))'], capture_output=True,"
        " text=True).stdout.strip())\n"
        "t = threading.Thread(target=lambda: print('thread ran')); t.start(); t.join()\n"
        "with multiprocessing.Pool(2) as pool:\n"
        "    print('pool', pool.map(abs, [-1, -2, -3]))\n"
    )
    assert not out.is_error, out.text
    for expected in ("sum 30", "42", "shell 5", "thread ran", "pool [1, 2, 3]"):
        assert expected in out.text, out.text
    assert [a["kind"] for a in out.attachments] == ["image"]


def test_the_filter_lists_the_required_syscalls() -> None:
    required = {
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "mount",
        "umount2",
        "pivot_root",
        "swapon",
        "swapoff",
        "reboot",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "unshare",
        "setns",
        "acct",
        "quotactl",
        "name_to_handle_at",
        "open_by_handle_at",
        "lookup_dcookie",
        "syslog",
    }
    assert required <= set(seccomp.DENIED)
    program = seccomp.compiled_filter()
    assert program and len(program) % 8 == 0  # struct sock_filter entries
    assert seccomp.unavailable_reason() == ""
