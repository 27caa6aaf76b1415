"""Events of the orders service (topic `orders.events`, keyed by order id)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from contracts import topics
from contracts.base import Event, Model
from contracts.types import Currency, Id, MinorUnits, Quantity, Sku, UtcDatetime

OrderStatus = Literal[
    "PENDING", "AWAITING_PAYMENT", "CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED"
]

CancelReason = Literal[
    "out_of_stock",
    "payment_failed",
    "reservation_expired",
    "payment_action_abandoned",
    "customer_request",
    "admin_request",
]

Cep = Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")]


class OrderLine(Model):
    sku: Sku
    product_id: str
    name: str
    quantity: Quantity
    unit_price: MinorUnits
    line_total: MinorUnits


class ShippingAddress(Model):
    recipient: str
    street: str
    number: str
    complement: str | None = None
    district: str
    city: str
    state: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    cep: Cep
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "BR"


class ShippingChoice(Model):
    quote_id: str
    carrier: str
    service: str
    price: MinorUnits
    estimated_days: int = Field(ge=0)


class OrderPlaced(Event):
    """Checkout accepted an order: the saga starts here."""

    ce_type: ClassVar[str] = "shop.orders.order_placed.v1"
    topic: ClassVar[str] = topics.ORDERS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    user_id: Id
    lines: list[OrderLine] = Field(min_length=1)
    subtotal: MinorUnits
    discount: MinorUnits
    shipping: MinorUnits
    total: MinorUnits
    currency: Currency
    coupon_code: str | None = None
    shipping_address: ShippingAddress
    shipping_choice: ShippingChoice
    payment_method_id: str
    customer_ip: str | None = None
    placed_at: UtcDatetime


class OrderConfirmed(Event):
    """Stock is reserved and the payment authorized for exactly `total`."""

    ce_type: ClassVar[str] = "shop.orders.order_confirmed.v1"
    topic: ClassVar[str] = topics.ORDERS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    user_id: Id
    payment_id: Id
    lines: list[OrderLine]
    total: MinorUnits
    currency: Currency
    shipping_address: ShippingAddress
    shipping_choice: ShippingChoice
    confirmed_at: UtcDatetime
    subtotal: MinorUnits | None = None
    """The lines' sum; with `discount` and `shipping`, how `total` comes about (absent from
    events of producers before they were added)."""
    discount: MinorUnits | None = None
    shipping: MinorUnits | None = None
    coupon_code: str | None = None
    payment_review_pending: bool = False
    """The payment is flagged for a fraud review: the parcel is prepared but not handed to the
    carrier before `OrderFulfilmentReleased` (a rejection cancels the order instead)."""


class OrderCancelled(Event):
    """The order will not be fulfilled: payments voids or refunds, inventory releases."""

    ce_type: ClassVar[str] = "shop.orders.order_cancelled.v1"
    topic: ClassVar[str] = topics.ORDERS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    user_id: Id
    reason: CancelReason
    previous_status: OrderStatus
    cancelled_at: UtcDatetime


class OrderFulfilmentReleased(Event):
    """The payment of an order confirmed under review was approved: its parcel may go."""

    ce_type: ClassVar[str] = "shop.orders.order_fulfilment_released.v1"
    topic: ClassVar[str] = topics.ORDERS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    user_id: Id
    released_at: UtcDatetime


class OrderCancellationRequested(Event):
    """Someone asked to cancel a CONFIRMED order. Its parcel may be leaving at this moment, so
    shipping decides: it voids a parcel that has not left (ShipmentCancelled, and orders then
    cancels the order), or the dispatch has won (ShipmentDispatched, and the order ships with
    the request refused). Until then the order stays CONFIRMED and nothing is refunded."""

    ce_type: ClassVar[str] = "shop.orders.order_cancellation_requested.v1"
    topic: ClassVar[str] = topics.ORDERS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    user_id: Id
    reason: CancelReason
    requested_at: UtcDatetime


class OrderStatusChanged(Event):
    """Every transition of the order state machine, for projections and timelines."""

    ce_type: ClassVar[str] = "shop.orders.order_status_changed.v1"
    topic: ClassVar[str] = topics.ORDERS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    user_id: Id
    from_status: OrderStatus
    to_status: OrderStatus
    reason: str
    changed_at: UtcDatetime
