"""Shipments: created when an order is confirmed, read by their owner, anonymised on request."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from contracts.events.orders import OrderCancellationRequested, OrderCancelled, OrderConfirmed
from contracts.events.shipping import ShipmentCancelled, ShipmentCreated
from shopkit.privacy import anonymised_address
from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, new_id
from shipping_service import repository
from shipping_service.config import ShippingSettings
from shipping_service.errors import (
    ShipmentCancelledError,
    ShipmentNotFoundError,
    ShipmentOnHoldError,
    UnsupportedLabelFormatError,
)
from shipping_service.labels import LabelData, address_lines, render_pdf, render_zpl
from shipping_service.models import OrderDecision, Shipment, TrackingEvent
from shipping_service.schemas import (
    ShipmentList,
    ShipmentPublic,
    ShippingExport,
    TrackingEventPublic,
    TrackingPublic,
)
from shipping_service.service.tracking import TERMINAL

log = logging.getLogger(__name__)

CORREIOS_PREFIX = {"PAC": "PN", "SEDEX": "SX"}
S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def s10_check_digit(serial: str) -> int:
    """UPU S10 check digit of an 8-digit serial (the format of Correios tracking numbers)."""
    remainder = sum(int(d) * w for d, w in zip(serial, S10_WEIGHTS, strict=True)) % 11
    digit = 11 - remainder
    return {10: 0, 11: 5}.get(digit, digit)


def new_tracking_number(carrier: str, service: str) -> str:
    if carrier == "correios":
        serial = f"{secrets.randbelow(10**8):08d}"
        return f"{CORREIOS_PREFIX.get(service, 'XX')}{serial}{s10_check_digit(serial)}BR"
    return f"{carrier[:3].upper()}{secrets.randbelow(10**12):012d}"


async def create_for_order(
    *, session: AsyncSession, envelope: Envelope[OrderConfirmed]
) -> ShipmentCreated | None:
    """The order's shipment and its `ShipmentCreated`; None if the order already has one, or if
    it was cancelled before (its OrderConfirmed parked, replayed after the cancellation): its
    shipment is then created cancelled, and nothing is announced, since the cancellation was
    answered when it came, if it needed an answer (`cancel_for_order`)."""
    order = envelope.data
    if await repository.shipment_for_order(session, order.order_id) is not None:
        return None
    # One order's events come in order on one partition, and the inbox makes a redelivered
    # batch wait for the one it repeats: a cancellation or release is remembered before this
    # reads it, never at the same time.
    decision = await repository.decision_for_order(session, order.order_id)
    status, description = _first_status(order, decision)
    products = await repository.products_by_sku(session, [line.sku for line in order.lines])
    # A sku missing from the projection weighs nothing here: the quote already priced the
    # parcel, and refusing to ship a paid order would be worse than a light label.
    weight = sum(
        products[line.sku].weight_grams * line.quantity
        for line in order.lines
        if line.sku in products
    )
    choice = order.shipping_choice
    now = datetime.now(UTC)
    # An account deleted before its order's confirmation got here: its parcel (the order asks
    # shipping to stop it) never holds the address.
    erased = await repository.ERASURES.hold(session, order.user_id)
    address = order.shipping_address.model_dump(mode="json")
    shipment = Shipment(
        # The id a ShipmentCancelled already named, if the cancellation was answered.
        id=decision.shipment_id if decision is not None and decision.shipment_id else new_id(),
        order_id=order.order_id,
        user_id=order.user_id,
        carrier=choice.carrier,
        service=choice.service,
        tracking_number=new_tracking_number(choice.carrier, choice.service),
        status=status,
        progress=0,
        quote_id=choice.quote_id,
        price=choice.price,
        estimated_days=choice.estimated_days,
        weight_grams=weight,
        address=anonymised_address(address) if erased else address,
        anonymised_at=now if erased else None,
        items=[{"sku": line.sku, "quantity": line.quantity} for line in order.lines],
        skus=sorted({line.sku for line in order.lines}),
        created_at=now,
        updated_at=now,
        correlation_id=envelope.correlation_id,
    )
    await repository.record_new_shipment(
        session,
        shipment,
        TrackingEvent(
            shipment_id=shipment.id,
            status=shipment.status,
            occurred_at=now,
            applied=True,
            description=description,
        ),
    )
    if status == "cancelled":
        return None
    return ShipmentCreated(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        user_id=shipment.user_id,
        carrier=shipment.carrier,
        service=shipment.service,
        tracking_number=shipment.tracking_number,
        created_at=now,
    )


def _first_status(order: OrderConfirmed, decision: OrderDecision | None) -> tuple[str, str]:
    """The status a new shipment starts in, and its first tracking event's description."""
    if decision is not None and decision.cancelled_at is not None:
        return "cancelled", f"Order cancelled before the shipment ({decision.cancel_reason})"
    if not order.payment_review_pending:
        return "created", "Label issued, awaiting pickup"
    if decision is not None and decision.released_at is not None:
        return "created", "Payment approved: label issued, awaiting pickup"
    return "on_hold", "Held until the payment review"


