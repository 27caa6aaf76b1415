"""Every query of the shipping service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shopkit.db import equals_any, insert_new
from shopkit.erasure import ErasureGuard
from sqlalchemy import String, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shipping_service.models import (
    CarrierWebhook,
    CatalogProduct,
    ErasedUser,
    OrderDecision,
    Shipment,
    TrackingEvent,
)

OPEN_STATUSES = ("created", "posted", "in_transit", "out_for_delivery")


async def upsert_product(
    session: AsyncSession,
    *,
    product_id: str,
    sku: str,
    weight_grams: int,
    is_active: bool,
    version: int,
) -> bool:
    """Apply a catalog snapshot unless a newer (or the same) version is already projected."""
    values = {
        "product_id": product_id,
        "sku": sku,
        "weight_grams": weight_grams,
        "is_active": is_active,
        "version": version,
    }
    statement = (
        insert(CatalogProduct)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[CatalogProduct.product_id],
            set_={k: v for k, v in values.items() if k != "product_id"},
            where=CatalogProduct.version < version,
        )
        .returning(CatalogProduct.product_id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def deactivate_product(session: AsyncSession, *, product_id: str, version: int) -> None:
    await session.execute(
        update(CatalogProduct)
        .where(CatalogProduct.product_id == product_id, CatalogProduct.version < version)
        .values(is_active=False, version=version)
    )


# Built once: every quote and every shipment runs it.
_PRODUCTS_BY_SKU = (
    select(CatalogProduct)
    .where(equals_any(CatalogProduct.sku, "skus", String()))
    # A sku moved between products: the active, most recent document wins.
    .order_by(CatalogProduct.is_active, CatalogProduct.updated_at)
)


async def products_by_sku(session: AsyncSession, skus: Sequence[str]) -> dict[str, CatalogProduct]:
    rows = await session.scalars(_PRODUCTS_BY_SKU, {"skus": sorted(set(skus))})
    return {row.sku: row for row in rows}


ERASURES = ErasureGuard(ErasedUser, lock_space=0x534850)  # "SHP"
"""`ERASURES.hold(session, user_id)` before storing a user's address (see `shopkit.erasure`);
`ERASURES.remember` when the account is deleted."""

_SHIPMENT_FOR_ORDER = select(Shipment).where(Shipment.order_id == bindparam("order_id"))
# Locked reads refresh a copy the session already holds: loaded earlier in the transaction
# (a redelivered OrderConfirmed in the same batch), it would hide what the transaction the lock
# waited for committed, such as a pickup.
_LOCK_SHIPMENT_FOR_ORDER = _SHIPMENT_FOR_ORDER.with_for_update().execution_options(
    populate_existing=True
)


async def shipment_for_order(
    session: AsyncSession, order_id: str, *, for_update: bool = False
) -> Shipment | None:
    if for_update:
        # The reload would also discard a change made earlier in the batch and not flushed
        # yet (the session does not autoflush): a second cancellation of the order in the same
        # batch saw it still `created` and cancelled it, and announced it, again.
        await session.flush()
    statement = _LOCK_SHIPMENT_FOR_ORDER if for_update else _SHIPMENT_FOR_ORDER
    return (await session.scalars(statement, {"order_id": order_id})).one_or_none()


_DECISION_FOR_ORDER = (
    select(OrderDecision)
    .where(OrderDecision.order_id == bindparam("order_id"))
    # Written by Core statements: a copy loaded earlier in the batch would be out of date.
    .execution_options(populate_existing=True)
)


async def decision_for_order(session: AsyncSession, order_id: str) -> OrderDecision | None:
    return (await session.scalars(_DECISION_FOR_ORDER, {"order_id": order_id})).one_or_none()


async def remember_cancellation(
    session: AsyncSession, *, order_id: str, user_id: str, reason: str, cancelled_at: datetime
) -> None:
    """Record that the order is cancelled (the first cancellation's reason stays)."""
    await _remember_decision(
        session,
        order_id=order_id,
        user_id=user_id,
        first=OrderDecision.cancelled_at,
        cancel_reason=reason,
        cancelled_at=cancelled_at,
    )


async def claim_cancellation_answer(
    session: AsyncSession, *, order_id: str, shipment_id: str
) -> bool:
    """Give the remembered cancellation the id its answer names; False when it was answered
    before. The row lock makes a concurrent claim wait and then find it taken."""
    statement = (
        update(OrderDecision)
        .where(OrderDecision.order_id == order_id, OrderDecision.shipment_id.is_(None))
        .values(shipment_id=shipment_id)
        .returning(OrderDecision.order_id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def remember_release(
    session: AsyncSession, *, order_id: str, user_id: str, released_at: datetime
) -> None:
    await _remember_decision(
        session,
        order_id=order_id,
        user_id=user_id,
        first=OrderDecision.released_at,
        released_at=released_at,
    )


async def _remember_decision(
    session: AsyncSession, *, order_id: str, user_id: str, first: Any, **values: Any
) -> None:
    """Write `values` on the order's decision row (made if missing) unless the decision they
    record was already made: `first` is its column, set by the first one."""
    statement = insert(OrderDecision).values(order_id=order_id, user_id=user_id, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[OrderDecision.order_id],
            set_={name: statement.excluded[name] for name in values},
            where=first.is_(None),
        )
    )


async def get_shipment(session: AsyncSession, shipment_id: str) -> Shipment | None:
    return await session.get(Shipment, shipment_id)


async def shipment_by_tracking(
    session: AsyncSession, tracking_number: str, *, for_update: bool = False
) -> Shipment | None:
    statement = select(Shipment).where(Shipment.tracking_number == tracking_number)
    if for_update:
        await session.flush()  # as in shipment_for_order
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(statement)).one_or_none()


async def shipments_of_user(
    session: AsyncSession, user_id: str, *, limit: int, before: str | None = None
) -> list[Shipment]:
    statement = select(Shipment).where(Shipment.user_id == user_id)
    if before:
        statement = statement.where(Shipment.id < before)
    rows = await session.scalars(statement.order_by(Shipment.id.desc()).limit(limit))
    return list(rows)


async def tracking_events(
    session: AsyncSession, shipment_ids: Sequence[str], *, applied_only: bool = True
) -> dict[str, list[TrackingEvent]]:
    statement = select(TrackingEvent).where(TrackingEvent.shipment_id.in_(list(shipment_ids)))
    if applied_only:
        statement = statement.where(TrackingEvent.applied)
    rows = await session.scalars(statement.order_by(TrackingEvent.occurred_at, TrackingEvent.seq))
    events: dict[str, list[TrackingEvent]] = {shipment_id: [] for shipment_id in shipment_ids}
    for row in rows:
        events[row.shipment_id].append(row)
    return events


async def record_new_shipment(
    session: AsyncSession, shipment: Shipment, first_event: TrackingEvent
) -> None:
    """Insert a new shipment and its first tracking event. Neither object joins the session:
    the transaction only records them."""
    await insert_new(session, shipment)
    await insert_new(session, first_event)


def add_tracking_event(
    session: AsyncSession,
    *,
    shipment_id: str,
    status: str,
    occurred_at: datetime,
    applied: bool,
    description: str | None = None,
    location: str | None = None,
    carrier_event_id: str | None = None,
) -> None:
    session.add(
        TrackingEvent(
            shipment_id=shipment_id,
            status=status,
            description=description,
            location=location,
            occurred_at=occurred_at,
            applied=applied,
            carrier_event_id=carrier_event_id,
        )
    )


async def claim_webhook(
    session: AsyncSession,
    *,
    carrier: str,
    event_id: str,
    tracking_number: str,
    status: str,
    payload: dict[str, Any],
) -> bool:
    """Record a carrier event in the inbox; False when it was received before (a replay)."""
    statement = (
        insert(CarrierWebhook)
        .values(
            carrier=carrier,
            event_id=event_id,
            tracking_number=tracking_number,
            status=status,
            outcome="received",
            payload=payload,
        )
        .on_conflict_do_nothing(index_elements=[CarrierWebhook.carrier, CarrierWebhook.event_id])
        .returning(CarrierWebhook.event_id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def set_webhook_outcome(
    session: AsyncSession, *, carrier: str, event_id: str, outcome: str
) -> None:
    await session.execute(
        update(CarrierWebhook)
        .where(CarrierWebhook.carrier == carrier, CarrierWebhook.event_id == event_id)
        .values(outcome=outcome)
    )


async def open_shipments_idle_since(
    session: AsyncSession, cutoff: datetime, *, limit: int = 50
) -> list[Shipment]:
    rows = await session.scalars(
        select(Shipment)
        .where(Shipment.status.in_(OPEN_STATUSES), Shipment.updated_at <= cutoff)
        .order_by(Shipment.updated_at)
        .limit(limit)
    )
    return list(rows)


async def open_shipments(session: AsyncSession, *, limit: int = 100) -> list[Shipment]:
    rows = await session.scalars(
        select(Shipment)
        .where(Shipment.status.in_(OPEN_STATUSES))
        .order_by(Shipment.created_at)
        .limit(limit)
    )
    return list(rows)


async def shipments_to_anonymise(session: AsyncSession, user_id: str) -> list[Shipment]:
    rows = await session.scalars(
        select(Shipment)
        .where(Shipment.user_id == user_id, Shipment.anonymised_at.is_(None))
        .with_for_update()
    )
    return list(rows)
