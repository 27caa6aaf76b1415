"""Request and response models of the orders API (shapes fixed by API.md, extended here).

Request fields are documented exactly as they are validated (see `shopkit.params`): a request
matching the schema is never refused for its shape; what it asks may still conflict with the
cart or the catalog (409) or name something that does not exist (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from contracts.events.orders import OrderStatus
from contracts.types import DEFAULT_CURRENCY, Currency
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from shopkit.cep import format_cep, matches_state, region_of
from shopkit.params import (
    CEP_MATCHES_STATE,
    NO_CONTROL,
    SINGLE_LINE,
    Cep,
    DateTime,
    JsonInteger,
    Sku,
    Stripped,
    Uf,
)

from orders_service.config import LINE_QUANTITY_CEILING
from orders_service.models import STATUS_NOTE_LENGTH
from orders_service.state import StuckReason


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


CURSOR_PATTERN = r"^[A-Za-z0-9_=-]{1,512}$"
Cursor = Annotated[
    Annotated[str, StringConstraints(pattern=CURSOR_PATTERN)] | None,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CURSOR_PATTERN,
            "description": "`next_cursor` of the previous page, as issued; a cursor this API "
            "did not issue points to no page (404).",
        }
    ),
]


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True, serialize_by_alias=True)


# The schema is built once for every configuration, so it can only bound the quantity by the
# highest limit a shop may configure; the configured limit is the service's 409 (carts.py), the
# same check that refuses an addition or a merge passing it.
MAX_LINE_QUANTITY: int = LINE_QUANTITY_CEILING
Quantity = Annotated[
    int,
    Field(
        gt=0,
        le=MAX_LINE_QUANTITY,
        description="Units of one item. Above the shop's configured per-line limit (50 unless "
        "configured) the answer is 409 `quantity-limit`, as it is when an addition would pass it.",
    ),
    JsonInteger,
]


# ---------------------------------------------------------------- carts


class CartItemAdd(Request):
    sku: Sku
    quantity: Quantity


class CartItemUpdate(Request):
    quantity: Quantity


COUPON_CODE_PATTERN = r"^[A-Za-z0-9_-]{3,32}$"
CouponCode = Annotated[str, StringConstraints(pattern=COUPON_CODE_PATTERN)]
"""Letters (any case: codes are compared upper-cased), digits, `_` and `-`."""


class CouponApply(Request):
    code: CouponCode


class CartItemPublic(Public):
    sku: str
    product_id: str | None
    name: str
    quantity: int
    unit_price: int
    line_total: int
    """What the line adds to the subtotal: 0 when it is not available, or not priced in the
    cart's currency."""
    available: bool
    """False when the product is no longer for sale: it counts for nothing and blocks checkout."""
    currency: str | None = None
    """The currency of `unit_price` (None for a sku the catalog does not know); one that is not
    the cart's counts for nothing and blocks checkout (see `currency_problem`)."""


class CartPublic(Public):
    items: list[CartItemPublic]
    subtotal: int
    discount: int
    total: int
    """Subtotal minus discount; shipping is added at checkout from the chosen quote."""
    currency: str
    coupon_code: str | None
    coupon_problem: str | None = None
    currency_problem: str | None = None
    """Set when items for sale are priced in another currency than the cart's (the catalog
    changed it after they were added): they count for nothing until removed."""
    item_count: int


# ---------------------------------------------------------------- coupons

MAX_AMOUNT = 10_000_000_000
"""Minor units: far above any order, far below a BIGINT."""
MAX_COUNT = 2**31 - 1
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT), JsonInteger]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT), JsonInteger]

_COUPON_KINDS: list[Any] = [
    {
        "properties": {
            "kind": {"const": "percentage"},
            "percent_off": {"type": "integer"},
            "amount_off": {"type": "null"},
        },
        "required": ["percent_off"],
    },
    {
        "properties": {
            "kind": {"const": "fixed"},
            "amount_off": {"type": "integer"},
            "percent_off": {"type": "null"},
        },
        "required": ["amount_off"],
    },
]


class CouponCreate(Request):
    """A percentage coupon has `percent_off` and no `amount_off`; a fixed one the reverse.
    A validity window that ends before it starts is a coupon that never applies."""

    model_config = ConfigDict(json_schema_extra={"oneOf": _COUPON_KINDS})

    code: CouponCode
    kind: Literal["percentage", "fixed"]
    percent_off: Annotated[int, Field(ge=1, le=100), JsonInteger] | None = None
    amount_off: Annotated[int, Field(gt=0, le=MAX_AMOUNT), JsonInteger] | None = None
    currency: Currency = DEFAULT_CURRENCY
    min_subtotal: Amount = 0
    valid_from: DateTime | None = None
    valid_until: DateTime | None = None
    max_uses: Count | None = None
    max_uses_per_user: Count | None = None
    active: StrictBool = True

    @field_validator("code")
    @classmethod
    def _upper(cls, code: str) -> str:
        return code.upper()

    @model_validator(mode="after")
    def _consistent(self) -> CouponCreate:
        if self.kind == "percentage" and (self.percent_off is None or self.amount_off is not None):
            raise ValueError("a percentage coupon needs percent_off (and no amount_off)")
        if self.kind == "fixed" and (self.amount_off is None or self.percent_off is not None):
            raise ValueError("a fixed coupon needs amount_off (and no percent_off)")
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