def _set_status(
    session: AsyncSession, shipment: Shipment, status: str, description: str
) -> datetime:
    """A change this service makes itself (not a carrier's scan), with its tracking event."""
    now = datetime.now(UTC)
    shipment.status = status
    shipment.updated_at = now
    repository.add_tracking_event(
        session,
        shipment_id=shipment.id,
        status=status,
        occurred_at=now,
        applied=True,
        description=description,
    )
    return now


async def release_for_order(
    *, session: AsyncSession, order_id: str, user_id: str, released_at: datetime
) -> None:
    """The payment review approved the order: its held shipment gets its label and may be
    picked up. Anything else (not held, already cancelled) is left as it is. No shipment yet
    (its OrderConfirmed parked): the release is remembered, and the shipment created later is
    not held, since no second release would come for it."""
    shipment = await repository.shipment_for_order(session, order_id, for_update=True)
    if shipment is None:
        await repository.remember_release(
            session, order_id=order_id, user_id=user_id, released_at=released_at
        )
        return
    if shipment.status != "on_hold":
        return
    _set_status(session, shipment, "created", "Payment approved: label issued, awaiting pickup")


async def cancel_for_order(
    *, session: AsyncSession, cancellation: OrderCancelled | OrderCancellationRequested
) -> ShipmentCancelled | None:
    """Void a shipment whose parcel has not left yet (still created, or held by an exception
    before pickup); a dispatched one is past cancelling. The event says nothing will ship.

    The shipment's row lock orders this against the carrier's pickup webhook: whichever commits
    first decides, and orders learns which from ShipmentCancelled or ShipmentDispatched."""
    order_id, reason = cancellation.order_id, cancellation.reason
    shipment = await repository.shipment_for_order(session, order_id, for_update=True)
    if shipment is None:
        return await _cancel_before_shipment(session, cancellation)
    if shipment.progress > 0 or shipment.status in TERMINAL:
        return None
    now = _set_status(session, shipment, "cancelled", f"Order cancelled ({reason})")
    return ShipmentCancelled(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        user_id=shipment.user_id,
        reason=reason,
        cancelled_at=now,
    )


async def _cancel_before_shipment(
    session: AsyncSession, cancellation: OrderCancelled | OrderCancellationRequested
) -> ShipmentCancelled | None:
    """No shipment: the cancellation is remembered, so that the one created when the order's
    OrderConfirmed comes (parked, replayed later) is created cancelled and never gets a label.

    A confirmed order (orders asks only of those; or cancelled CONFIRMED) is answered now as a
    parcel stopped in time would be, naming the id its shipment will get: nothing can ship
    any more, orders is waiting for the answer to finish the order, and inventory to restock
    the units it committed, and the OrderConfirmed may never be replayed. An order cancelled
    before its confirmation (most cancellations) is not remembered: it never had, and never
    will have, an OrderConfirmed (CANCELLED is final), and nobody waits for an answer."""
    confirmed = (
        isinstance(cancellation, OrderCancellationRequested)
        or cancellation.previous_status == "CONFIRMED"
    )
    if not confirmed:
        return None
    order_id = cancellation.order_id
    now = datetime.now(UTC)
    await repository.remember_cancellation(
        session,
        order_id=order_id,
        user_id=cancellation.user_id,
        reason=cancellation.reason,
        cancelled_at=now,
    )
    shipment_id = new_id()
    # A repeated request, or the OrderCancelled that follows the answer, finds it answered.
    if not await repository.claim_cancellation_answer(
        session, order_id=order_id, shipment_id=shipment_id
    ):
        return None
    # Its OrderConfirmed, which came before on the same partition, was parked for an operator.
    log.warning(
        "cancellation of a confirmed order without a shipment; remembered",
        extra={"order_id": order_id},
    )
    return ShipmentCancelled(
        shipment_id=shipment_id,
        order_id=order_id,
        user_id=cancellation.user_id,
        reason=cancellation.reason,
        cancelled_at=now,
    )


def _event_public(event: TrackingEvent) -> TrackingEventPublic:
    return TrackingEventPublic(
        status=event.status,
        description=event.description,
        location=event.location,
        occurred_at=event.occurred_at,
    )


