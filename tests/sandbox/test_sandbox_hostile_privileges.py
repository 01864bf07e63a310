"""Hostile programs that try to gain privileges or reach out of the sandbox.

Signals to the server, ptrace, setuid binaries, mount, chroot, new
namespaces, raw syscalls through ctypes, writes outside the working directory.
"""

from __future__ import annotations

import os

import pytest

from conftest import Runner

# The slow tier (not in `make test-fast`): a sandboxed kernel per probe.
pytestmark = pytest.mark.slow

CTYPES = (
    "import ctypes, ctypes.util, os\n"
    "libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "def sys_(nr, *args):\n"
    "    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])\n"
    "    return r, os.strerror(ctypes.get_errno())\n"
)


async def test_kill_the_server(run: Runner) -> None:
    server = os.getpid()
    out = await run(
        f"import os, signal\ntry:\n    os.kill({server}, signal.SIGKILL)\n"
        "except Exception as exc:\n    print('BLOCKED', type(exc).__name__)\n"
        "else:\n    print('SENT')"
    )
    assert os.getpid() == server  # we are still here
    # pid numbers are per namespace: the server's pid does not exist, or is a sandbox process
    assert "BLOCKED ProcessLookupError" in out.text or "SENT" not in out.text or server < 10


async def test_kill_every_process_it_can(run: Runner) -> None:
    out = await run("import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('still alive')")
    assert os.getpid() > 0
    follow = await run("print('after', 1 + 1)")
    assert "after 2" in follow.text, out.text + follow.text


async def test_ptrace_reaches_nothing_privileged(run: Runner) -> None:
    """ptrace is denied, and no sandbox process has a capability or another uid."""
    server = os.getpid()
    out = await run(
        CTYPES + f"r, err = sys_(101, 16, {server}, 0, 0)  # ptrace(PTRACE_ATTACH, server)\n"
        "print('server', r, err)\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit():\n"
        "        s = open(f'/proc/{p}/status').read()\n"
        "        ok = ('CapEff:\\t0000000000000000' in s and 'Uid:\\t65534\\t65534' in s\n"
        "              and 'NoNewPrivs:\\t1' in s)\n"
        "        print('pid', p, 'unprivileged' if ok else 'PRIVILEGED')"
    )
    # the seccomp filter denies ptrace outright (before it: "No such process")
    assert "server -1 Operation not permitted" in out.text, out.text
    assert "pid 1 unprivileged" in out.text, out.text
    assert "PRIVILEGED" not in out.text


async def test_process_vm_readv_of_pid_1(run: Runner) -> None:
    out = await run(
        CTYPES + "buf = ctypes.create_string_buffer(16)\n"
        "class iov(ctypes.Structure): _fields_ = [('b', ctypes.c_void_p), ('n', ctypes.c_size_t)]\n"
        "l = iov(ctypes.addressof(buf), 16); r = iov(0x400000, 16)\n"
        "n = libc.process_vm_readv(1, ctypes.byref(l), 1, ctypes.byref(r), 1, 0)\n"
        "print('readv', n)"
    )
    assert "readv -1" in out.text, out.text


async def test_no_capabilities_and_no_new_privileges(run: Runner) -> None:
    out = await run("print(open('/proc/self/status').read())")
    assert "CapEff:\t0000000000000000" in out.text
    assert "CapBnd:\t0000000000000000" in out.text
    assert "NoNewPrivs:\t1" in out.text
    assert "Uid:\t65534" in out.text


