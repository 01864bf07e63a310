"""Alembic environment for Parley.

At run time ``Database.migrate()`` hands over an open connection (already in a
transaction and holding the migration lock) through ``config.attributes``. From
the ``alembic`` command line the URL comes from ``sqlalchemy.url`` or
``PARLEY_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from parley.schema import Base
from parley.storage.db import Database, include_name, lock_for_migration

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_with_connection(connection: Connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (copy-and-move).
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("PARLEY_DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or PARLEY_DATABASE_URL to run migrations")
    return url


def _locked_run(connection: Connection) -> None:
    lock_for_migration(connection)
    run_with_connection(connection)


async def _run_standalone() -> None:
    db = Database(_url())
    try:
        async with db.engine.connect() as connection:
            await connection.run_sync(_locked_run)
            await connection.commit()
    finally:
        await db.dispose()


if context.is_offline_mode():
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
    else:
        asyncio.run(_run_standalone())  # command-line use
