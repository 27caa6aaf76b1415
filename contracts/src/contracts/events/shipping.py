"""Events of the shipping service (topic `shipping.events`, keyed by order id)."""

from __future__ import annotations

from typing import ClassVar, Literal

from contracts import topics
from contracts.base import Event
from contracts.types import Id, Sku, UtcDatetime

TrackingStatus = Literal[
    "created", "posted", "in_transit", "out_for_delivery", "delivered", "exception"
]


class ShipmentCreated(Event):
    ce_type: ClassVar[str] = "shop.shipping.shipment_created.v1"
    topic: ClassVar[str] = topics.SHIPPING
    key_field: ClassVar[str] = "order_id"

    shipment_id: Id
    order_id: Id
    user_id: Id
    carrier: str
    service: str
    tracking_number: str
    created_at: UtcDatetime


class ShipmentDispatched(Event):
    """The carrier has the parcel: the payment is captured and the order is SHIPPED."""

    ce_type: ClassVar[str] = "shop.shipping.shipment_dispatched.v1"
    topic: ClassVar[str] = topics.SHIPPING
    key_field: ClassVar[str] = "order_id"

    shipment_id: Id
    order_id: Id
    user_id: Id
    carrier: str
    tracking_number: str
    dispatched_at: UtcDatetime


class ShipmentTrackingUpdated(Event):
    """An intermediate carrier status (in transit, out for delivery)."""

    ce_type: ClassVar[str] = "shop.shipping.shipment_tracking_updated.v1"
    topic: ClassVar[str] = topics.SHIPPING
    key_field: ClassVar[str] = "order_id"

    shipment_id: Id
    order_id: Id
    status: TrackingStatus
    description: str | None = None
    occurred_at: UtcDatetime


class ShipmentDelivered(Event):
    ce_type: ClassVar[str] = "shop.shipping.shipment_delivered.v1"
    topic: ClassVar[str] = topics.SHIPPING
    key_field: ClassVar[str] = "order_id"

    shipment_id: Id
    order_id: Id
    user_id: Id
    skus: list[Sku]
    tracking_number: str
    delivered_at: UtcDatetime


class ShipmentException(Event):
    ce_type: ClassVar[str] = "shop.shipping.shipment_exception.v1"
    topic: ClassVar[str] = topics.SHIPPING
    key_field: ClassVar[str] = "order_id"

    shipment_id: Id
    order_id: Id
    user_id: Id
    tracking_number: str
    description: str
    occurred_at: UtcDatetime


class ShipmentCancelled(Event):
    """The order was cancelled before its parcel left: nothing will ship, so inventory puts
    the committed units back on the shelf. A parcel already dispatched is past cancelling and
    no such event comes (its units stay out of stock)."""

    ce_type: ClassVar[str] = "shop.shipping.shipment_cancelled.v1"
    topic: ClassVar[str] = topics.SHIPPING
    key_field: ClassVar[str] = "order_id"

    shipment_id: Id
    order_id: Id
    user_id: Id
    reason: str
    cancelled_at: UtcDatetime
