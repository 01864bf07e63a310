"""Database handle and migrations on both backends."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from parley.schema import Base
from parley.storage import Database
from parley.storage.db import MIGRATIONS_DIR, alembic_config, include_name, migration_heads

from .conftest import recorded_sql

ROOT = Path(__file__).resolve().parents[2]
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def test_revisions_form_one_chain_from_0001() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD]
    assert script.get_base() == "0001"
    # the start-up fast path reads the same head without Alembic
    assert migration_heads() == {HEAD}


async def test_migrate_twice_is_idempotent(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert await db.current_revision() is None
        await db.migrate()
        async with db.engine.connect() as conn:
            first = await conn.run_sync(_tables)
        await db.migrate()
        async with db.engine.connect() as conn:
            second = await conn.run_sync(_tables)
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert {t.name for t in Base.metadata.sorted_tables} <= first
        assert first == second
        assert versions == [(HEAD,)]
        with recorded_sql(db) as statements:
            await db.migrate()
        # at head: one look at the version row, no migration lock, no DDL
        assert len(statements) <= 3, statements
        assert not any("BEGIN IMMEDIATE" in q or "advisory" in q for q in statements)
    finally:
        await db.dispose()


async def test_concurrent_migrations_apply_once(empty_database_url: str) -> None:
    """Several workers starting together: the lock serializes them, none fails."""
    databases = [Database(empty_database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(d.migrate() for d in databases))
        assert {await d.current_revision() for d in databases} == {HEAD}
    finally:
        for d in databases:
            await d.dispose()


async def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    db = Database(empty_database_url)

    def downgrade(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), "base")

    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            await conn.run_sync(downgrade)
            await conn.commit()
            left = await conn.run_sync(_tables)
        assert left <= {"alembic_version"}
        await db.migrate()
        assert await db.current_revision() == HEAD
    finally:
        await db.dispose()


async def test_tables_py_matches_migrated_schema(db: Database) -> None:
    """Autogenerate finds nothing to do: migrations and tables.py agree."""

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"include_name": include_name, "compare_type": True}
        )
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_search_objects_exist(db: Database) -> None:
    async with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            names = set(
                (await conn.execute(text("SELECT name FROM sqlite_master"))).scalars().all()
            )
            assert {"messages_fts", "conversations_fts", "messages_fts_au"} <= names
        else:
            indexes = set(
                (await conn.execute(text("SELECT indexname FROM pg_indexes"))).scalars().all()
            )
            assert {"ix_search_messages", "ix_search_conversations"} <= indexes


async def test_sqlite_pragmas_and_data_dir(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/nested/dir/parley.db")
    try:
        assert db.dialect == "sqlite"
        assert db.url.drivername == "sqlite+aiosqlite"
        assert (tmp_path / "nested" / "dir").is_dir()
        await db.migrate()
        async with db.engine.connect() as conn:

            async def pragma(name: str) -> Any:
                return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()

            assert await pragma("journal_mode") == "wal"
            assert await pragma("synchronous") == 1  # NORMAL
            assert await pragma("foreign_keys") == 1
            assert await pragma("busy_timeout") == 10_000
    finally:
        await db.dispose()


def test_postgres_url_maps_to_asyncpg() -> None:
    db = Database("postgresql://postgres@127.0.0.1:5432/nowhere")
    assert db.url.drivername == "postgresql+asyncpg"
    assert db.dialect == "postgresql"


def test_migrations_ship_in_the_wheel() -> None:
    """Every migration file matches the package-data globs in pyproject.toml."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["parley"]
    package_root = ROOT / "src" / "parley"
    files = [p for p in MIGRATIONS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert any(p.name == "env.py" for p in files)
    for path in files:
        relative = PurePosixPath(path.relative_to(package_root).as_posix())
        if path.suffix == ".mako":
            continue  # the template is only for writing new revisions
        shipped = any(
            relative.match(pattern) and len(relative.parts) == len(PurePosixPath(pattern).parts)
            for pattern in package_data
        )
        assert shipped, relative


def test_alembic_command_line_path(empty_database_url: str) -> None:
    """`alembic upgrade head` with a URL (no connection handed over) works too."""
    cfg = alembic_config()
    cfg.set_main_option("sqlalchemy.url", empty_database_url)
    command.upgrade(cfg, "head")
    command.upgrade(cfg, "head")

    async def revision() -> str | None:
        db = Database(empty_database_url)
        try:
            return await db.current_revision()
        finally:
            await db.dispose()

    assert asyncio.run(revision()) == HEAD
