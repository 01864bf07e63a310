"""Prices administrators edit (applied from then on, rows keep what they charged, the
message's cost agrees), the usage totals for administrators, and the CSV exports.
Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from apihelpers import Client, ledger_rows, make_client, parse_sse, signup
from parley.messages import Usage
from parley.providers.base import ModelInfo
from parley.providers.scripted import Reply, ScriptedModel

PRICED = ModelInfo(provider="scripted", name="scripted", input_price=2.0, output_price=8.0)


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default="Hello from the scripted model.", info=PRICED)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"memory_auto": False, "currency": "EUR"}


async def chat(client: Client, scripted: ScriptedModel, usage: Usage) -> dict[str, Any]:
    scripted.enqueue(Reply(text="An answer.", usage=usage))
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    r = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
    message: dict[str, Any] = dict(parse_sse(r.text))["done"]["message"]
    return message


async def test_a_price_applies_from_then_on_and_rows_keep_theirs(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    listed = (await client.get("/api/admin/prices")).json()
    assert listed["currency"] == "EUR"
    row = next(item for item in listed["items"] if item["model"] == "scripted/scripted")
    assert (row["input_price"], row["output_price"], row["source"]) == (2.0, 8.0, "default")

    before = await chat(client, scripted, Usage(1000, 100))
    assert before["cost"] == pytest.approx((1000 * 2 + 100 * 8) / 1e6)
    r = await client.put(
        "/api/admin/prices",
        json={
            "model": "scripted/scripted",
            "input_price": 10,
            "cached_input_price": 1,
            "output_price": 30,
        },
    )
    assert r.status_code == 200, r.text
    assert (r.json()["source"], r.json()["input_price"], r.json()["default_input_price"]) == (
        "admin",
        10.0,
        2.0,
    )
    after = await chat(client, scripted, Usage(1000, 100))
    assert after["cost"] == pytest.approx((1000 * 10 + 100 * 30) / 1e6)  # the message agrees
    rows = await ledger_rows(app)
    assert [r.cost for r in rows] == pytest.approx([before["cost"], after["cost"]])

    reset = await client.post("/api/admin/prices/reset", json={"model": "scripted/scripted"})
    assert (reset.json()["source"], reset.json()["input_price"]) == ("default", 2.0)
    again = await chat(client, scripted, Usage(1000, 100))
    assert again["cost"] == pytest.approx(before["cost"])
    assert [r.cost for r in await ledger_rows(app)][:2] == pytest.approx(
        [before["cost"], after["cost"]]
    )
    missing = await client.post("/api/admin/prices/reset", json={"model": "scripted/scripted"})
    assert missing.status_code == 404


async def test_admins_see_everyone_by_user_and_download_it(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    await chat(client, scripted, Usage(100, 10))
    async with make_client(app) as bea_client:
        bea = await signup(bea_client, "bea@example.com")
        await chat(bea_client, scripted, Usage(200, 20))
        await chat(bea_client, scripted, Usage(300, 30))
        await ledger_rows(app)
        theirs = (await bea_client.get("/api/me/usage", params={"days": 7})).json()
        assert theirs["currency"] == "EUR"
        assert [(d["requests"], d["input_tokens"]) for d in theirs["by_model"]] == [(2, 500)]
        assert (await bea_client.get("/api/admin/usage")).status_code == 403
        assert (await bea_client.get("/api/admin/usage.csv")).status_code == 403
        assert (await bea_client.get("/api/admin/prices")).status_code == 403
        mine = await bea_client.get("/api/me/usage.csv", params={"days": 7})
        assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/csv")
        assert "attachment" in mine.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(mine.text)))
        assert [(line["endpoint"], line["input_tokens"]) for line in lines] == [
            ("chat", "200"),
            ("chat", "300"),
        ]
        assert {line["currency"] for line in lines} == {"EUR"}
        assert "user" not in lines[0]

    summary = (await client.get("/api/admin/usage", params={"days": 30})).json()
    by_user = {u["name"]: (u["requests"], u["input_tokens"]) for u in summary["by_user"]}
    assert by_user == {"ada@example.com": (1, 100), "bea@example.com": (2, 500)}
    assert [e["key"] for e in summary["by_endpoint"]] == ["chat"]
    assert sum(d["requests"] for d in summary["by_day"]) == 3
    assert summary["by_project"] == [
        {
            "key": None,
            "name": None,
            "requests": 3,
            "input_tokens": 600,
            "cached_input_tokens": 0,
            "output_tokens": 60,
            "cost": pytest.approx((600 * 2 + 60 * 8) / 1e6),
        }
    ]
    everyone = await client.get("/api/admin/usage.csv")
    rows = list(csv.DictReader(io.StringIO(everyone.text)))
    assert sorted(row["user"] for row in rows) == [
        "ada@example.com",
        "bea@example.com",
        "bea@example.com",
    ]
    assert bea["id"] not in everyone.text  # emails, not ids


async def test_a_key_name_that_looks_like_a_formula_is_quoted_in_csv(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    from sqlalchemy import update

    from parley.storage import Database
    from parley.usage.tables import UsageEvent

    key = (await client.post("/api/keys", json={"name": "=HYPERLINK(1)"})).json()
    await chat(client, scripted, Usage(10, 1))
    await ledger_rows(app)
    async with app.state.services.require(Database).session() as session:
        await session.execute(update(UsageEvent).values(api_key_id=key["id"]))
        await session.commit()
    text = (await client.get("/api/me/usage.csv")).text
    (line,) = list(csv.DictReader(io.StringIO(text)))
    assert line["api_key"] == "'=HYPERLINK(1)"


async def test_cached_input_is_recorded_and_charged_at_its_price(
    app: Any, client: Client, user: dict[str, Any], scripted: ScriptedModel
) -> None:
    await client.put(
        "/api/admin/prices",
        json={
            "model": "scripted/scripted",
            "input_price": 10,
            "cached_input_price": 1,
            "output_price": 30,
        },
    )
    message = await chat(client, scripted, Usage(1000, 100, 800))
    (row,) = await ledger_rows(app)
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens) == (1000, 800, 100)
    expected = (200 * 10 + 800 * 1 + 100 * 30) / 1e6
    assert row.cost == pytest.approx(expected)
    assert message["cost"] == pytest.approx(expected)
    totals = (await client.get("/api/me/usage")).json()["by_model"]
    assert [t["cached_input_tokens"] for t in totals] == [800]
