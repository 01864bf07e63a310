"""``/metrics`` and traces end to end: a scripted upstream (a real HTTP server
speaking the OpenAI API, failing on cue) as provider ``up``; the Prometheus text
read back and parsed; spans caught by the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from apihelpers import Client, ledger_rows, make_client, parse_sse, signup
from parley.config import ModelConfig, ProviderConfig
from parley.providers.testing import ScriptedUpstream, UpstreamReply
from parley.seam import BUDGET_METRICS
from parley.telemetry.tracing import Tracing

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(models=["m"], default_text="Metered answer.") as up:
        yield up


@pytest.fixture
def upstream(shared_upstream: ScriptedUpstream) -> ScriptedUpstream:
    shared_upstream.reset()
    return shared_upstream


@pytest.fixture
def overrides(upstream: ScriptedUpstream) -> dict[str, Any]:
    model = ModelConfig(name="m", input_price=1.0, output_price=2.0)
    return {
        "providers": [
            ProviderConfig(
                name="up",
                base_url=upstream.base_url,
                api_key="sk-test",
                models=[model],
                timeout_s=2.0,
            )
        ],
        "retry_attempts": 2,
        "retry_base_delay_s": 0.01,
        "breaker_failures": 2,
        "metrics_token": TOKEN,
    }


async def ask(client: Client, text: str = "hello") -> dict[str, Any]:
    conv = (await client.post("/api/conversations", json={"model": "up/m"})).json()
    response = await client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": text}
    )
    message: dict[str, Any] = dict(parse_sse(response.text))["done"]["message"]
    return message


async def scrape(
    client: Client, token: str = TOKEN
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_refuse_without_the_token(client: Client, user: Any) -> None:
    assert (await client.get("/metrics")).status_code == 401  # a signed-in admin is not enough
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "metrics token" in wrong.json()["detail"]
    assert (await scrape(client)) is not None


async def test_a_turn_is_counted_with_its_429(
    app: Any, client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(UpstreamReply(fail="429", retry_after="0"))
    answer = await ask(client)
    assert answer["content"] == "Metered answer." and answer["attempts"][0]["error"] == (
        "provider_rate_limited"
    )
    [row] = await ledger_rows(app)
    samples = await scrape(client)
    ref = "up/m"
    assert (
        value(
            samples,
            "parley_model_requests_total",
            endpoint="chat",
            provider="up",
            model=ref,
            outcome="ok",
        )
        == 1
    )
    assert value(samples, "parley_tokens_total", provider="up", model=ref, kind="input") == (
        row.input_tokens
    )
    assert value(samples, "parley_tokens_total", provider="up", model=ref, kind="output") == (
        row.output_tokens
    )
    cost = value(samples, "parley_cost_total", provider="up", model=ref, currency="USD")
    assert cost is not None and cost == pytest.approx(row.cost) and cost > 0
    assert (
        value(samples, "parley_provider_errors_total", provider="up", code="provider_rate_limited")
        == 1
    )
    assert value(samples, "parley_ttft_seconds_count", provider="up", model=ref) == 1


async def test_an_open_breaker_is_shown(
    client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(UpstreamReply(fail="500"), UpstreamReply(fail="500"))
    answer = await ask(client)
    assert answer["status"] == "failed"
    samples = await scrape(client)
    assert value(samples, "parley_breaker_state", provider="up") == 2  # open
    assert value(samples, "parley_breaker_failures", provider="up") == 2
    assert (
        value(samples, "parley_provider_errors_total", provider="up", code="provider_unavailable")
        == 2
    )


async def test_budget_use_is_a_gauge_the_budgets_feature_sets(
    app: Any, client: Client, user: Any
) -> None:
    report = app.state.services.require(BUDGET_METRICS)
    report("user", "u1", 7.5, 10.0)
    samples = await scrape(client)
    assert value(samples, "parley_budget_used_ratio", scope="user", scope_id="u1") == 0.75
    assert value(samples, "parley_budget_limit", scope="user", scope_id="u1") == 10.0


async def test_traces_carry_gen_ai_attributes(
    app: Any, client: Client, user: Any, upstream: ScriptedUpstream
) -> None:
    exporter = InMemorySpanExporter()
    app.state.services.require(Tracing).configure(None, exporter=exporter)
    upstream.enqueue(UpstreamReply(fail="429", retry_after="0"))
    answer = await ask(client)
    await ledger_rows(app)
    spans = exporter.get_finished_spans()
    [turn] = [s for s in spans if s.name == "invoke_agent parley"]
    calls = [s for s in spans if s.name == "chat m"]
    assert turn.attributes is not None
    assert turn.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert turn.attributes["gen_ai.conversation.id"] == answer["conversation_id"]
    assert turn.attributes["gen_ai.usage.output_tokens"] == answer["output_tokens"]
    assert len(calls) == 2
    failed, answered = calls
    for span in calls:
        assert span.parent is not None and span.parent.span_id == turn.context.span_id
        assert span.attributes is not None
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "up"
        assert span.attributes["gen_ai.request.model"] == "m"
    assert failed.attributes is not None and answered.attributes is not None
    assert failed.attributes["error.type"] == "provider_rate_limited"
    assert answered.attributes["gen_ai.usage.output_tokens"] > 0
    assert answered.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert "error.type" not in answered.attributes


async def test_tracing_is_off_by_default(app: Any) -> None:
    assert app.state.services.require(Tracing).enabled is False


async def test_admins_set_the_token_and_the_tracing_endpoint(
    app: Any, client: Client, user: Any
) -> None:
    shown = (await client.get("/api/admin/telemetry")).json()
    assert shown["metrics_token"] == TOKEN and shown["metrics_token_source"] == "config"
    made = (await client.put("/api/admin/telemetry", json={"generate_token": True})).json()
    assert made["metrics_token_source"] == "admin" and made["metrics_token"] != TOKEN
    assert (
        await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    ).status_code == 401
    assert await scrape(client, made["metrics_token"]) == {}  # 200: nothing counted yet
    bad = await client.put("/api/admin/telemetry", json={"otlp_endpoint": "collector:4318"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_endpoint"
    on = (
        await client.put(
            "/api/admin/telemetry", json={"otlp_endpoint": "http://127.0.0.1:9/v1/traces"}
        )
    ).json()
    assert on["tracing"] is True and on["otlp_endpoint_source"] == "admin"
    off = (await client.put("/api/admin/telemetry", json={"clear_otlp_endpoint": True})).json()
    assert off["tracing"] is False
    async with make_client(app) as other:
        await signup(other, "bob@example.com")
        assert (await other.get("/api/admin/telemetry")).status_code == 403


async def test_metrics_are_off_without_any_token(make_app: Any, make_settings: Any) -> None:
    async with make_app(make_settings(metrics_token=None)) as app, make_client(app) as client:
        assert (await client.get("/metrics")).status_code == 404


def test_multiprocess_mode_sums_every_worker(tmp_path: Any) -> None:
    """With ``PROMETHEUS_MULTIPROC_DIR`` (set before the workers start), two worker
    processes count into files there and either one's ``render`` shows the sum."""
    import os
    import subprocess
    import sys

    worker = (
        "import sys\n"
        "from parley.telemetry.metrics import Metrics\n"
        "from parley.usage.ledger import UsageFields\n"
        "m = Metrics()\n"
        "m.usage(UsageFields('chat', 'up', 'up/m', 10, 0, 5, 0.25, 100.0, 'ok'))\n"
        "if sys.argv[1] == 'render':\n"
        "    sys.stdout.write(m.render().decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for role in ("count", "render"):
        done = subprocess.run(
            [sys.executable, "-c", worker, role],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(done.stdout)
        for s in family.samples
    }
    assert value(samples, "parley_tokens_total", provider="up", model="up/m", kind="input") == 20
    assert value(samples, "parley_cost_total", provider="up", model="up/m", currency="USD") == 0.5
