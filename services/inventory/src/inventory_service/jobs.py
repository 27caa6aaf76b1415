"""Background work: the sweeper that releases reservations whose hold expired."""

from __future__ import annotations

import asyncio
import logging

from contracts.types import utc_now
from fastapi import FastAPI
from shopkit.app import sessionmaker_of
from shopkit.db import UnitOfWork
from shopkit.loops import every
from shopkit.outbox import Outbox

from contracts import Envelope, Event
from inventory_service import service
from inventory_service.config import InventorySettings
from inventory_service.models import messaging

log = logging.getLogger(__name__)


async def sweep_once(uow: UnitOfWork, *, limit: int) -> int:
    """Release one batch of expired holds with their `StockReleased(reason="expired")`."""
    async with uow:
        released = await service.release_expired(uow.session, now=utc_now(), limit=limit)
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
    """Runs in every replica; replicas skip orders another one is releasing."""
    settings: InventorySettings = app.state.settings
    uow = UnitOfWork(sessionmaker_of(app))

    async def sweep() -> bool:
        released = await sweep_once(uow, limit=settings.sweep_batch_size)
        if released:
            log.info("released expired reservations", extra={"count": released})
        return released == settings.sweep_batch_size  # more may be due right now

    await every(stop, settings.sweep_interval_seconds, sweep, name="reservation-sweep")
