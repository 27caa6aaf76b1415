from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from shopkit.params import Cep, DateTime, JsonInteger, Sku

CarrierStatus = Literal["posted", "in_transit", "out_for_delivery", "delivered", "exception"]
ShipmentStatus = Literal[
    "on_hold",
    "created",
    "posted",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "exception",
    "cancelled",
]
"""`on_hold`: prepared, but its order's payment is under review: no label, no pickup."""


# A quote is only ever used to check out a cart, and it covers exactly the lines it was signed
# for: these are the orders service's cart limits (its `max_line_quantity` and `max_cart_lines`
# defaults), repeated rather than imported. Raise them together.
MAX_LINE_QUANTITY = 50
"""Most units of one sku a cart line, and so a quote item, holds."""
MAX_QUOTE_ITEMS = 50
"""Most lines (different skus) a cart, and so a quote, holds."""


class QuoteItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Annotated[int, Field(gt=0, le=MAX_LINE_QUANTITY), JsonInteger]


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination_cep: Cep
    """A CEP the Correios allocate (`01310-100` or `01310100`)."""
    items: list[QuoteItem] = Field(
        min_length=1,
        max_length=MAX_QUOTE_ITEMS,
        description="A sku given twice is quoted once with the quantities added (the quote "
        "is signed for one line per sku, as a cart holds them). Skus the catalog does not sell "
        "are a 404; items heavier in total than parcels can carry are a 409 `quote-too-heavy`.",
    )


class QuoteOption(BaseModel):
    quote_id: str
    carrier: str
    service: str
    price: int
    currency: str
    estimated_days: int
    expires_at: datetime


class QuoteResponse(BaseModel):
    destination_cep: str
    weight_grams: int
    options: list[QuoteOption]


class CepPublic(BaseModel):
    cep: str
    state: str
    city: str | None
    district: str | None = None
    street: str | None = None
    source: Literal["viacep", "offline"]


class TrackingEventPublic(BaseModel):
    status: str
    description: str | None
    location: str | None
    occurred_at: datetime


class ShipmentPublic(BaseModel):
    shipment_id: str
    order_id: str
    carrier: str
    service: str
    tracking_number: str
    status: ShipmentStatus
    estimated_days: int
    price: int
    created_at: datetime
    dispatched_at: datetime | None
    delivered_at: datetime | None
    label_url: str
    events: list[TrackingEventPublic]


class ShipmentList(BaseModel):
    items: list[ShipmentPublic]
    next_cursor: str | None = None


class TrackingPublic(BaseModel):
    """What anyone holding a tracking number may see: no names, no street address."""

    tracking_number: str
    carrier: str
    service: str
    status: ShipmentStatus
    destination_city: str | None
    destination_state: str | None
    events: list[TrackingEventPublic]


class CarrierUpdate(BaseModel):
    """A carrier's tracking webhook body.

    Unknown fields are ignored rather than refused (carriers add fields over time); nothing in
    the payload is ever dereferenced, in particular no URL is fetched.
    """

    model_config = ConfigDict(extra="ignore")

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    tracking_number: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    status: CarrierStatus
    occurred_at: DateTime
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    location: Annotated[str, StringConstraints(max_length=120)] | None = None


WebhookOutcome = Literal[
    "applied", "duplicate", "stale", "held", "unknown_shipment", "after_cancellation"
]


class WebhookAck(BaseModel):
    outcome: WebhookOutcome
    shipment_status: ShipmentStatus | None = None


class ShippingExport(BaseModel):
    """Everything shipping holds about the caller (LGPD/GDPR access request)."""

    user_id: str
    shipments: list[ShipmentPublic]
    addresses: list[dict[str, object]]
