"""The service factory: everything a shop service needs, so its `app.py` stays ~20 lines.

`create_service` wires settings, JSON logs, problem+json errors, health and readiness, metrics,
tracing, the database (with the outbox relay running in the background), Redis, MongoDB,
token verification and the service's event consumers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shopkit.consumer import EventConsumer, make_consumer
from shopkit.db import create_engine, create_read_sessionmaker, create_sessionmaker
from shopkit.handlers import EventHandlers
from shopkit.health import ReadinessCheck, health_router
from shopkit.heap import freeze_startup_heap
from shopkit.http_telemetry import HttpTelemetry
from shopkit.inbox import InboxStore, PostgresInbox
from shopkit.kafka import configure_security
from shopkit.logs import configure_logging
from shopkit.messaging import MessagingTables
from shopkit.metrics import metrics_endpoint
from shopkit.mongo import MongoClient, create_client
from shopkit.openapi import install_problem_openapi
from shopkit.problems import install_problem_handlers
from shopkit.query_strings import refuse_repeated_query_values
from shopkit.relay import OutboxRelay, RelayConfig, asyncpg_dsn
from shopkit.security import TokenVerifier
from shopkit.settings import ServiceSettings
from shopkit.telemetry import instrument_libraries
from shopkit.tracing import configure_tracing

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]
BackgroundJob = Callable[[FastAPI, asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class ServiceParts:
    """What a service asks the factory for, besides its routers."""

    tables: MessagingTables | None = None
    """PostgreSQL with an outbox/inbox: enables the session dependency and the relay."""
    redis: bool = True
    redis_degrades_only: bool = False
    """Redis down leaves the service ready, reported `degraded` (it serves without it)."""
    mongo_url: str | None = None
    consumers: Sequence[EventHandlers[Any]] = ()
    inbox: Callable[[FastAPI], InboxStore[Any]] | None = None
    """Inbox store for the consumers; defaults to PostgreSQL through `tables`."""
    inboxes: dict[str, Callable[[FastAPI], InboxStore[Any]]] = field(default_factory=dict)
    """Inbox store of one consumer, by its registry name (overrides `inbox`)."""
    background: Sequence[BackgroundJob] = ()
    startup: Sequence[Hook] = ()
    shutdown: Sequence[Hook] = ()
    readiness: Sequence[Callable[[FastAPI], ReadinessCheck]] = ()
    verify_tokens: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def create_service(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    parts: ServiceParts | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    parts = parts or ServiceParts()
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings.service_name, settings.otel_exporter, settings.otel_endpoint)
    instrument_libraries(settings.otel_exporter)
    configure_security(settings.kafka_security())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        app.state.settings = settings
        app.state.stop = stop
        app.state.consumers = []
        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        checks = _open_stores(app, settings, parts)
        for hook in parts.startup:
            await hook(app)
        tasks = _start_workers(app, settings, parts, stop)
        if app.state.consumers:
            checks.append(ReadinessCheck("kafka-consumers", _consumers_check(app.state.consumers)))
        checks += [make_check(app) for make_check in parts.readiness]
        app.state.readiness_checks = checks
        freeze_startup_heap()
        try:
            yield
        finally:
            stop.set()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=15)
                for task in pending:
                    task.cancel()
            for hook in parts.shutdown:
                await hook(app)
            await _close_stores(app, parts)

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        # FastAPI's own OpenTelemetry layer would wrap every request in a second server span
        # and metric set on top of `HttpTelemetry` installed below (and, in the gateway,
        # around the proxy path that is meant to skip the framework).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A redirect to the path without its trailing slash is built from the Host the service
        # sees, which behind the gateway is the service's own address: clients were sent to
        # an internal URL. The paths are the documented ones; anything else is a 404 problem.
        redirect_slashes=False,
        dependencies=[Depends(refuse_repeated_query_values)],
    )
    install_problem_handlers(app)
    install_problem_openapi(app)
    app.include_router(health_router())
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    app.add_middleware(HttpTelemetry, service=settings.service_name)
    return app


def _open_stores(
    app: FastAPI, settings: ServiceSettings, parts: ServiceParts
) -> list[ReadinessCheck]:
    """Connect the stores the service asked for; returns their readiness checks."""
    checks: list[ReadinessCheck] = []
    if parts.tables is not None:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name=settings.service_name,
            pre_ping=settings.database_pre_ping,
        )
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.read_sessionmaker = create_read_sessionmaker(engine)
        app.state.tables = parts.tables
        checks.append(ReadinessCheck("postgres", _database_check(engine)))
    if parts.redis:
        redis = Redis.from_url(
            settings.redis_url,
            decode_responses=False,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        app.state.redis = redis
        checks.append(
            ReadinessCheck("redis", _redis_check(redis), degrades_only=parts.redis_degrades_only)
        )
    if parts.mongo_url:
        mongo: MongoClient = create_client(parts.mongo_url, app_name=settings.service_name)
        app.state.mongo = mongo
        checks.append(ReadinessCheck("mongodb", _mongo_check(mongo)))
    if parts.verify_tokens:
        app.state.token_verifier = TokenVerifier(
            jwks_url=settings.jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            http=app.state.http,
            redis=getattr(app.state, "redis", None),
        )
    return checks


def _start_workers(
    app: FastAPI, settings: ServiceSettings, parts: ServiceParts, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """Start the outbox relay, the event consumers and the service's background jobs."""
    tasks: list[asyncio.Task[None]] = []
    if parts.tables is not None and settings.relay_enabled:
        relay = OutboxRelay(
            RelayConfig(
                service=settings.service_name,
                dsn=asyncpg_dsn(settings.database_url),
                bootstrap=settings.kafka_bootstrap,
                table=parts.tables.outbox.name,
                inbox_table=parts.tables.inbox.name,
                topic_namespace=settings.kafka_namespace,
            )
        )
        app.state.relay = relay
        tasks.append(asyncio.create_task(relay.run(stop), name="outbox-relay"))
    if parts.consumers and settings.consumers_enabled:
        default: InboxStore[Any] | None = None
        if parts.inbox is not None:
            default = parts.inbox(app)
        elif parts.tables is not None:
            default = PostgresInbox(app.state.sessionmaker, parts.tables)
        for handlers in parts.consumers:
            own = parts.inboxes.get(handlers.name)
            store = own(app) if own is not None else default
            assert store is not None, f"consumer {handlers.name} has no inbox store"
            consumer: EventConsumer[Any] = make_consumer(
                service=settings.service_name,
                group_id=settings.consumer_group(handlers.name),
                bootstrap=settings.kafka_bootstrap,
                handlers=handlers,
                store=store,
                max_attempts=settings.consumer_max_attempts,
                topic_namespace=settings.kafka_namespace,
            )
            app.state.consumers.append(consumer)
            tasks.append(asyncio.create_task(consumer.run(stop), name=f"consumer-{handlers.name}"))
    for job in parts.background:
        tasks.append(asyncio.create_task(job(app, stop), name=getattr(job, "__name__", "job")))
    return tasks


async def _close_stores(app: FastAPI, parts: ServiceParts) -> None:
    await app.state.http.aclose()
    if parts.redis:
        await app.state.redis.aclose()
    if parts.mongo_url:
        await app.state.mongo.close()
    engine: AsyncEngine | None = getattr(app.state, "engine", None)
    if engine is not None:
        await engine.dispose()


def _database_check(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def _redis_check(redis: Redis) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        await redis.ping()

    return check


def _mongo_check(client: MongoClient) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        await client.admin.command("ping")

    return check


def _consumers_check(consumers: list[EventConsumer[Any]]) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        idle = [c.config.group_id for c in consumers if not c.ready.is_set()]
        if idle:
            raise RuntimeError(f"consumers not connected: {', '.join(idle)}")

    return check


def sessionmaker_of(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return sessionmaker
