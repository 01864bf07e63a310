"""Budgets and rate limits through the HTTP API: the admin's routes, the native chat
route's refusal (a problem document) and downgrade (a notice on the message), the
80% warning, ``/v1/chat/completions``' OpenAI-shaped 429, 200 relayed requests at
once against a budget worth ten, and the user's own view."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apihelpers import make_client, parse_sse, signup
from parley.providers.base import ModelInfo
from parley.providers.scripted import ScriptedModel

# The priced model: output only (1000 per million tokens), its answer 60 tokens (the
# scripted model reports 4 characters a token), so one answer costs 0.06; its
# worst case without ``max_tokens`` is its 10-token maximum: 0.01 (the scripted
# model, like some servers, ignores the maximum: the tests use that to reach 80%).
ANSWER = ("word " * 48).strip() + "."
PRICED = ModelInfo(
    provider="scripted",
    name="priced",
    input_price=0.0,
    output_price=1000.0,
    max_output_tokens=10,
)


@pytest.fixture
def scripted_models(scripted: ScriptedModel) -> dict[str, ScriptedModel]:
    return {
        "scripted": scripted,  # free: the downgrade model
        "priced": ScriptedModel(default=ANSWER, info=PRICED),
    }


async def _admin_and_user(app: Any) -> tuple[Any, Any, dict[str, Any]]:
    admin = make_client(app)
    user = make_client(app)
    await admin.__aenter__()
    await user.__aenter__()
    await signup(admin, "admin@example.com")
    who = await signup(user, "user@example.com")
    return admin, user, who


async def _chat(client: Any, content: str = "hello") -> tuple[int, Any]:
    conv = (await client.post("/api/conversations", json={"model": "scripted/priced"})).json()
    r = await client.post(f"/api/conversations/{conv['id']}/messages", json={"content": content})
    return r.status_code, r


async def test_admin_budgets_crud_and_rules(app: Any) -> None:
    admin, user, who = await _admin_and_user(app)
    try:
        made = await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "user",
                "scope_id": who["id"],
                "kind": "cost",
                "period": "day",
                "amount": 2.5,
                "downgrade_model": "scripted/scripted",
            },
        )
        assert made.status_code == 201, made.text
        budget = made.json()
        assert budget["scope_name"] == "user@example.com"
        assert budget["spent"] == 0 and budget["remaining"] == 2.5
        assert budget["resets_at"].endswith("T00:00:00Z")
        again = await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "user",
                "scope_id": who["id"],
                "kind": "cost",
                "period": "day",
                "amount": 1,
            },
        )
        assert again.status_code == 409 and again.json()["code"] == "budget_exists"
        bad = await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "user",
                "scope_id": who["id"],
                "kind": "requests",
                "period": "day",
                "amount": 1,
            },
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_period"
        unknown = await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "instance",
                "kind": "cost",
                "period": "month",
                "amount": 1,
                "downgrade_model": "nope/nope",
            },
        )
        assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_model"
        changed = await admin.patch(
            f"/api/admin/budgets/{budget['id']}",
            json={
                "scope": "user",
                "scope_id": who["id"],
                "kind": "cost",
                "period": "day",
                "amount": 5,
            },
        )
        assert changed.status_code == 200 and changed.json()["amount"] == 5
        assert changed.json()["downgrade_model"] is None
        listed = (await admin.get("/api/admin/budgets")).json()
        assert [b["id"] for b in listed["items"]] == [budget["id"]]
        assert (await user.get("/api/admin/budgets")).status_code == 403
        assert (
            await user.post("/api/admin/budgets", json={"scope": "instance", "amount": 1})
        ).status_code == 403
        mine = (await user.get("/api/me/budgets")).json()
        assert [b["id"] for b in mine["items"]] == [budget["id"]]
        assert (await admin.delete(f"/api/admin/budgets/{budget['id']}")).status_code == 204
        assert (await admin.delete(f"/api/admin/budgets/{budget['id']}")).status_code == 404
        assert (await user.get("/api/me/budgets")).json()["items"] == []
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_another_users_budget_is_not_in_my_view(app: Any) -> None:
    """The isolation sweep's rule for the user's budget list: only what binds you."""
    admin, user, who = await _admin_and_user(app)
    try:
        async with make_client(app) as bob:
            await signup(bob, "bob@example.com")
            await admin.post(
                "/api/admin/budgets",
                json={"scope": "user", "scope_id": who["id"], "kind": "cost", "amount": 1},
            )
            assert (await bob.get("/api/me/budgets")).json()["items"] == []
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def _budget(admin: Any, user_id: str, amount: float, downgrade: str | None = None) -> None:
    made = await admin.post(
        "/api/admin/budgets",
        json={
            "scope": "user",
            "scope_id": user_id,
            "kind": "cost",
            "period": "day",
            "amount": amount,
            "downgrade_model": downgrade,
        },
    )
    assert made.status_code == 201, made.text


async def _settled(app: Any) -> None:
    from parley.budgets.service import Budgets

    await app.state.services.get(Budgets).drain()


async def test_a_spent_budget_refuses_the_chat_with_a_problem_document(app: Any) -> None:
    admin, user, who = await _admin_and_user(app)
    try:
        await _budget(admin, who["id"], 0.05)
        status, first = await _chat(user)
        assert status == 200
        done = dict(parse_sse(first.text))["done"]["message"]
        assert done["status"] == "complete", done["error_message"]
        assert done["cost"] == pytest.approx(0.06)
        await _settled(app)
        status, refused = await _chat(user)
        assert status == 429, refused.text
        problem = refused.json()
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "budget_exceeded"
        assert problem["detail"].startswith(
            "The daily budget of your account is spent: 0.00 USD left of 0.05 USD"
        )
        assert problem["limit"] == {
            "scope": "user",
            "kind": "cost",
            "period": "day",
            "amount": 0.05,
        }
        assert problem["remaining"] == 0
        assert problem["resets_at"].endswith("T00:00:00+00:00")
        assert int(refused.headers["retry-after"]) > 0
        # nothing was stored for the refused question
        convs = (await user.get("/api/conversations")).json()["items"]
        detail = (await user.get(f"/api/conversations/{convs[0]['id']}")).json()
        assert detail["messages"] == []
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_a_budget_spent_mid_turn_ends_the_answer_with_its_message(app: Any) -> None:
    """The second call does not fit: the turn starts (the budget was not spent yet)
    and ends with the refusal, worded for the user, not charged in the ledger."""
    admin, user, who = await _admin_and_user(app)
    try:
        await _budget(admin, who["id"], 0.065)
        assert (await _chat(user))[0] == 200
        await _settled(app)
        status, second = await _chat(user)
        assert status == 200
        events = parse_sse(second.text)
        errors = [data for name, data in events if name == "error"]
        assert errors and errors[0]["code"] == "budget_exceeded"
        assert "daily budget of your account is spent" in errors[0]["message"]
        done = dict(events)["done"]["message"]
        assert done["status"] == "failed" and done["error_code"] == "budget_exceeded"
        from apihelpers import ledger_rows

        rows = await ledger_rows(app)
        assert [r.outcome for r in rows if r.user_id == who["id"]] == ["ok"]
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_a_downgrade_answers_with_the_cheaper_model_and_says_so(app: Any) -> None:
    admin, user, who = await _admin_and_user(app)
    try:
        await _budget(admin, who["id"], 0.075, downgrade="scripted/scripted")
        status, first = await _chat(user)
        done = dict(parse_sse(first.text))["done"]["message"]
        assert done["model"] == "scripted/priced" and done["notice"] is None
        await _settled(app)
        # 0.06 of 0.075 spent (80%): the next answer still fits, and warns
        status, second = await _chat(user)
        assert status == 200
        warning = second.headers["x-parley-budget-warning"]
        assert warning.startswith("80% of the daily budget of your account is used")
        message = dict(parse_sse(second.text))["done"]["message"]
        assert message["model"] == "scripted/priced"
        assert message["notice"] == warning
        await _settled(app)
        # now spent: the cheaper model answers, and the answer says so
        status, third = await _chat(user)
        assert status == 200
        message = dict(parse_sse(third.text))["done"]["message"]
        assert message["model"] == "scripted/scripted"
        assert message["content"] == "Hello from the scripted model."
        assert message["notice"].startswith(
            "The daily budget of your account is spent; answered by scripted/scripted instead."
        )
        assert "answered by scripted/scripted" in third.headers["x-parley-budget-notice"]
        stored = (await user.get(f"/api/conversations/{message['conversation_id']}")).json()
        assert stored["messages"][-1]["notice"] == message["notice"]
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_v1_is_refused_with_an_openai_shaped_429(app: Any) -> None:
    admin, user, _who = await _admin_and_user(app)
    try:
        key = (await user.post("/api/keys", json={"name": "ci"})).json()
        await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "key",
                "scope_id": key["id"],
                "kind": "requests",
                "period": "minute",
                "amount": 2,
            },
        )
        auth = {"Authorization": f"Bearer {key['key']}"}
        body = {"model": "scripted/priced", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):
            ok = await user.post("/v1/chat/completions", json=body, headers=auth)
            assert ok.status_code == 200, ok.text
        refused = await user.post("/v1/chat/completions", json=body, headers=auth)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limited"
        assert "requests-per-minute limit of this API key is reached" in error["message"]
        assert "resets at" in error["message"]
        assert int(refused.headers["retry-after"]) <= 60
        # embeddings obey the same key's limits
        emb = await user.post(
            "/v1/embeddings", json={"model": "default", "input": "x"}, headers=auth
        )
        assert emb.status_code in (429, 503)
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_200_relayed_requests_at_once_cannot_overspend(app: Any) -> None:
    admin, user, who = await _admin_and_user(app)
    try:
        key = (await user.post("/api/keys", json={"name": "burst"})).json()
        from parley.budgets.service import Budgets
        from parley.providers.openai_wire import ChatCompletionIn, chat_request

        body = {
            "model": "scripted/priced",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100,  # an honest worst case: 0.1, above the answer's 0.06
        }
        _, output = Budgets.worst_case(PRICED, chat_request(ChatCompletionIn(**body)))
        estimate = output * 1000 / 1_000_000
        await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "user",
                "scope_id": who["id"],
                "kind": "cost",
                "period": "total",
                "amount": 10 * estimate,
            },
        )
        auth = {"Authorization": f"Bearer {key['key']}"}
        results = await asyncio.gather(
            *(user.post("/v1/chat/completions", json=body, headers=auth) for _ in range(200))
        )
        statuses = [r.status_code for r in results]
        assert set(statuses) <= {200, 429}, statuses
        await app.state.services.get(Budgets).drain()
        mine = (await user.get("/api/me/budgets")).json()["items"][0]
        assert mine["reserved"] == 0
        assert mine["spent"] <= 10 * estimate + 1e-9  # never over the budget
        assert statuses.count(200) >= 10  # ten worst cases always fit
        assert 429 in statuses  # ... and spending stopped
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_v1_responses_obeys_the_budget(app: Any) -> None:
    """``/v1/responses`` runs turns: a spent budget refuses it, OpenAI-shaped."""
    admin, user, who = await _admin_and_user(app)
    try:
        key = (await user.post("/api/keys", json={"name": "responses"})).json()
        await _budget(admin, who["id"], 0.05)
        auth = {"Authorization": f"Bearer {key['key']}"}
        body = {"model": "scripted/priced", "input": "hello", "store": False}
        first = await user.post("/v1/responses", json=body, headers=auth)
        assert first.status_code == 200, first.text
        await _settled(app)
        refused = await user.post("/v1/responses", json=body, headers=auth)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "budget_exceeded"
        assert "daily budget of your account is spent" in error["message"]
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_after_turn_work_is_charged_but_never_refused(app: Any) -> None:
    """A title made after the answer costs money: it counts against the budget, even
    past it, and is never refused half-way (a metered model, not a budgeted one)."""
    from parley.budgets.service import Budgets
    from parley.usage.ledger import UsageLedger

    admin, user, who = await _admin_and_user(app)
    try:
        await _budget(admin, who["id"], 0.05)
        ledger = app.state.services.get(UsageLedger)
        ledger.charged(
            user_id=who["id"],
            endpoint="title",
            provider="scripted",
            model="scripted/priced",
            output_tokens=100,
            cost=0.1,
        )
        await ledger.drain()
        await app.state.services.get(Budgets).drain()
        mine = (await user.get("/api/me/budgets")).json()["items"][0]
        assert mine["spent"] == pytest.approx(0.1)  # over the budget: charged all the same
        status, _ = await _chat(user)
        assert status == 429  # ... and the next request is refused
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_budget_use_reaches_autos_budget_rule_and_the_metrics(app: Any) -> None:
    """The budgets provide what Auto's ``budget`` rule reads (the largest share used
    of the money budgets that apply) and set ``/metrics``' budget gauges."""
    from parley.routing.service import BUDGET_STATE, BudgetQuery
    from parley.telemetry.metrics import Metrics

    admin, user, who = await _admin_and_user(app)
    try:
        share = app.state.services.get(BUDGET_STATE)
        assert await share(BudgetQuery(who["id"])) is None  # no budget applies yet
        await _budget(admin, who["id"], 0.10)
        status, _ = await _chat(user)
        assert status == 200
        await _settled(app)
        assert await share(BudgetQuery(who["id"])) == pytest.approx(0.6)  # 0.06 of 0.10
        meter = app.state.services.get(Metrics)
        labels = {"scope": "user", "scope_id": who["id"]}
        assert meter.value("parley_budget_spent", labels) == pytest.approx(0.06)
        assert meter.value("parley_budget_used_ratio", labels) == pytest.approx(0.6)
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)


