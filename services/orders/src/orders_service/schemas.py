"""Request and response models of the orders API (shapes fixed by API.md, extended here)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from contracts.events.orders import OrderStatus
from contracts.types import DEFAULT_CURRENCY, Currency, Sku
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True, serialize_by_alias=True)


Quantity = Annotated[int, Field(gt=0, le=10_000)]


# ---------------------------------------------------------------- carts


class CartItemAdd(Request):
    sku: Sku
    quantity: Quantity


class CartItemUpdate(Request):
    quantity: Quantity


class CouponApply(Request):
    code: Annotated[str, StringConstraints(min_length=1, max_length=32, strip_whitespace=True)]


class CartItemPublic(Public):
    sku: str
    product_id: str | None
    name: str
    quantity: int
    unit_price: int
    line_total: int
    available: bool
    """False when the product is no longer for sale: it counts for nothing and blocks checkout."""


class CartPublic(Public):
    items: list[CartItemPublic]
    subtotal: int
    discount: int
    total: int
    """Subtotal minus discount; shipping is added at checkout from the chosen quote."""
    currency: str
    coupon_code: str | None
    coupon_problem: str | None = None
    item_count: int


# ---------------------------------------------------------------- coupons

CouponCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,32}$")]


class CouponCreate(Request):
    code: CouponCode
    kind: Literal["percentage", "fixed"]
    percent_off: Annotated[int, Field(ge=1, le=100)] | None = None
    amount_off: Annotated[int, Field(gt=0)] | None = None
    currency: Currency = DEFAULT_CURRENCY
    min_subtotal: Annotated[int, Field(ge=0)] = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: Annotated[int, Field(ge=1)] | None = None
    max_uses_per_user: Annotated[int, Field(ge=1)] | None = None
    active: bool = True

    @field_validator("code")
    @classmethod
    def _upper(cls, code: str) -> str:
        return code.upper()

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CouponCreate:
        if self.kind == "percentage" and (self.percent_off is None or self.amount_off is not None):
            raise ValueError("a percentage coupon needs percent_off (and no amount_off)")
        if self.kind == "fixed" and (self.amount_off is None or self.percent_off is not None):
            raise ValueError("a fixed coupon needs amount_off (and no percent_off)")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class CouponPublic(Public):
    code: str
    kind: str
    percent_off: int | None
    amount_off: int | None
    currency: str
    min_subtotal: int
    valid_from: datetime | None
    valid_until: datetime | None
    max_uses: int | None
    max_uses_per_user: int | None
    uses: int
    active: bool
    created_at: datetime


class CouponList(Public):
    items: list[CouponPublic]
    next_cursor: str | None


# ---------------------------------------------------------------- checkout and orders

BRAZILIAN_STATES = frozenset(
    {
        "AC",
        "AL",
        "AP",
        "AM",
        "BA",
        "CE",
        "DF",
        "ES",
        "GO",
        "MA",
        "MT",
        "MS",
        "MG",
        "PA",
        "PB",
        "PR",
        "PE",
        "PI",
        "RJ",
        "RN",
        "RS",
        "RO",
        "RR",
        "SC",
        "SP",
        "SE",
        "TO",
    }
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class ShippingAddressIn(Request):
    recipient: Text
    street: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    complement: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = (
        None
    )
    district: Text
    city: Text
    state: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
    cep: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{5}-?[0-9]{3}$")]
    country: Literal["BR"] = "BR"

    @field_validator("state")
    @classmethod
    def _known_state(cls, state: str) -> str:
        state = state.upper()
        if state not in BRAZILIAN_STATES:
            raise ValueError("not a Brazilian state (UF)")
        return state

    @field_validator("cep")
    @classmethod
    def _digits(cls, cep: str) -> str:
        return cep.replace("-", "")


class OrderCreate(Request):
    shipping_address: ShippingAddressIn
    shipping_quote_id: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    payment_method_id: Annotated[str, StringConstraints(pattern=r"^pm_[A-Za-z0-9_]{1,200}$")]
    """A Stripe PaymentMethod id (locally: localstripe, e.g. `pm_card_visa`)."""


class OrderLinePublic(Public):
    sku: str
    product_id: str
    name: str
    quantity: int
    unit_price: int
    line_total: int


class ShippingAddressPublic(Public):
    recipient: str
    street: str
    number: str
    complement: str | None = None
    district: str
    city: str
    state: str
    cep: str
    country: str


class ShippingChoicePublic(Public):
    carrier: str
    service: str
    price: int
    estimated_days: int


class StatusChangePublic(Public):
    from_: OrderStatus | None = Field(alias="from")
    to: OrderStatus
    reason: str
    at: datetime
    event_id: str | None = None
    event_type: str | None = None


class NextActionPublic(Public):
    type: str
    redirect_url: str | None = None
    client_secret: str | None = None


class PaymentPublic(Public):
    status: str
    payment_id: str | None = None
    payment_method_id: str | None = None
    next_action: NextActionPublic | None = None
    """What the customer must do to finish paying (3-D Secure), while AWAITING_PAYMENT."""


class IgnoredEventPublic(Public):
    event_id: str
    event_type: str
    order_status: str | None
    reason: str
    received_at: datetime


class OrderPublic(Public):
    id: str
    user_id: str
    status: OrderStatus
    lines: list[OrderLinePublic]
    subtotal: int
    discount: int
    shipping: int
    total: int
    currency: str
    coupon_code: str | None
    shipping_address: ShippingAddressPublic
    shipping_choice: ShippingChoicePublic
    payment: PaymentPublic
    history: list[StatusChangePublic]
    cancel_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    ignored_events: list[IgnoredEventPublic] | None = None
    """Admins only: events that arrived when they no longer fitted the order's state."""


class OrderSummary(Public):
    id: str
    user_id: str
    status: OrderStatus
    total: int
    currency: str
    item_count: int
    created_at: datetime
    updated_at: datetime


class OrderList(Public):
    items: list[OrderSummary]
    next_cursor: str | None


class OrderCancel(Request):
    reason: Annotated[str, StringConstraints(max_length=200)] | None = None
    """Free text kept in the status history."""


class StuckOrder(Public):
    id: str
    user_id: str
    status: OrderStatus
    status_changed_at: datetime
    stuck_for_seconds: float
    created_at: datetime
    total: int
    currency: str


class StuckOrderList(Public):
    items: list[StuckOrder]
    next_cursor: str | None
    thresholds: dict[str, float]
    """Seconds without a status change after which each status counts as stuck."""


class TimelineEventPublic(Public):
    id: str
    type: str
    source: str
    time: datetime
    subject: str
    topic: str
    correlation_id: str
    causation_id: str | None
    data: dict[str, Any] | None = None
    """The event payload (admins only)."""


class TimelinePublic(Public):
    order_id: str
    events: list[TimelineEventPublic]
