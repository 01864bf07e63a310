"""``create_app(settings)``: the composition root. It names every feature and builds
the whole server, on demand (never at import); nothing else wires features.

Start-up migrates the database, marks answers cut off by a previous crash as
failed (so they can be retried), builds the model registry and the turn
service. The local model is not loaded here: it loads on first use, which
keeps start-up fast and idle memory small.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from parley import __version__
from parley.api.routers import (
    admin,
    admin_failover,
    admin_jobs,
    admin_routing,
    auth,
    chat,
    conversations,
    health,
    local_models,
    me,
    metrics,
    models,
    openai_api,
    openai_embeddings,
    openai_stored,
    setup,
    usage,
    web,
)
from parley.api.routers import budgets as budgets_router
from parley.api.schemas import Health
from parley.api.stream_events import document_stream_events
from parley.assistants.feature import assistants_feature
from parley.auth.accounts import count_users
from parley.budgets.service import Budgets
from parley.config import Settings, load_settings
from parley.container import Services
from parley.gc_policy import ServerGC
from parley.groups.feature import groups_feature
from parley.http.middleware import BodyLimit, SecurityHeaders, ShareLoop
from parley.http.problems import install_problem_handlers
from parley.images.feature import images_feature
from parley.instance.model_downloads import ModelDownloads
from parley.instance.providers import RegistrySync, database_providers
from parley.instance.values import get_value
from parley.jobs.runner import Jobs
from parley.knowledge.feature import knowledge_feature
from parley.memory.feature import memory_feature
from parley.projects.feature import projects_feature
from parley.providers.base import Provider
from parley.providers.registry import ModelRegistry
from parley.responses.feature import responses_feature
from parley.routing.service import BUDGET_STATE, RoutingService
from parley.sandbox.feature import sandbox_feature
from parley.seam import USER_GROUPS, Feature, FeatureContext, FeatureFactory
from parley.speech.feature import speech_feature
from parley.storage.conversations import fail_stale_streaming
from parley.storage.db import Database
from parley.telemetry.metrics import BUDGET_METRICS, Metrics
from parley.telemetry.observer import Observer
from parley.telemetry.tracing import Tracing
from parley.tools import ToolRegistry, default_registry
from parley.turns import TurnService, make_control
from parley.turns.control import GenerationControl
from parley.turns.events import TurnEvents, make_turn_events
from parley.turns.streams import SharedTurnEvents
from parley.usage.ledger import UsageLedger
from parley.userdata import UserDataHooks
from parley.userdata.archive import IMPORT_MAX_BYTES
from parley.web_tools.feature import web_tools_feature

log = logging.getLogger("parley")

# Every optional capability, in start order. A new feature adds its factory here
# (and nothing else outside its own package): see docs/ARCHITECTURE.md.
DEFAULT_FEATURES: list[FeatureFactory] = [
    groups_feature,
    assistants_feature,
    projects_feature,
    knowledge_feature,
    web_tools_feature,
    sandbox_feature,
    memory_feature,
    responses_feature,
    speech_feature,
    images_feature,
]


def create_app(
    settings: Settings | None = None,
    *,
    extra_providers: Sequence[Provider] = (),
    tools: ToolRegistry | None = None,
    features: Sequence[FeatureFactory] | None = None,
    server_process: bool = False,
    run_jobs: bool | None = None,
) -> FastAPI:
    """The ASGI app; nothing starts until its lifespan runs.

    ``server_process`` (for ``parley serve``, not for tests that build many apps):
    once started, the process's garbage collector follows ``gc_policy`` (the
    objects that live for the whole process are frozen; full collections run
    once a minute instead of whenever load churns the young generations), and
    the SQLite pool opens its connections in the background while idle.

    ``run_jobs``: whether this process claims and runs background jobs
    (``parley.jobs``); None follows ``jobs_in_server``. ``parley worker`` passes
    True and serves no HTTP.
    """
    settings = settings or load_settings()
    collector = ServerGC() if server_process else None
    enabled = [
        factory(settings) for factory in (DEFAULT_FEATURES if features is None else features)
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        await db.migrate()
        async with db.session() as session:
            # With several workers on one database, only answers silent for a while
            # are stale; a single SQLite process owns every stream it sees.
            stale_after = None if settings.is_sqlite else timedelta(minutes=5)
            await fail_stale_streaming(session, older_than=stale_after)
            await session.commit()
            db_providers = await database_providers(session)
            nobody_yet = await count_users(session) == 0
        registry = ModelRegistry(settings, db_providers, list(extra_providers))
        # Stops reach other workers over Redis and, on a shared database, as polled rows.
        control = await make_control(settings.redis_url, None if settings.is_sqlite else db)
        # A turn's events reach readers on any worker (Redis stream, or the stored answer).
        shared = SharedTurnEvents(
            db,
            settings.redis_url,
            max_events=settings.stream_replay_events,
            linger_s=settings.stream_replay_linger_s,
            ttl_s=settings.stream_redis_ttl_s,
        )
        events: TurnEvents = (
            shared
            if settings.stream_replay_events > 0
            else make_turn_events(0, settings.stream_replay_linger_s)
        )
        tool_registry = tools or default_registry()
        services = app.state.services = Services()
        turns = TurnService(
            db=db,
            registry=registry,
            settings=settings,
            control=control,
            tools=tool_registry,
            services=services,
            events=events,
        )
        services.provide(SharedTurnEvents, shared)
        services.provide(Settings, settings)
        services.provide(Database, db)
        services.provide(ModelRegistry, registry)
        services.provide(RegistrySync, RegistrySync(registry, settings))
        downloads = ModelDownloads(settings)
        services.provide(ModelDownloads, downloads)
        services.provide(ToolRegistry, tool_registry)
        services.provide(GenerationControl, control)
        services.provide(TurnService, turns)
        services.provide(UserDataHooks, UserDataHooks())  # features add theirs at start
        ledger = UsageLedger(db)
        services.provide(UsageLedger, ledger)  # every billable call writes a row
        services.provide(RoutingService, turns.routing)  # Auto's policies (projects set theirs)
        # Prometheus metrics fed by the ledger's rows and each model call's attempts;
        # traces when an OTLP endpoint is set (the admin's, else the settings')
        meter = Metrics(settings.currency)
        ledger.listeners.append(meter.usage)
        tracing = turns.tracing
        async with db.session() as session:
            tracing.configure(await get_value(session, "otlp_endpoint", settings.otlp_endpoint))
        turns.failover.observer = Observer(meter, tracing)
        services.provide(Metrics, meter)
        services.provide(Tracing, tracing)
        services.provide(BUDGET_METRICS, meter.budget)  # the budgets feature reports use here
        jobs = Jobs(
            db,
            concurrency=settings.jobs_concurrency,
            lease_s=settings.jobs_lease_s,
            poll_s=settings.jobs_poll_s,
            backoff_base_s=settings.jobs_backoff_base_s,
            backoff_max_s=settings.jobs_backoff_max_s,
        )
        services.provide(Jobs, jobs)  # features register handlers and enqueue at start
        budgets = Budgets(
            db,
            ledger.prices,
            currency=settings.currency,
            lease_s=settings.budget_lease_s,
            groups=lambda: services.get(USER_GROUPS),  # no groups feature: in no group
        )
        services.provide(Budgets, budgets)  # every model call reserves, then settles
        services.provide(BUDGET_STATE, budgets.share_used)  # Auto's budget rule reads it
        budgets.reporter = meter.budget  # /metrics' budget gauges
        ledger.on_charge.append(budgets.charged)  # after-turn work: charged, not refused
        context = FeatureContext(
            settings=settings,
            db=db,
            models=registry,
            tools=tool_registry,
            turns=turns,
            services=services,
        )
        started: list[Feature] = []
        warming: asyncio.Task[None] | None = None
        try:
            for feature in enabled:
                await feature.start(context)
                started.append(feature)
            if settings.jobs_in_server if run_jobs is None else run_jobs:
                jobs.start()  # after every feature registered its handlers
            if collector is not None:
                collector.start()
            if server_process:
                warming = asyncio.create_task(db.warm())
                if nobody_yet:
                    print(first_run_line(settings), flush=True)
            yield
        finally:
            if warming is not None:
                warming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warming
            if collector is not None:
                await collector.stop()
            await jobs.stop()  # running jobs finish or go back to the queue
            for feature in reversed(started):
                await feature.stop()
            await downloads.aclose()
            # a server lets running answers finish (tests building many apps: briefly)
            await turns.aclose(settings.shutdown_grace_s if server_process else 5.0)
            await shared.aclose()
            await ledger.drain()
            await budgets.drain()
            await control.aclose()
            tracing.close()
            await registry.aclose()
            await db.dispose()

    app = FastAPI(
        title="Parley",
        version=__version__,
        description="A self-hosted assistant over any model. See the README for the API guide.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.features = {feature.name: feature for feature in enabled}  # for tests and tools
    install_problem_handlers(app)

    @app.get("/api/health", tags=["meta"])
    async def api_health() -> Health:
        return Health(status="ok", version=__version__)

    for router in (
        auth,
        me,
        models,
        conversations,
        chat,
        health,
        admin,
        admin_failover,
        admin_routing,
        metrics,
        admin_jobs,
        budgets_router,
        setup,
        local_models,
        openai_api,
        openai_embeddings,
        openai_stored,
        usage,
    ):
        app.include_router(router.router)
    for feature in enabled:
        if feature.router is not None:
            app.include_router(feature.router)
    web.mount_web(app)
    document_stream_events(app)  # the chat stream's events, which no route returns as JSON

    body_limits: dict[str, int] = {"/api/me/import": IMPORT_MAX_BYTES}
    for feature in enabled:
        body_limits.update(feature.body_limits)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, overrides=body_limits)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ShareLoop)  # outermost: before any other work for the request
    return app


def first_run_line(settings: Settings) -> str:
    """What a new server says when nobody has signed up yet: where to go and what the
    first account is (``make run`` ends with it)."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104  (all interfaces: this machine uses loopback)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return (
        f"Parley is running: open http://{host}:{settings.port} and create the first "
        "account (it becomes the administrator)"
    )
