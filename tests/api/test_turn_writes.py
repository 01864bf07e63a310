"""What preparing a turn writes before the model is called: each statement is a round
trip to the database, and they are the floor of time to first token. A question and
its answer's row go out in one flush: the conversation is updated once per turn."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from apihelpers import Client, parse_sse
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage.db import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes_before_model(seen: list[str]) -> list[str]:
    return [s.split(" (")[0] for s in seen if s.startswith(("INSERT", "UPDATE", "DELETE"))]


async def test_a_turn_updates_the_conversation_once_before_the_model(
    app: Any, client: Client, user: Any, scripted: ScriptedModel
) -> None:
    db: Database = app.state.services.require(Database)
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    before_model: list[str] = []
    for question in ("first question", "second question"):
        with statements(db) as seen:

            def at_model_call(_request: Any, seen: list[str] = seen) -> Reply:
                before_model[:] = writes_before_model(seen)
                return Reply(text="An answer.")

            scripted.enqueue(at_model_call)
            response = await client.post(
                f"/api/conversations/{conv['id']}/messages", json={"content": question}
            )
            assert response.status_code == 200, response.text
        assert [name for name, _ in parse_sse(response.text)][-1] in ("done", "title")
        updates = [s for s in before_model if s.startswith("UPDATE conversations")]
        inserts = [s for s in before_model if s.startswith("INSERT INTO messages")]
        assert len(updates) == 1, before_model
        assert 1 <= len(inserts) <= 2, before_model

    view = (await client.get(f"/api/conversations/{conv['id']}")).json()
    rows = view["messages"]
    assert [(m["role"], m["content"]) for m in rows] == [
        ("user", "first question"),
        ("assistant", "An answer."),
        ("user", "second question"),
        ("assistant", "An answer."),
    ]
    # the path is linked parent to child
    assert [m["parent_id"] for m in rows[1:]] == [m["id"] for m in rows[:-1]]
    # the second question's model call saw the first exchange
    assert [m.content for m in scripted.requests[-1].messages[1:]] == [
        "first question",
        "An answer.",
        "second question",
    ]
