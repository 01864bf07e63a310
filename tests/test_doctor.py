"""`parley doctor` checks what the configuration really does: providers from the
environment, the config file and the database are each asked for their models, the
default model is the one the server would use, a sandboxed kernel runs 1+1, a broken
part is reported with its fix and a non-zero exit, and no log line reaches the output."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from parley.config import load_settings
from parley.instance import provider_admin
from parley.instance import values as instance
from parley.instance.providers import RegistrySync
from parley.providers.registry import ModelRegistry
from parley.providers.testing import ScriptedUpstream
from parley.storage.db import Database

# The slow tier: each check runs `parley doctor` as a process (a few seconds: it starts a
# sandboxed kernel).
pytestmark = pytest.mark.slow

PARLEY = [sys.executable, "-m", "parley.cli"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def doctor(data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(data.parent),
        "PYTHONPATH": SRC,
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        "PARLEY_SANDBOX_SPARE_KERNELS": "0",
    }
    return subprocess.run(
        [*PARLEY, "--data-dir", str(data), "doctor"],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=120,
        check=False,
    )


def _no_log_lines(result: subprocess.CompletedProcess[str]) -> None:
    for line in (result.stdout + result.stderr).splitlines():
        assert not line.startswith(("WARNING", "INFO", "ERROR", "DEBUG", "Traceback")), line
        assert ":parley." not in line and "WARNING:" not in line, line
    assert result.stderr == "", result.stderr


async def _add_database_provider(data: Path, base_url: str, default: str) -> None:
    settings = load_settings(data_dir=data, local_model_enabled=False)
    data.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await db.migrate()
    registry = ModelRegistry(settings)
    try:
        async with db.session() as session:
            sync = RegistrySync(registry, settings)
            await provider_admin.add_provider(
                session, sync, name="webadded", kind="openai", base_url=base_url, api_key="k-db"
            )
            await instance.set_value(session, "default_model", default)
            await session.commit()
    finally:
        await registry.aclose()
        await db.dispose()


def test_every_provider_is_tested_and_the_real_default_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with (
        ScriptedUpstream(models=["env-model"]) as env_up,
        ScriptedUpstream(models=["file-model"]) as file_up,
        ScriptedUpstream(models=["db-model", "db-other"]) as db_up,
    ):
        asyncio.run(_add_database_provider(data, db_up.base_url, "webadded/db-other"))
        (data / "parley.toml").write_text(
            f'[[providers]]\nname = "filed"\nkind = "openai"\nbase_url = "{file_up.base_url}"\n'
            'api_key = "k-file"\n'
        )
        result = doctor(data, OPENAI_BASE_URL=env_up.base_url, OPENAI_API_KEY="k-env")
    out = result.stdout
    assert "ok  provider openai (environment" in out and "1 model(s)" in out, out
    assert "ok  provider filed (config file" in out, out
    assert "ok  provider webadded (added in the web app" in out and "2 model(s)" in out, out
    # the admin's setting in the database wins, as in the server
    assert "default model: webadded/db-other (set in Admin > Settings)" in out, out
    assert "sandboxed kernel started and ran 1+1 = 2" in out, out
    assert result.returncode == 0, out
    assert out.rstrip().splitlines()[-1].startswith("All good.")
    _no_log_lines(result)


def test_a_broken_provider_and_a_missing_default_are_problems(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ScriptedUpstream(models=["db-model"]) as db_up:
        asyncio.run(_add_database_provider(data, db_up.base_url, "webadded/gone"))
        # the stored provider's endpoint is down by the time doctor runs
    result = doctor(data)
    out = result.stdout
    assert result.returncode == 1, out
    assert "!!  provider webadded (added in the web app" in out, out
    assert "fix: edit it in Admin > Providers" in out
    assert "!!  default model: none" in out, out
    assert "problem(s) found" in out
    _no_log_lines(result)


def test_a_sandbox_that_cannot_start_is_reported(tmp_path: Path) -> None:
    missing = doctor(tmp_path / "data", PARLEY_SANDBOX_BWRAP=str(tmp_path / "no-bwrap"))
    assert missing.returncode == 1
    assert "!!  bubblewrap:" in missing.stdout and "not found" in missing.stdout
    assert "fix: apt-get install bubblewrap" in missing.stdout
    _no_log_lines(missing)

    # bubblewrap runs but the kernel's Python is missing inside the sandbox
    fake = tmp_path / "venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.symlink_to("/bin/false")
    broken = doctor(tmp_path / "data", PARLEY_SANDBOX_PYTHON=str(fake))
    assert broken.returncode == 1, broken.stdout
    assert "!!  the code sandbox cannot run code:" in broken.stdout
    assert "fix:" in broken.stdout.split("the code sandbox cannot run code:")[1]
    assert "All good." not in broken.stdout
    _no_log_lines(broken)


def test_database_down_is_one_problem_with_its_fix(tmp_path: Path) -> None:
    result = doctor(
        tmp_path / "data", PARLEY_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/x"
    )
    assert result.returncode == 1
    assert "fix: check PARLEY_DATABASE_URL" in result.stdout
    _no_log_lines(result)


class _Searx(ThreadingHTTPServer):
    """A SearxNG-shaped ``/search?format=json`` with one result."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                body = json.dumps(
                    {"results": [{"url": "https://example.org/a", "title": "A", "content": "a"}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


async def _save_search(data: Path, url: str) -> None:
    from parley.net import SafeFetcher
    from parley.web_tools.search_config import WebSearch

    settings = load_settings(data_dir=data, local_model_enabled=False)
    data.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await db.migrate()
    search = WebSearch(db, settings, SafeFetcher())
    try:
        await search.save("searxng", url, None, "admin")
    finally:
        await search.aclose()
        await db.dispose()


def test_web_search_saved_in_the_admin_page_is_checked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    searx = _Searx()
    try:
        asyncio.run(_save_search(data, searx.base))
        result = doctor(data)
    finally:
        searx.shutdown()
        searx.server_close()
    out = result.stdout
    assert "ok  web search (searxng, saved in Admin > Web search) answers (1 result(s)" in out, out
    _no_log_lines(result)
    # The saved service is gone: a problem that says where to fix it.
    result = doctor(data)
    assert "!!  web search (searxng, saved in Admin > Web search) failed" in result.stdout
    assert "fix it in Admin > Web search" in result.stdout
    assert result.returncode == 1
    _no_log_lines(result)


def test_web_search_off_says_where_to_turn_it_on(tmp_path: Path) -> None:
    result = doctor(tmp_path / "data")
    assert "web search off (from the environment)" in result.stdout, result.stdout
    assert "turn it on in Admin > Web search" in result.stdout