Text = Annotated[str, StringConstraints(max_length=120, pattern=SINGLE_LINE), Stripped]
Complement = Annotated[str, StringConstraints(max_length=120, pattern=NO_CONTROL), Stripped]


class ShippingAddressIn(Request):
    """A Brazilian address; the CEP must lie in the state's Correios ranges (the quote is
    priced for the CEP, the label names the state: they must be the same place)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": CEP_MATCHES_STATE})

    recipient: Text
    street: Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]
    number: Annotated[str, StringConstraints(max_length=20, pattern=SINGLE_LINE), Stripped]
    complement: (
        Annotated[str, StringConstraints(max_length=120, pattern=NO_CONTROL), Stripped] | None
    ) = None
    district: Text
    city: Text
    state: Uf
    cep: Cep
    """A CEP the Correios allocate; the shipping quote must be for the same one."""
    country: Literal["BR"] = "BR"

    @field_validator("cep")
    @classmethod
    def _digits_in_state(cls, value: str, info: ValidationInfo) -> str:
        digits = value.replace("-", "")
        # `state` is declared first, so it is here unless it was refused itself.
        state = info.data.get("state")
        if state is not None and not matches_state(digits, state):
            raise PydanticCustomError(
                "cep_state_mismatch",
                "CEP {cep} is in {cep_state}, not {state}",
                {"cep": format_cep(digits), "cep_state": region_of(digits).state, "state": state},
            )
        return digits


EXPECTED_TOTAL_DOC = (
    "The total (minor units, the cart's currency) the customer was shown and agreed to: the "
    "cart's `total` plus the chosen quote's `price`. When the total computed now differs (a "
    "price changed in between, the coupon no longer gives the same discount) the order is not "
    "placed: 409 `price-changed`, with the current `subtotal`, `discount`, `shipping`, `total` "
    "and `currency` in the problem, the cart and the coupon left as they were. Left out, the "
    "order is placed at the prices of the moment."
)

QUOTE_ID_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


class OrderCreate(Request):
    shipping_address: ShippingAddressIn
    shipping_quote_id: Annotated[str, StringConstraints(max_length=8192, pattern=QUOTE_ID_PATTERN)]
    """A `quote_id` from POST /api/shipping/quotes (signed by shipping: one that does not verify
    is a 404, an expired one or one for other items or another CEP a 409)."""
    payment_method_id: Annotated[str, StringConstraints(pattern=r"^pm_[A-Za-z0-9_]{1,200}$")]
    """A Stripe PaymentMethod id (locally: localstripe, e.g. `pm_card_visa`)."""
    expected_total: Annotated[Amount | None, Field(description=EXPECTED_TOTAL_DOC)] = None


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


class CancellationPublic(Public):
    """A cancellation asked of a confirmed order: only shipping can say whether its parcel is
    still stoppable, so it stays `requested` until then."""

    status: Literal["requested", "accepted", "refused"]
    """`accepted`: the order is CANCELLED; `refused`: its parcel had already left (SHIPPED)."""
    reason: str
    requested_at: datetime


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
    cancellation: CancellationPublic | None = None
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
    reason: (
        Annotated[str, StringConstraints(max_length=STATUS_NOTE_LENGTH, pattern=NO_CONTROL)] | None
    ) = None
    """Free text kept whole in the status history: a longer one is refused (422), not cut."""


class StuckOrder(Public):
    id: str
    user_id: str
    status: OrderStatus
    status_changed_at: datetime
    reason: StuckReason
    """`cancellation_unanswered`: shipping never answered the order's cancellation request
    (ask again with POST /api/orders/{id}/cancel); otherwise the status's own threshold."""
    stuck_since: datetime
    """When the wait began: the cancellation request, or the last status change."""
    stuck_for_seconds: float
    created_at: datetime
    total: int
    currency: str


class StuckOrderList(Public):
    items: list[StuckOrder]
    next_cursor: str | None
    thresholds: dict[str, float]
    """Seconds without a status change after which each status counts as stuck."""
    thresholds_by_reason: dict[StuckReason, float]
    """Seconds of waiting after which each reason counts as stuck (an unanswered cancellation
    request is stuck long before its CONFIRMED order's fulfilment threshold)."""


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


# ---------------------------------------------------------------- data export


class CouponRedemptionPublic(Public):
    order_id: str
    code: str
    discount: int
    redeemed_at: datetime
    released_at: datetime | None
    """Set when the order was cancelled and the use given back."""


class OrdersExport(Public):
    """Everything orders holds about the caller (LGPD/GDPR access request)."""

    user_id: str
    orders: list[OrderPublic]
    """Oldest first, each with its lines, address snapshot and status history."""
    cart: CartPublic
    coupon_redemptions: list[CouponRedemptionPublic]
