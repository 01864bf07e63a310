"""The database handle: one async engine, a session factory, migrations.

SQLite is the default (one file in the data dir) and PostgreSQL the option for
several workers; the same code runs on both. SQLite connections get WAL (readers
never block the writer), ``synchronous=NORMAL`` (durable across application
crashes, cheap fsyncs), foreign keys (cascading deletes), a busy timeout (a
second writer waits instead of failing at once) and ``secure_delete`` (pages
freed by a delete are zeroed, so deleted text does not linger in the file).
``scrub`` finishes a deletion's work inside the files: see its docstring.

``migrate()`` runs Alembic programmatically at every start. It holds a lock
while it does so, so several processes starting together apply each revision
exactly once: a PostgreSQL advisory lock held for the migration transaction, or
SQLite's own write lock taken up front with ``BEGIN IMMEDIATE``. A database
already at the head revision is recognised with one query, without importing
Alembic (a quarter of a second of start-up).
"""

from __future__ import annotations

import re
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"  # parley/migrations, by path
SQLITE_POOL_SIZE = 40

# Arbitrary constant shared by every Parley process: "parley" in ASCII.
_PG_MIGRATION_LOCK = 0x706172_6C6579

# Objects the migrations create for full-text search that tables.py does not
# describe (SQLite FTS5 tables and their shadow tables, PostgreSQL tsvector
# columns and GIN indexes). Autogenerate must not try to drop them.
SEARCH_OBJECT_PREFIXES = (
    "messages_fts",
    "conversations_fts",
    "search_tsv",
    "ix_search_",
    "knowledge_fts",  # files and knowledge: FTS5 (SQLite)
    "knowledge_vectors",  # ... and the pgvector table made at start-up
)


def is_search_object(name: str | None) -> bool:
    """True for the full-text search objects that live outside tables.py."""
    return name is not None and name.startswith(SEARCH_OBJECT_PREFIXES)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: skip the search objects (see above)."""
    return not is_search_object(name)


def _normalize_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


class Database:
    """An async engine plus session factory for one database URL.

    ``url`` may name the sync drivers (``sqlite:///``, ``postgresql://``); they
    are mapped to aiosqlite and asyncpg.
    """

    def __init__(self, url: str | URL, *, busy_timeout_ms: int = 10_000, echo: bool = False):
        self.url = _normalize_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # Each aiosqlite connection is a thread, and starting one blocks the event
            # loop until the OS schedules it (2-4 ms each on a busy machine, so a burst
            # that opens twenty stalls every stream for ~60 ms). The pool keeps every
            # connection it opens (no overflow to close and reopen), and ``warm()``
            # opens them while the server is idle.
            kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=0)
            # Every use goes through a Session or Connection, which already ends its
            # transaction on close; the pool's own "reset" rollback would be a second
            # thread round trip per request for nothing.
            kwargs["pool_reset_on_return"] = None
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self._direct: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    def session(self) -> AsyncSession:
        """A new session; the caller owns the unit of work (``commit``/``close``).

        Use as ``async with db.session() as s: ...; await s.commit()``.
        """
        return self.sessionmaker()

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision; a no-op when up to date.

        Safe to call at every start and from several processes at once.
        """
        async with self.engine.connect() as conn:
            if await conn.run_sync(_at_head):
                return
            await conn.run_sync(self._upgrade)
            await conn.commit()

    def _upgrade(self, conn: Connection) -> None:
        from alembic import command

        lock_for_migration(conn)
        # The connection is already in a transaction, so Alembic joins it and
        # leaves the commit to migrate(): lock, DDL and version row commit together.
        command.upgrade(alembic_config(conn), "head")

    async def at_head(self) -> bool:
        """The schema is at the newest revision (a readiness check: one query)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(_at_head)

    async def current_revision(self) -> str | None:
        """The revision the database is at, or None before the first migration."""

        def read(conn: Connection) -> str | None:
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(conn).get_current_revision()

        async with self.engine.connect() as conn:
            return await conn.run_sync(read)

    async def warm(self, connections: int = SQLITE_POOL_SIZE) -> None:
        """Open pooled SQLite connections now rather than in the middle of a burst
        (no-op on PostgreSQL, whose connections cost no thread)."""
        if self.dialect != "sqlite":
            return
        opened = []
        try:
            for _ in range(connections):
                opened.append(await self.engine.connect())
        finally:
            for conn in opened:
                await conn.close()

    @property
    def direct(self) -> AsyncEngine:
        """PostgreSQL: a second, small pool without ``pool_pre_ping``, for single
        statements in autocommit on a request's path (the budgets' reserve and settle:
        the ping would be a round trip, half their cost). A caller retries once on a
        dropped connection (``DBAPIError.connection_invalidated``); the pool has then
        discarded it. Ten connections at most: each use is one short statement, so a
        burst queues here rather than taking the server's connection slots.
        SQLite: the engine itself (no ping there)."""
        if self.dialect == "sqlite":
            return self.engine
        if self._direct is None:
            self._direct = create_async_engine(
                self.url, pool_size=5, max_overflow=5, pool_recycle=3600
            )
        return self._direct

    async def dispose(self) -> None:
        """Close every pooled connection (call at shutdown)."""
        await self.engine.dispose()
        if self._direct is not None:
            await self._direct.dispose()
            self._direct = None


def lock_for_migration(conn: Connection) -> None:
    """Open the migration transaction holding the cross-process migration lock.

    SQLite: take the write lock before the version table is read, so a second
    process waits (busy_timeout) and then sees the upgraded schema. PostgreSQL:
    an advisory lock released at commit.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