async def test_setuid_binaries_do_not_elevate(run: Runner) -> None:
    out = await run(
        "import subprocess, os\n"
        "for cmd in (['su', '-c', 'id'], ['sudo', 'id'], ['mount', '-t', 'tmpfs', 'x', '/tmp']):\n"
        "    try:\n"
        "        p = subprocess.run(cmd, capture_output=True, text=True, timeout=5)\n"
        "        print(cmd[0], p.returncode, p.stdout.strip(), p.stderr.strip()[:80])\n"
        "    except Exception as exc:\n"
        "        print(cmd[0], 'BLOCKED', type(exc).__name__)\n"
        "print('uid', os.getuid(), os.geteuid())"
    )
    assert "uid=0" not in out.text
    assert "uid 65534 65534" in out.text


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("mount", "os.fsencode('none'), os.fsencode('/tmp'), os.fsencode('tmpfs'), 0, 0"),
        ("umount2", "os.fsencode('/usr'), 2"),
        ("unshare", "0x10000000"),  # CLONE_NEWUSER
        ("setuid", "0"),
        ("chroot", "os.fsencode('/tmp')"),
        ("sethostname", "os.fsencode('pwned'), 5"),
        ("reboot", "0xfee1dead, 672274793, 0x4321fedc, 0"),
    ],
)
async def test_privileged_calls_fail(run: Runner, name: str, call: str) -> None:
    out = await run(
        "import ctypes, ctypes.util, os\n"
        "libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)\n"
        f"r = libc.{name}({call})\n"
        f"print('{name}', r, os.strerror(ctypes.get_errno()))"
    )
    assert f"{name} -1" in out.text, out.text


async def test_raw_syscalls_bpf_keyctl_perf(run: Runner) -> None:
    out = await run(
        CTYPES + "for nr, args in ((321, (0, 0, 0)), (250, (0, 0)), (298, (0, 0, 0, 0, 0)),"
        " (246, (0, 0, 0, 0))):\n"  # bpf, keyctl, perf_event_open, kexec_load
        "    r, err = sys_(nr, *args)\n    print('nr', nr, r)"
    )
    for nr in (321, 298, 246):
        assert f"nr {nr} -1" in out.text, out.text


async def test_chroot_escape_trick(run: Runner) -> None:
    out = await run(
        "import os\ntry:\n    os.mkdir('/tmp/jail'); os.chroot('/tmp/jail')\n"
        "    for _ in range(50): os.chdir('..')\n    os.chroot('.')\n    print('ESCAPED')\n"
        "except Exception as exc:\n    print('BLOCKED', type(exc).__name__)"
    )
    assert "BLOCKED PermissionError" in out.text


@pytest.mark.parametrize(
    "target",
    [
        "/x",
        "/etc/passwd",
        "/usr/lib/evil.so",
        "/bin/evil",
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
        "SITE/evil.pth",
    ],
)
async def test_writes_outside_the_working_directory(run: Runner, target: str) -> None:
    out = await run(
        "import os, site\n"
        f"t = {target!r}.replace('SITE', site.getsitepackages()[0])\n"
        "try:\n    open(t, 'w').write('x')\n    print('WROTE', t)\n"
        "except Exception as exc:\n    print('BLOCKED', type(exc).__name__)"
    )
    assert "BLOCKED" in out.text and "WROTE" not in out.text, out.text


async def test_device_nodes_are_minimal(run: Runner) -> None:
    out = await run(
        "import os\nprint(sorted(os.listdir('/dev')))\n"
        "try:\n    os.mknod('/tmp/sda', 0o600 | 0o060000, os.makedev(8, 0))\n    print('MADE')\n"
        "except Exception as exc:\n    print('BLOCKED', type(exc).__name__)"
    )
    assert "BLOCKED" in out.text and "MADE" not in out.text
    assert "'sda'" not in out.text and "'mem'" not in out.text and "'kmsg'" not in out.text


async def test_rlimits_cannot_be_raised(run: Runner) -> None:
    out = await run(
        "import resource as R\nfor r in (R.RLIMIT_AS, R.RLIMIT_NPROC, R.RLIMIT_CPU):\n"
        "    try:\n        R.setrlimit(r, (R.RLIM_INFINITY, R.RLIM_INFINITY))\n"
        "        print('RAISED', r)\n    except Exception as exc:\n"
        "        print('BLOCKED', type(exc).__name__)"
    )
    assert out.text.count("BLOCKED") == 3, out.text
