"""Shared fixtures: every database test runs on SQLite and PostgreSQL; every app
test builds its app with one factory; no test reaches a real model API.

Database fixtures:

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

App fixtures (a package's ``conftest.py`` or a test module redefines the ones it
needs; see ``tests/memory/conftest.py`` for a package with its own models and
feature):

- ``scripted``: the ``ScriptedModel`` answering as ``scripted/scripted``.
- ``scripted_models``: the ``scripted`` provider's models by name (``{"scripted": scripted}``).
- ``extra_providers``: providers added to the registry (the ``scripted`` provider).
- ``features``: feature factories the app is built with (``None``: every default one).
- ``overrides``: settings changes for this test (``{}``).
- ``make_settings(**changes)``: settings on ``database_url`` in ``tmp_path``, the
  embedded model off, quick flushes, no model titles and no retries, plus ``changes``.
- ``settings``: ``make_settings(**overrides)``.
- ``make_app(settings=None, **create_app_kwargs)``: an async context manager that
  builds an app (from the fixtures above unless given) and runs its lifespan
  (``async with make_app() as other:`` is a second worker on the same database).
- ``app``, ``client`` (a CSRF-aware httpx client over ASGI, ``apihelpers.Client``)
  and ``user`` (the first account, signed up on ``client``: an admin).

Autouse: any connection to a host other than loopback fails at once
(``block_external_model_requests``): local scripted upstreams on 127.0.0.1 work,
real model APIs never get a request. Password hashes use argon2id's lowest cost.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

# As `parley serve` does: one BLAS thread keeps query embeddings fast on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Apps made by tests would each start a spare sandboxed kernel; the sandbox tests opt in.
os.environ.setdefault("PARLEY_SANDBOX_SPARE_KERNELS", "0")

import asyncpg
import httpx2
import pytest
from sqlalchemy.engine import make_url

from apihelpers import Client, MakeApp, MakeSettings, make_client, signup
from parley.config import Settings, load_settings
from parley.net.safe_fetch import GuardedTransport
from parley.providers.base import Provider
from parley.providers.scripted import ScriptedModel, ScriptedProvider
from parley.providers.testing import block_external_model_requests
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


# ------------------------------------------------------------------ no real model requests


@pytest.fixture(autouse=True)
def _no_external_hosts() -> Iterator[None]:
    """Fail any connection from this process to a non-loopback host (real model
    APIs above all); servers the tests start on 127.0.0.1 are reachable.

    The guarded transport for untrusted URLs is left to its own address checks
    (the SSRF tests need its refusals, and resolve made-up names to 127.0.0.1);
    a connection it would make to a real host still meets the socket-level guard.
    """
    unguarded = httpx2.AsyncHTTPTransport.handle_async_request
    assert "handle_async_request" not in vars(GuardedTransport)
    with block_external_model_requests():
        GuardedTransport.handle_async_request = unguarded  # type: ignore[method-assign]
        try:
            yield
        finally:
            del GuardedTransport.handle_async_request


# ------------------------------------------------------------------ cheap passwords


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its lowest cost: the product's parameters cost ~0.3 s of CPU per
    sign-up or sign-in, which hundreds of tests would pay for nothing they check
    (the hash format and verification are the same; servers started as processes,
    as in the browser tests, keep the real cost)."""
    from argon2 import PasswordHasher

    from parley.auth import passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        )
        yield


# ------------------------------------------------------------------ the app


@pytest.fixture
def scripted() -> ScriptedModel:
    """The model answering as ``scripted/scripted``."""
    return ScriptedModel(default="Hello from the scripted model.")


@pytest.fixture
def scripted_models(scripted: ScriptedModel) -> dict[str, ScriptedModel]:
    """The ``scripted`` provider's models by name."""
    return {"scripted": scripted}


@pytest.fixture
def extra_providers(scripted_models: dict[str, ScriptedModel]) -> list[Provider]:
    """Providers apps get besides the configured ones (the model boundary)."""
    return [ScriptedProvider("scripted", scripted_models)]


@pytest.fixture
def features() -> list[Any] | None:
    """Feature factories apps are built with; ``None``: every default feature."""
    return None


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings changes for this test (a test module redefines this fixture)."""
    return {}


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> MakeSettings:
    """Settings for an app in ``tmp_path`` on ``database_url``; keywords change any."""

    def make(**changes: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "local_model_enabled": False,
            "flush_interval_s": 0.05,
            "providers": [],
            # A model-made title is one more model call after each new chat's first
            # answer, which would take replies scripted for the tests' turns; the
            # title tests (tests/api/test_titles.py) turn it on.
            "title_model": "none",
            # A retry is one more model call after a scripted failure, which would take
            # the next scripted reply (or the default answer) and hide the failure the
            # test is about; the failover tests (tests/api/test_failover.py) retry.
            "retry_attempts": 1,
        }
        values.update(changes)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings, overrides: dict[str, Any]) -> Settings:
    return make_settings(**overrides)


@pytest.fixture
def make_app(
    settings: Settings, extra_providers: list[Provider], features: list[Any] | None
) -> MakeApp:
    """``async with make_app(settings=None, **create_app_kwargs) as app``: a started
    app; ``settings``, ``extra_providers`` and ``features`` default to the fixtures."""
    from parley.api.app import create_app  # here: database-only tests never load the web app

    default = settings

    @asynccontextmanager
    async def make(settings: Settings | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        kwargs.setdefault("extra_providers", extra_providers)
        kwargs.setdefault("features", features)
        application = create_app(settings or default, **kwargs)
        async with application.router.lifespan_context(application):
            yield application

    return make


@pytest.fixture
async def app(make_app: MakeApp) -> AsyncIterator[Any]:
    async with make_app() as application:
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Client]:
    async with make_client(app) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    """The first account (so an admin), signed in on ``client``."""
    return await signup(client)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: sync Playwright keeps an event loop running in the
    main thread until its session fixture ends, which async tests cannot share.
    Every test under tests/e2e is marked ``e2e`` (so ``-m "not e2e"`` leaves it out)
    whether or not its module says so."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: "e2e" in item.path.parts)