async def test_the_admin_picks_scopes_by_name_and_the_list_shows_names(app: Any) -> None:
    """Admin → Budgets' picker: groups, users, projects and API keys found by name
    (or their owner's email); the limits list them by name; only admins may ask."""
    admin, user, who = await _admin_and_user(app)
    try:
        group = (await admin.post("/api/admin/groups", json={"name": "Research 50%"})).json()
        await admin.post("/api/admin/groups", json={"name": "Sales"})
        project = (await user.post("/api/projects", json={"name": "Atlas"})).json()
        key = (await user.post("/api/keys", json={"name": "nightly"})).json()

        async def choices(scope: str, q: str = "") -> list[dict[str, Any]]:
            r = await admin.get("/api/admin/budgets/choices", params={"scope": scope, "q": q})
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

        assert [c["name"] for c in await choices("group")] == ["Research 50%", "Sales"]
        assert [c["id"] for c in await choices("group", "ch 50%")] == [group["id"]]
        assert await choices("group", "_") == []  # a letter, not a wildcard
        assert [c["id"] for c in await choices("user", "USER@")] == [who["id"]]
        found = await choices("project", "user@example")  # the owner's email finds it
        assert found == [
            {
                "id": project["id"],
                "name": "Atlas",
                "owner": "user@example.com",
                "label": "Atlas (user@example.com)",
            }
        ]
        assert [c["id"] for c in await choices("key", "night")] == [key["id"]]
        bad = await admin.get("/api/admin/budgets/choices", params={"scope": "instance"})
        assert bad.status_code == 422
        refused = await user.get("/api/admin/budgets/choices", params={"scope": "user"})
        assert refused.status_code == 403

        for scope, scope_id in (("group", group["id"]), ("project", project["id"])):
            r = await admin.post(
                "/api/admin/budgets",
                json={"scope": scope, "scope_id": scope_id, "kind": "cost", "amount": 5},
            )
            assert r.status_code == 201, r.text
        r = await admin.post(
            "/api/admin/budgets",
            json={
                "scope": "key",
                "scope_id": key["id"],
                "kind": "requests",
                "period": "minute",
                "amount": 5,
            },
        )
        assert r.status_code == 201, r.text
        names = {
            b["scope"]: b["scope_name"]
            for b in (await admin.get("/api/admin/budgets")).json()["items"]
        }
        assert names == {
            "group": "Research 50%",
            "project": "Atlas (user@example.com)",
            "key": "nightly (user@example.com)",
        }
    finally:
        await admin.__aexit__(None, None, None)
        await user.__aexit__(None, None, None)
