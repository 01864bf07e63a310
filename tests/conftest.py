"""Shared database fixtures: every database test runs on SQLite and PostgreSQL.

Fixtures:

- ``backend``: ``"sqlite"`` or ``"postgres"`` (test ids read ``[sqlite]`` / ``[postgres]``).
- ``database_url``: a migrated, empty database for this test. SQLite: a copy of
  a template file migrated once per session, in ``tmp_path``. PostgreSQL: one
  database per session (uniquely named), migrated once and truncated before
  each test.
- ``empty_database_url``: a brand-new database with no tables (migration tests).
- ``db``: a ``Database`` on ``database_url`` with ``migrate()`` already called;
  disposed after the test.

``PARLEY_TEST_BACKENDS`` (default ``sqlite,postgres``) restricts the backends;
``PARLEY_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
names the server and the maintenance database used to create test databases.
When PostgreSQL is selected but unreachable its tests fail (never skip).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

# As `parley serve` does: one BLAS thread keeps query embeddings fast on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Apps made by tests would each start a spare sandboxed kernel; the sandbox tests opt in.
os.environ.setdefault("PARLEY_SANDBOX_SPARE_KERNELS", "0")

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from parley.storage import Database

T = TypeVar("T")

KNOWN_BACKENDS = ("sqlite", "postgres")
BACKENDS = [
    name.strip()
    for name in os.environ.get("PARLEY_TEST_BACKENDS", "sqlite,postgres").split(",")
    if name.strip()
]
_unknown = set(BACKENDS) - set(KNOWN_BACKENDS)
if _unknown or not BACKENDS:
    raise pytest.UsageError(
        f"PARLEY_TEST_BACKENDS={os.environ.get('PARLEY_TEST_BACKENDS')!r}: "
        f"use a comma-separated subset of {', '.join(KNOWN_BACKENDS)}"
    )
PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, whatever loop is around."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class PostgresServer:
    """Creates uniquely named databases for this test session and drops them."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"parley_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self._main_url: str | None = None

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def check(self) -> None:
        try:
            run_sync(self._admin("SELECT 1"))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            pytest.fail(
                f"PostgreSQL is unreachable at {self.admin_url} ({exc!r}). Start it, point "
                "PARLEY_TEST_PG_URL at a server, or set PARLEY_TEST_BACKENDS=sqlite.",
                pytrace=False,
            )

    def url_for(self, name: str) -> str:
        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    def create(self, suffix: str) -> str:
        name = f"{self.prefix}_{suffix}"
        run_sync(self._admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if name in self.created:
            run_sync(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            run_sync(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()

    def migrated_url(self) -> str:
        """The session's shared database, migrated on first use."""
        if self._main_url is None:
            url = self.create("main")
            run_sync(_migrate(url))
            self._main_url = url
        return self._main_url

    def truncate(self, url: str) -> None:
        async def work() -> None:
            dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                await conn.execute("SET lock_timeout = '10s'")  # a leaked session fails loudly
                tables = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
                names = ", ".join(f'"{row["tablename"]}"' for row in tables)
                if names:
                    await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            finally:
                await conn.close()

        run_sync(work())


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()
    finally:
        await db.dispose()


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer(PG_ADMIN_URL)
    server.check()
    try:
        yield server
    finally:
        server.drop_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_sync(_migrate(_sqlite_url(path)))
    return path


@pytest.fixture(params=[pytest.param(name, id=name) for name in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "parley.db"
        shutil.copyfile(template, target)
        return _sqlite_url(target)
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.migrated_url()
    server.truncate(url)
    return url


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    if backend == "sqlite":
        yield _sqlite_url(tmp_path / "empty" / "parley.db")
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create(f"empty_{uuid.uuid4().hex[:8]}")
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: sync Playwright keeps an event loop running in the
    main thread until its session fixture ends, which async tests cannot share."""
    items.sort(key=lambda item: "e2e" in item.path.parts)
