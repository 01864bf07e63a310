"""The `parley` command: users, keys, migrate and doctor against a real database
(`parley chat` and `login`: test_terminal_chat.py; doctor in depth: tests/test_doctor.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The slow tier (not in `make test-fast`): each check starts `parley` as a process,
# one loads the embedded model.
pytestmark = pytest.mark.slow

PARLEY = [sys.executable, "-m", "parley.cli"]


def run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PARLEY_LOCAL_MODEL_ENABLED": "true"}
    return subprocess.run(
        [*PARLEY, "--data-dir", str(tmp_path / "data"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_users_and_keys_from_the_command_line(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    first = run(tmp_path, "users", "create", "root@example.com", stdin="long password\n")
    assert first.returncode == 0, first.stderr
    assert "(admin)" in first.stdout  # the first account is the admin
    second = run(tmp_path, "users", "create", "bob@example.com", "--password", "another one")
    assert "(user)" in second.stdout
    weak = run(tmp_path, "users", "create", "eve@example.com", "--password", "short")
    assert weak.returncode == 2 and "at least" in weak.stderr
    listed = run(tmp_path, "users", "list").stdout
    assert "root@example.com" in listed and "bob@example.com" in listed

    key = run(tmp_path, "keys", "create", "--user", "bob@example.com", "--name", "ci")
    assert key.returncode == 0 and key.stdout.strip().startswith("pk-")
    assert "shown only once" in key.stderr
    keys = run(tmp_path, "keys", "list", "--user", "bob@example.com").stdout
    assert "ci" in keys and "active" in keys
    key_id = keys.split()[0]
    assert run(tmp_path, "keys", "revoke", "--user", "bob@example.com", key_id).returncode == 0
    assert "revoked" in run(tmp_path, "keys", "list", "--user", "bob@example.com").stdout

    disabled = run(tmp_path, "users", "disable", "bob@example.com")
    assert "status=disabled" in disabled.stdout
    missing = run(tmp_path, "users", "disable", "nobody@example.com")
    assert missing.returncode == 1 and "No user" in missing.stderr


def test_doctor_reports_and_explains(tmp_path: Path) -> None:
    result = run(tmp_path, "doctor")
    assert "database reachable and migrated" in result.stdout
    assert "embedded model file" in result.stdout
    assert "default model: local/smollm2-135m-instruct" in result.stdout
    broken = run(tmp_path, "--database-url", "postgresql+asyncpg://nobody@127.0.0.1:1/x", "doctor")
    assert broken.returncode == 1
    assert "fix: check PARLEY_DATABASE_URL" in broken.stdout
