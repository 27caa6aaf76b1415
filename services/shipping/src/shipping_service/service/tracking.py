"""Carrier tracking webhooks: verified on the raw body, deduplicated, applied forward only.

State machine (rank): created 0 -> posted 1 -> in_transit 2 -> out_for_delivery 3 ->
delivered 4 (terminal). An update whose rank is not above the furthest rank reached is stale
(replayed, reordered or backwards) and is recorded without being applied. A carrier may skip
steps; the first update at or beyond `posted` always announces `ShipmentDispatched` first, so
payments captures and orders ships even when the `posted` webhook arrives late or never.
`exception` (failed attempt, damage) does not move the rank: it applies unless it happened
before the latest applied update, and the shipment continues when the next forward update
comes. A forward update that happened before the latest applied one (delivered out of order)
only raises the rank (and announces the dispatch it proves): the newer status stays, so an
exception is not erased by the scan that preceded it, and the step tried again after it is
still applied.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

from contracts.events.shipping import (
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShipmentTrackingUpdated,
)
from pydantic import ValidationError
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from shipping_service import rates, repository
from shipping_service.config import ShippingSettings
from shipping_service.errors import (
    InvalidWebhookPayloadError,
    InvalidWebhookSignatureError,
    StaleWebhookError,
    UnknownCarrierError,
)
from shipping_service.models import Shipment, messaging
from shipping_service.schemas import CarrierUpdate, WebhookAck, WebhookOutcome
from shipping_service.webhooks import SignatureError, StaleSignatureError, verify_signature

log = logging.getLogger(__name__)

RANK = {"created": 0, "posted": 1, "in_transit": 2, "out_for_delivery": 3, "delivered": 4}
FORWARD_PATH = ("posted", "in_transit", "out_for_delivery", "delivered")
TERMINAL = frozenset({"delivered", "cancelled"})


def parse_update(
    carrier: str, raw_body: bytes, signature: str | None, settings: ShippingSettings, now: datetime
) -> tuple[CarrierUpdate, dict[str, Any]]:
    """Authenticate and parse a webhook; nothing in it is trusted before the MAC checks out.

    Returns the update and the whole body, which is kept as received; a body PostgreSQL could
    not keep (a NUL character, a number past what Python parses) is refused as malformed."""
    secret = settings.webhook_secret(carrier)
    if carrier not in rates.CARRIERS or secret is None:
        raise UnknownCarrierError(f"no carrier named {carrier!r}")
    try:
        verify_signature(
            header=signature,
            body=raw_body,
            secret=secret.get_secret_value(),
            now=int(now.timestamp()),
            tolerance_seconds=settings.webhook_tolerance_seconds,
        )
    except StaleSignatureError as exc:
        raise StaleWebhookError(str(exc)) from exc
    except SignatureError as exc:
        raise InvalidWebhookSignatureError(str(exc)) from exc
    # Parsed once: the same document is validated and kept.
    try:
        payload = json.loads(raw_body, parse_constant=_no_constant, parse_float=_finite)
    except ValueError as exc:  # not JSON, a number past what Python reads, NaN or Infinity
        raise InvalidWebhookPayloadError("the body is not JSON that can be read") from exc
    try:
        update = CarrierUpdate.model_validate(payload)
    except ValidationError as exc:
        raise InvalidWebhookPayloadError(
            exc.errors()[0]["msg"] if exc.errors() else "invalid"
        ) from exc
    if _unstorable(payload):
        raise InvalidWebhookPayloadError("the body holds a NUL character or a lone surrogate")
    return update, payload


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is past what a float holds")
    return number


def _unstorable(value: object) -> bool:
    """A string PostgreSQL's JSONB refuses: a NUL character, or half of a UTF-16 pair (what a
    sender cutting an emoji in two leaves, written as an escape such as \\ud83d)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


async def receive(
    *,
    session: AsyncSession,
    settings: ShippingSettings,
    carrier: str,
    raw_body: bytes,
    signature: str | None,
    now: datetime | None = None,
) -> WebhookAck:
    update, payload = parse_update(carrier, raw_body, signature, settings, now or datetime.now(UTC))
    fresh = await repository.claim_webhook(
        session,
        carrier=carrier,
        event_id=update.event_id,
        tracking_number=update.tracking_number,
        status=update.status,
        payload=payload,
    )
    if not fresh:
        return WebhookAck(outcome="duplicate")
    # Row lock: concurrent webhooks of one parcel apply one at a time, in arrival order.
    shipment = await repository.shipment_by_tracking(
        session, update.tracking_number, for_update=True
    )
    if shipment is None or shipment.carrier != carrier:
        # Acknowledged (a carrier would retry forever otherwise) and kept in the inbox.
        await repository.set_webhook_outcome(
            session, carrier=carrier, event_id=update.event_id, outcome="unknown_shipment"
        )
        return WebhookAck(outcome="unknown_shipment")
    if shipment.status == "on_hold":
        # No label was issued, so no carrier can have this parcel: kept for the record only.
        await _keep_unapplied(session, carrier, shipment, update, outcome="held")
        return WebhookAck(outcome="held", shipment_status="on_hold")
    if shipment.status == "cancelled":
        # The order was cancelled (payment voided, stock put back) because the parcel had not
        # been scanned; a scan now means the carrier has it after all. Not applied (the order
        # is over), but never filed as a stale resend: someone must get the parcel back.
        await _keep_unapplied(session, carrier, shipment, update, outcome="after_cancellation")
        log.error(
            "the carrier scanned the parcel of a cancelled shipment; recover it",
            extra={
                "order_id": shipment.order_id,
                "tracking_number": shipment.tracking_number,
                "carrier_status": update.status,
            },
        )
        return WebhookAck(outcome="after_cancellation", shipment_status="cancelled")
    progress = shipment.progress
    events = apply_update(session, shipment, update)
    # A late forward scan may raise the rank without announcing anything: applied all the same.
    outcome = "applied" if events or shipment.progress != progress else "stale"
    await repository.set_webhook_outcome(
        session, carrier=carrier, event_id=update.event_id, outcome=outcome
    )
    if events:
        await Outbox(session, messaging.outbox).add(
            *(Envelope(data=event, correlation_id=shipment.correlation_id) for event in events)
        )
    return WebhookAck(outcome=outcome, shipment_status=shipment.status)  # type: ignore[arg-type]


