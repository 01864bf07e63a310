"""Hostile programs that hunt for host secrets: files, the data dir, env, /proc.

Each probe prints ``LEAK`` if it got something it must not; the test asserts
the probe ran (its marker is in the output) and that nothing leaked.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from conftest import SECRET, Runner
from parley.sandbox import SandboxManager

# The slow tier (not in `make test-fast`): a sandboxed kernel per probe.
pytestmark = pytest.mark.slow


@pytest.fixture
def host_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A data dir with a database and a config holding SECRET, and SECRET in the env."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "parley.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (v text)")
        conn.execute("insert into t values (?)", (SECRET,))
    (data / "parley.toml").write_text(f'api_key = "{SECRET}"\n')
    other = data / "sandbox" / "outputs" / "other-user" / "conv"
    other.mkdir(parents=True)
    (other / "result.csv").write_text(SECRET)
    monkeypatch.setenv("PARLEY_SANDBOX_TEST_SECRET", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return {"db": str(db), "toml": str(data / "parley.toml"), "other": str(other / "result.csv")}


def _probe(body: str) -> str:
    """Wrap ``body`` (which sets ``got``) so any exception counts as blocked."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return (
        f"import os\ntry:\n{indented}\nexcept Exception as exc:\n"
        "    print('BLOCKED', type(exc).__name__)\nelse:\n"
        f"    print('LEAK' if {SECRET!r} in str(got) or 'root:' in str(got) else 'CLEAN')\n"
    )


async def _assert_contained(run: Runner, code: str) -> str:
    out = await run(code)
    assert "BLOCKED" in out.text or "CLEAN" in out.text, out.text
    assert "LEAK" not in out.text, out.text
    assert SECRET not in out.text
    return out.text


async def test_etc_shadow_is_not_there(run: Runner) -> None:
    text = await _assert_contained(run, _probe("got = open('/etc/shadow').read()"))
    assert "FileNotFoundError" in text


async def test_etc_passwd_is_synthetic(run: Runner) -> None:
    out = await run("print(open('/etc/passwd').read())")
    assert "sandbox:x:65534" in out.text
    assert "root:" not in out.text


async def test_parley_database_is_invisible(run: Runner, host_secrets: dict[str, str]) -> None:
    code = _probe(f"got = open({host_secrets['db']!r}, 'rb').read()")
    assert "FileNotFoundError" in await _assert_contained(run, code)


async def test_parley_config_is_invisible(run: Runner, host_secrets: dict[str, str]) -> None:
    code = _probe(f"got = open({host_secrets['toml']!r}).read()")
    assert "FileNotFoundError" in await _assert_contained(run, code)


async def test_other_users_outputs_are_invisible(run: Runner, host_secrets: dict[str, str]) -> None:
    code = _probe(f"got = open({host_secrets['other']!r}).read()")
    assert "FileNotFoundError" in await _assert_contained(run, code)


async def test_whole_filesystem_search_finds_no_secret(
    run: Runner, host_secrets: dict[str, str]
) -> None:
    code = """
import os
hits, seen = [], 0
for root, dirs, files in os.walk('/'):
    if root.startswith(('/proc', '/usr', '/sys')):
        dirs[:] = []
        continue
    for name in files:
        seen += 1
        try:
            with open(os.path.join(root, name), 'rb') as fh:
                if SECRET in fh.read(1 << 20):
                    hits.append(os.path.join(root, name))
        except OSError:
            pass
print('LEAK' if hits else 'CLEAN', seen, hits)
""".replace("SECRET", repr(SECRET.encode()))
    out = await run(code)
    assert "CLEAN" in out.text, out.text


async def test_server_environment_is_not_inherited(
    run: Runner, host_secrets: dict[str, str]
) -> None:
    assert os.environ["PARLEY_SANDBOX_TEST_SECRET"] == SECRET
    code = _probe("got = dict(os.environ)\nprint(sorted(got))")
    text = await _assert_contained(run, code)
    assert "CLEAN" in text
    assert "OPENAI_API_KEY" not in text and "PARLEY_SANDBOX_TEST_SECRET" not in text


async def test_environ_of_every_visible_process_is_clean(
    run: Runner, host_secrets: dict[str, str]
) -> None:
    code = _probe(
        "got = []\nfor p in os.listdir('/proc'):\n"
        "    if p.isdigit():\n"
        "        try: got.append(open(f'/proc/{p}/environ','rb').read())\n"
        "        except OSError: pass"
    )
    assert "CLEAN" in await _assert_contained(run, code)


async def test_proc_1_root_is_the_sandbox(run: Runner) -> None:
    code = _probe(
        "got = os.listdir('/proc/1/root')\n"
        "assert not os.path.exists('/proc/1/root/etc/shadow')\n"
        "assert not os.path.exists('/proc/1/root/root')"
    )
    await _assert_contained(run, code)


async def test_proc_self_root_and_cwd_stay_inside(run: Runner) -> None:
    code = _probe(
        "got = os.listdir('/proc/self/root/../../..') + os.listdir('/proc/self/cwd/../..')\n"
        "assert 'home' not in got and 'root' not in got and 'var' not in got, got"
    )
    await _assert_contained(run, code)


async def test_host_processes_are_invisible(run: Runner) -> None:
    server_pid = os.getpid()
    code = _probe(
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "got = ' '.join(open(f'/proc/{p}/cmdline','rb').read().decode(errors='replace') "
        "for p in pids)\n"
        f"assert len(pids) < 10, pids\nassert not os.path.exists('/proc/{server_pid}/cwd') "
        "or 'pytest' not in got\n"
        "assert 'pytest' not in got and 'postgres' not in got and 'redis' not in got, got"
    )
    await _assert_contained(run, code)


async def test_sys_and_host_dirs_are_not_mounted(run: Runner) -> None:
    code = _probe(
        "got = [p for p in ('/sys/class', '/home', '/root', '/var/lib', '/run/postgresql', "
        "'/work/main/src', '/etc/hostname') if os.path.exists(p)]\n"
        "assert not got, got"
    )
    await _assert_contained(run, code)


async def test_another_conversations_files_are_invisible(manager: SandboxManager) -> None:
    first, second = Runner(manager, "u1", "c1"), Runner(manager, "u2", "c2")
    await first(f"open('secret.txt', 'w').write({SECRET!r})")
    code = _probe(
        "got = []\nfor root, dirs, files in os.walk('/'):\n"
        "    if root.startswith(('/usr', '/sys')): dirs[:] = []; continue\n"
        "    got += files\n"
        "got = [f for f in got if f == 'secret.txt']\n"
        "assert not got, got"
    )
    await _assert_contained(second, code)
    kernel = manager.kernel_for("u1", "c1")
    assert kernel is not None
    other = await second(f"print(os.path.exists('/proc/{kernel.sandbox_pid}/root/mnt/data'))")
    assert "False" in other.text
