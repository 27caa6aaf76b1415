"""The sweeper expires a hold only once the saga consumer has applied what came before its
expiry: a confirmation that waited in Kafka through an inventory outage still commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from contracts.events.inventory import StockReleased, StockReserved
from contracts.types import utc_now
from inventory_service import jobs, repository, service
from inventory_service.app import build_app
from inventory_service.book import ReservationState, StockBook, StockLevel
from inventory_service.config import InventorySettings
from inventory_service.service import StockPolicy
from shopkit.db import UnitOfWork, create_engine, create_sessionmaker
from shopkit.kafka import GroupProgress
from shopkit.testing import (
    TestTokens,
    app_client,
    fetchval,
    kafka_namespace,
    migrated_database,
    publish,
    read_topic,
    wait_for_events,
)
from shopkit.watermark import ConsumedWatermark

from contracts import new_id

from .conftest import Running
from .factories import order_confirmed, order_placed
from .test_reservations import fresh_sku, set_stock, stock_of


@asynccontextmanager
async def started(settings: InventorySettings, tokens: TestTokens) -> AsyncIterator[Running]:
    """One run of the service on `settings` (the database and namespace outlive it)."""
    app = build_app(settings)
    async with app_client(app, tokens) as client:
        yield Running(app=app, client=client, settings=settings, tokens=tokens)


async def reservation_of(url: str, order_id: str) -> str:
    status: str = await fetchval(
        url,
        "SELECT status || ':' || coalesce(reason, '') FROM reservations WHERE order_id = $1",
        order_id,
    )
    return status


async def test_a_confirmation_read_after_an_outage_past_the_expiry_still_commits() -> None:
    async with migrated_database("inventory") as url:
        settings = InventorySettings(
            database_url=url,
            kafka_namespace=kafka_namespace(),
            consumer_max_attempts=3,
            reservation_ttl_seconds=2,
            sweep_interval_seconds=0.2,
        )
        tokens = TestTokens()
        sku = fresh_sku("OUTAGE")
        paid = order_placed(new_id(), [(sku, 1)])
        abandoned = order_placed(new_id(), [(sku, 1)])
        async with started(settings, tokens) as inventory:
            await set_stock(inventory, sku, 2)
            await publish(settings.kafka_namespace, paid, abandoned)
            reserved = await wait_for_events(
                settings.kafka_namespace,
                StockReserved,
                where=lambda e: e.order_id in {paid.order_id, abandoned.order_id},
                count=2,
            )

        # Inventory is down. Orders confirms the paid order inside its hold...
        confirmed = order_confirmed(paid)
        await publish(settings.kafka_namespace, confirmed)
        assert all(confirmed.confirmed_at < r.expires_at for r in reserved)
        # ...and the outage outlasts both holds.
        latest = max(r.expires_at for r in reserved)
        await asyncio.sleep(max((latest - utc_now()).total_seconds(), 0) + 0.5)

        async with started(settings, tokens) as inventory:
            # The abandoned hold expires only once the consumer is past what came before its
            # expiry, the confirmation included: by then the paid order must be committed.
            await wait_for_events(
                settings.kafka_namespace,
                StockReleased,
                where=lambda e: e.order_id == abandoned.order_id,
            )
            assert await reservation_of(url, paid.order_id) == "committed:"
            assert await reservation_of(url, abandoned.order_id) == "released:expired"
            assert await stock_of(inventory, sku) == {
                "on_hand": 1,
                "reserved": 0,
                "available": 1,
                "committed": 1,
            }
            released = [
                e.data
                for e in await read_topic(settings.kafka_namespace, StockReleased.topic)
                if isinstance(e.data, StockReleased)
            ]
            assert [r.order_id for r in released] == [abandoned.order_id]


async def test_no_hold_expires_while_kafka_cannot_say_what_is_unread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with migrated_database("inventory") as url:
        engine = create_engine(url, pool_size=2)
        sessionmaker = create_sessionmaker(engine)
        uow = UnitOfWork(sessionmaker)
        sku, order_id = fresh_sku("NOKAFKA"), new_id()
        policy = StockPolicy(
            reservation_ttl=timedelta(seconds=1),
            extension=timedelta(seconds=1),
            low_stock_threshold=0,
        )
        an_hour_ago = utc_now() - timedelta(hours=1)
        async with uow:
            await service.set_stock(
                uow.session,
                sku=sku,
                on_hand=1,
                reason="count",
                actor_id=new_id(),
                policy=policy,
                now=an_hour_ago,
            )
            book = await repository.load_book(uow.session, skus=[sku], order_ids=[order_id])
            service.reserve(
                book, order_id=order_id, lines=[(sku, 1)], policy=policy, now=an_hour_ago
            )
            await repository.save_book(uow.session, book)
            await uow.commit()
        # Nothing listens there: the broker is unreachable.
        unreachable = GroupProgress(
            "127.0.0.1:9", group="inventory-saga", topics=["orders.events"], timeout=2
        )
        watermark = ConsumedWatermark(unreachable)
        try:
            assert await jobs.sweep_once(uow, watermark, limit=10) == 0
        finally:
            await watermark.close()
            await engine.dispose()
        assert await reservation_of(url, order_id) == "held:"
        assert "no hold expires this round" in caplog.text


def test_a_confirmation_for_an_expired_hold_is_logged_for_the_operator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = utc_now()
    order_id, sku = new_id(), fresh_sku("LATE")
    book = StockBook(
        stock={sku: StockLevel(sku, None, 1, 0, 0, 1, None, now)},
        reservations={
            order_id: ReservationState(
                order_id=order_id,
                id=new_id(),
                status="released",
                reason="expired",
                expires_at=None,
                correlation_id=None,
                placed_event_id=None,
                lines=((sku, 1),),
            )
        },
    )
    with caplog.at_level(logging.WARNING, logger="inventory_service.service"):
        assert service.commit(book, order_id=order_id, now=now) == []
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [getattr(r, "order_id", None) for r in warned] == [order_id]
    assert "expired" in warned[0].getMessage()
