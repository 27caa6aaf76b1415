"""Background work of the orders service: the timeline consumer, stuck-saga detection and
housekeeping (coupon uses still to give back, expired carts, old idempotency keys)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from shopkit.app import sessionmaker_of
from shopkit.consumer import EventConsumer, make_consumer
from shopkit.db import UnitOfWork
from shopkit.loops import every
from shopkit.relay import asyncpg_dsn

from orders_service.changes import OrderChanges
from orders_service.config import OrdersSettings
from orders_service.metrics import STUCK_ORDERS
from orders_service.repository import carts, idempotency, timeline
from orders_service.service import coupons as coupon_service
from orders_service.service.orders import StuckThresholds, count_stuck
from orders_service.service.timeline import TimelineStore, timeline_handlers
from orders_service.state import FULFILMENT, IN_FLIGHT

log = logging.getLogger(__name__)


def settings_of(app: FastAPI) -> OrdersSettings:
    settings: OrdersSettings = app.state.settings
    return settings


def stuck_thresholds(settings: OrdersSettings) -> StuckThresholds:
    return StuckThresholds(
        in_flight_seconds=settings.saga_stuck_after_seconds,
        fulfilment_seconds=settings.fulfilment_stuck_after_seconds,
    )


async def run_timeline_consumer(app: FastAPI, stop: asyncio.Event) -> None:
    settings = settings_of(app)
    if not settings.consumers_enabled:
        return
    consumer: EventConsumer[Any] = make_consumer(
        service=settings.service_name,
        group_id=settings.consumer_group("timeline"),
        bootstrap=settings.kafka_bootstrap,
        handlers=timeline_handlers(),
        store=TimelineStore(sessionmaker_of(app)),
        max_attempts=settings.consumer_max_attempts,
        topic_namespace=settings.kafka_namespace,
    )
    app.state.consumers.append(consumer)  # so /health/ready waits for it too
    await consumer.run(stop)


async def listen_for_order_changes(app: FastAPI, stop: asyncio.Event) -> None:
    changes: OrderChanges = app.state.order_changes
    await changes.listen(asyncpg_dsn(settings_of(app).database_url), stop)


async def export_stuck_sagas(app: FastAPI, stop: asyncio.Event) -> None:
    settings = settings_of(app)
    thresholds = stuck_thresholds(settings)

    async def scan() -> None:
        async with UnitOfWork(sessionmaker_of(app)) as uow:
            counts = await count_stuck(session=uow.session, thresholds=thresholds)
        for status in sorted(IN_FLIGHT | FULFILMENT):
            STUCK_ORDERS.labels(status).set(counts.get(status, 0))

    await every(stop, settings.stuck_scan_interval_seconds, scan, name="stuck-sagas")


async def housekeeping(app: FastAPI, stop: asyncio.Event) -> None:
    settings = settings_of(app)

    async def purge() -> None:
        async with sessionmaker_of(app)() as session:
            # Uses go back right after the cancellation's commit; these are the ones a failure
            # or a stop in between left due. Apart from the purge, whose transaction would hold
            # the coupon rows while it deletes, and whose round a failure here must not cost.
            coupon_uses = await coupon_service.try_giving_back_uses(session=session)
        now = datetime.now(UTC)
        async with UnitOfWork(sessionmaker_of(app)) as uow:
            expired_carts = await carts.purge_expired(uow.session, now=now)
            old_keys = await idempotency.purge(
                uow.session,
                created_before=now - timedelta(seconds=settings.idempotency_retention_seconds),
            )
            old_events = await timeline.purge(
                uow.session, recorded_before=now - timedelta(days=settings.timeline_retention_days)
            )
            await uow.commit()
        if coupon_uses or expired_carts or old_keys or old_events:
            log.info(
                "housekeeping",
                extra={
                    "coupon_uses_given_back": coupon_uses,
                    "expired_carts": expired_carts,
                    "idempotency_keys": old_keys,
                    "timeline_events": old_events,
                },
            )

    await every(stop, settings.housekeeping_interval_seconds, purge, name="housekeeping")