_REVISION = re.compile(r"^revision\b[^=]*=\s*[\"']([^\"']+)", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\b[^=]*=\s*(\([^)]*\)|[^\n]+)", re.MULTILINE)


@cache
def migration_heads() -> frozenset[str]:
    """The head revisions, read from the packaged migration files' headers.

    The same answer as Alembic's script directory (a test holds them equal),
    without importing Alembic, Mako and every SQL dialect at each start.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            continue
        revisions.add(revision.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions - parents)


def _at_head(conn: Connection) -> bool:
    """Whether the schema is already at the head revision (one cheap query)."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        conn.rollback()
        return False
    current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    conn.rollback()
    return current == migration_heads()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations; no alembic.ini needed."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _ensure_wal(cursor, busy_timeout_ms / 1000)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA secure_delete = ON")
        finally:
            cursor.close()

    return on_connect


def _ensure_wal(cursor: Any, timeout_s: float) -> None:
    """Switch the file to WAL (a persistent setting) unless it already is.

    The switch needs an exclusive lock and SQLite may refuse it at once, without
    waiting, while another connection opens the same new file; so retry briefly.
    This only happens the first time a database file is opened.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the driver's OperationalError, wrapped by the adapter
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)  # only while a brand-new file is being set up
        delay = min(delay * 2, 0.1)


async def scrub(session: AsyncSession) -> None:
    """After a committed deletion, make SQLite drop the deleted text from its files.

    ``secure_delete`` zeroes freed pages, but two copies remain: the write-ahead
    log still holds the pages as they were, and full-text indexes keep deleted
    rows' tokens in their segments until those are merged. So every FTS5 index
    is optimized (rewritten without deleted entries), then the log is
    checkpointed into the main file and truncated. That rewrite costs time in
    proportion to the indexes, so it runs for an account's deletion (rare), not
    a conversation's. Best effort: a reader holding an old snapshot keeps the
    log until it finishes. PostgreSQL keeps dead rows until VACUUM (autovacuum)
    reclaims them; nothing is done here for it.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    tables = await session.scalars(
        # "fts5(" leaves out fts5vocab tables, which are read-only views of an index.
        text("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5(%'")
    )
    for name in list(tables):
        if re.fullmatch(r"[a-z_]+", name):  # our own table names, never input
            await session.execute(text(f"INSERT INTO {name}({name}) VALUES('optimize')"))
    await session.commit()
    await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    await session.commit()