async def _keep_unapplied(
    session: AsyncSession,
    carrier: str,
    shipment: Shipment,
    update: CarrierUpdate,
    *,
    outcome: WebhookOutcome,
) -> None:
    """Record the scan in the parcel's history without applying it, and the webhook's outcome."""
    repository.add_tracking_event(
        session,
        shipment_id=shipment.id,
        status=update.status,
        occurred_at=update.occurred_at,
        applied=False,
        description=update.description,
        location=update.location,
        carrier_event_id=update.event_id,
    )
    await repository.set_webhook_outcome(
        session, carrier=carrier, event_id=update.event_id, outcome=outcome
    )


def is_stale(shipment: Shipment, update: CarrierUpdate) -> bool:
    if shipment.status in TERMINAL:
        return True
    if update.status == "exception":
        return shipment.last_event_at is not None and update.occurred_at < shipment.last_event_at
    if RANK[update.status] == shipment.progress and shipment.status == "exception":
        # The step the exception interrupted, tried again (a second delivery attempt): it
        # resumes the shipment if it happened after the exception.
        return shipment.last_event_at is not None and update.occurred_at <= shipment.last_event_at
    return RANK[update.status] <= shipment.progress


def apply_update(session: AsyncSession, shipment: Shipment, update: CarrierUpdate) -> list[Event]:
    """Move the shipment forward and return the events that announce it (none when stale)."""
    stale = is_stale(shipment, update)
    repository.add_tracking_event(
        session,
        shipment_id=shipment.id,
        status=update.status,
        occurred_at=update.occurred_at,
        applied=not stale,
        description=update.description,
        location=update.location,
        carrier_event_id=update.event_id,
    )
    if stale:
        return []
    events: list[Event] = []
    at = update.occurred_at
    if _older_than_current(shipment, update):
        # It proves how far the parcel got, but what happened since (an exception: a failed
        # delivery) is what the shipment is now; moving the status back would erase it, and
        # the retried step after it would then be taken for a repeat and dropped.
        if shipment.progress < RANK["posted"]:
            events.append(_dispatched(shipment, at))
        shipment.progress = RANK[update.status]
        shipment.updated_at = datetime.now(UTC)
        return events
    if update.status == "exception":
        events.append(
            ShipmentException(
                shipment_id=shipment.id,
                order_id=shipment.order_id,
                user_id=shipment.user_id,
                tracking_number=shipment.tracking_number,
                description=update.description or "carrier reported an exception",
                occurred_at=at,
            )
        )
    else:
        if shipment.progress < RANK["posted"]:
            events.append(_dispatched(shipment, at))
        shipment.progress = RANK[update.status]
        if update.status in ("in_transit", "out_for_delivery"):
            events.append(
                ShipmentTrackingUpdated(
                    shipment_id=shipment.id,
                    order_id=shipment.order_id,
                    status=update.status,
                    description=update.description,
                    occurred_at=at,
                )
            )
        elif update.status == "delivered":
            shipment.delivered_at = at
            events.append(
                ShipmentDelivered(
                    shipment_id=shipment.id,
                    order_id=shipment.order_id,
                    user_id=shipment.user_id,
                    skus=list(shipment.skus),
                    tracking_number=shipment.tracking_number,
                    delivered_at=at,
                )
            )
    shipment.status = update.status
    shipment.last_event_at = max(at, shipment.last_event_at) if shipment.last_event_at else at
    shipment.updated_at = datetime.now(UTC)
    return events


def _older_than_current(shipment: Shipment, update: CarrierUpdate) -> bool:
    """A forward update that happened before the latest one applied. Delivery is the exception:
    it ends the shipment whenever it is learnt (nothing after it could be the current state)."""
    return (
        update.status not in ("exception", "delivered")
        and shipment.last_event_at is not None
        and update.occurred_at < shipment.last_event_at
    )


def _dispatched(shipment: Shipment, at: datetime) -> ShipmentDispatched:
    shipment.dispatched_at = at
    return ShipmentDispatched(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        user_id=shipment.user_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        dispatched_at=at,
    )


def next_status(status: str, progress: int) -> str | None:
    """The next step of the happy path (the sandbox carrier's script); none for a parcel
    held for a payment review, which has no label to pick up."""
    if status in TERMINAL or status == "on_hold":
        return None
    following = [s for s in FORWARD_PATH if RANK[s] > progress]
    return following[0] if following else None