def to_public(shipment: Shipment, events: list[TrackingEvent]) -> ShipmentPublic:
    return ShipmentPublic(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        carrier=shipment.carrier,
        service=shipment.service,
        tracking_number=shipment.tracking_number,
        status=shipment.status,  # type: ignore[arg-type]
        estimated_days=shipment.estimated_days,
        price=shipment.price,
        created_at=shipment.created_at,
        dispatched_at=shipment.dispatched_at,
        delivered_at=shipment.delivered_at,
        label_url=f"/api/shipping/shipments/{shipment.id}/label",
        events=[_event_public(e) for e in events],
    )


def _check_access(shipment: Shipment | None, principal: Principal) -> Shipment:
    # Someone else's shipment answers exactly like a missing one (no existence oracle).
    if shipment is None or (shipment.user_id != principal.user_id and not principal.is_admin):
        raise ShipmentNotFoundError("no such shipment for this account")
    return shipment


async def for_order(
    *, session: AsyncSession, principal: Principal, order_id: str
) -> ShipmentPublic:
    shipment = _check_access(await repository.shipment_for_order(session, order_id), principal)
    events = await repository.tracking_events(session, [shipment.id])
    return to_public(shipment, events[shipment.id])


async def get(*, session: AsyncSession, principal: Principal, shipment_id: str) -> ShipmentPublic:
    shipment = _check_access(await repository.get_shipment(session, shipment_id), principal)
    events = await repository.tracking_events(session, [shipment.id])
    return to_public(shipment, events[shipment.id])


async def list_mine(
    *, session: AsyncSession, principal: Principal, limit: int, cursor: str | None
) -> ShipmentList:
    rows = await repository.shipments_of_user(
        session, principal.user_id, limit=limit + 1, before=cursor
    )
    page = rows[:limit]
    events = await repository.tracking_events(session, [s.id for s in page])
    return ShipmentList(
        items=[to_public(s, events[s.id]) for s in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


async def track(*, session: AsyncSession, tracking_number: str) -> TrackingPublic:
    shipment = await repository.shipment_by_tracking(session, tracking_number.strip().upper())
    if shipment is None:
        raise ShipmentNotFoundError("unknown tracking number")
    events = await repository.tracking_events(session, [shipment.id])
    city = shipment.address.get("city") if shipment.anonymised_at is None else None
    state = shipment.address.get("state")
    return TrackingPublic(
        tracking_number=shipment.tracking_number,
        carrier=shipment.carrier,
        service=shipment.service,
        status=shipment.status,  # type: ignore[arg-type]
        destination_city=str(city) if city else None,
        destination_state=str(state) if state else None,
        events=[_event_public(e) for e in events[shipment.id]],
    )


async def label(
    *,
    session: AsyncSession,
    settings: ShippingSettings,
    principal: Principal,
    shipment_id: str,
    fmt: str,
) -> tuple[bytes, str]:
    """The label document and its media type."""
    shipment = _check_access(await repository.get_shipment(session, shipment_id), principal)
    if shipment.status == "on_hold":
        raise ShipmentOnHoldError(
            f"shipment {shipment_id} waits for the review of its order's payment"
        )
    if shipment.status == "cancelled":
        raise ShipmentCancelledError(f"shipment {shipment_id} was cancelled with its order")
    data = LabelData(
        carrier=shipment.carrier,
        service=shipment.service,
        tracking_number=shipment.tracking_number,
        order_id=shipment.order_id,
        weight_grams=shipment.weight_grams,
        recipient_lines=address_lines(shipment.address),
        sender_lines=list(settings.label_sender),
    )
    if fmt == "pdf":
        return render_pdf(data), "application/pdf"
    if fmt == "zpl":
        return render_zpl(data).encode(), "application/zpl"
    raise UnsupportedLabelFormatError("label formats: pdf, zpl")


async def export(*, session: AsyncSession, principal: Principal) -> ShippingExport:
    rows = await repository.shipments_of_user(session, principal.user_id, limit=10_000)
    events = await repository.tracking_events(session, [s.id for s in rows])
    return ShippingExport(
        user_id=principal.user_id,
        shipments=[to_public(s, events[s.id]) for s in rows],
        addresses=[dict(s.address) for s in rows],
    )


async def anonymise_user(*, session: AsyncSession, user_id: str) -> int:
    """Strip personal data from the user's shipments; what the carrier needs (state, CEP
    prefix for statistics, tracking) stays so the delivery record still makes sense. The
    account is recorded as erased first (committed), so a shipment being created for it now is
    anonymised here once created, and one created later never holds the address."""
    now = datetime.now(UTC)
    await repository.ERASURES.remember(session, user_id, now)
    shipments = await repository.shipments_to_anonymise(session, user_id)
    for shipment in shipments:
        shipment.address = anonymised_address(shipment.address)
        shipment.anonymised_at = now
    return len(shipments)
