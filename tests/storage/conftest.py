"""Storage test helpers: users to own things, and a statement recorder."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from parley.storage import Database
from parley.storage.tables import User

MakeUser = Callable[[], Awaitable[str]]


@pytest.fixture
def make_user(db: Database) -> MakeUser:
    """Insert a user row and return its id (messages and conversations need one)."""

    async def make() -> str:
        async with db.session() as session:
            user = User(email=f"{uuid.uuid4().hex}@example.test", password_hash="x")
            session.add(user)
            await session.commit()
            return user.id

    return make


@contextmanager
def recorded_sql(db: Database) -> Iterator[list[str]]:
    """Collect every SQL statement sent to the database inside the block."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
