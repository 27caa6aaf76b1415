"""Background work: the sweeper that releases reservations whose hold expired."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError
from contracts.types import utc_now
from fastapi import FastAPI
from shopkit.app import sessionmaker_of
from shopkit.db import UnitOfWork
from shopkit.loops import every
from shopkit.outbox import Outbox
from shopkit.watermark import ConsumedWatermark, group_progress

from contracts import Envelope, Event
from inventory_service import service
from inventory_service.config import InventorySettings
from inventory_service.consumers import saga
from inventory_service.models import messaging

log = logging.getLogger(__name__)


async def sweep_once(uow: UnitOfWork, watermark: ConsumedWatermark, *, limit: int) -> int:
    """Release one batch of expired holds with their `StockReleased(reason="expired")`.

    A hold is expired only once the saga consumer has applied every event that reached its
    topics before the hold's expiry: an order confirmed in time must be committed, not released,
    however late this service reads its confirmation (outage, restart, backlog)."""
    now = utc_now()
    async with uow:
        # Asked first so that an idle stack costs no Kafka round trip.
        if not await service.holds_past_expiry(uow.session, now=now):
            return 0
    try:
        applied_until = await watermark.advance(now)
    except (KafkaError, OSError, TimeoutError) as exc:
        # Without knowing what is still unread, expiring anything could overrule a confirmation.
        log.warning(
            "cannot read the saga consumer's progress; no hold expires this round",
            extra={"error": repr(exc)},
        )
        return 0
    if applied_until is None:
        return 0
    async with uow:
        released = await service.release_expired(
            uow.session, now=now, expired_before=applied_until, limit=limit
        )
        envelopes: list[Envelope[Event]] = [
            # Continue the checkout's flow, so the order's timeline shows why it was released.
            Envelope(
                data=event,
                correlation_id=row.correlation_id or "",
                causation_id=row.placed_event_id,
            )
            for row, event in released
        ]
        await Outbox(uow.session, messaging.outbox).add(*envelopes)
        await uow.commit()
    return len(released)


async def reservation_sweeper(app: FastAPI, stop: asyncio.Event) -> None:
    """Runs in every replica; replicas skip orders another one is releasing. Each follows the
    saga group's progress itself, whichever replica's consumer holds the partitions."""
    settings: InventorySettings = app.state.settings
    uow = UnitOfWork(sessionmaker_of(app))
    watermark = ConsumedWatermark(group_progress(settings, saga))

    async def sweep() -> bool:
        released = await sweep_once(uow, watermark, limit=settings.sweep_batch_size)
        if released:
            log.info("released expired reservations", extra={"count": released})
        return released == settings.sweep_batch_size  # more may be due right now

    try:
        await every(stop, settings.sweep_interval_seconds, sweep, name="reservation-sweep")
    finally:
        await watermark.close()
