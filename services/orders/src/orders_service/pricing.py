"""Money rules of carts and checkout, in integer minor units: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.types import DEFAULT_CURRENCY


@dataclass(frozen=True, slots=True)
class PricedProduct:
    """A product as the catalog projection knows it."""

    product_id: str
    sku: str
    name: str
    price: int
    currency: str
    is_active: bool


@dataclass(frozen=True, slots=True)
class CouponTerms:
    id: str
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


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    quantity: int
    product: PricedProduct | None
    """None when the catalog does not know the sku (any more)."""
    in_cart_currency: bool = True
    """False when the product is priced in another currency than the cart's: the catalog moved
    it after it was added (additions and merges refuse a mix)."""

    @property
    def available(self) -> bool:
        return self.product is not None and self.product.is_active

    @property
    def unit_price(self) -> int:
        return self.product.price if self.product is not None else 0

    @property
    def line_total(self) -> int:
        """What the line adds to the subtotal: nothing unless it can be bought with this cart
        (amounts in two currencies are never added up)."""
        counted = self.available and self.in_cart_currency
        return self.unit_price * self.quantity if counted else 0


@dataclass(frozen=True, slots=True)
class PricedCart:
    lines: tuple[PricedLine, ...]
    subtotal: int
    discount: int
    currency: str
    coupon_code: str | None
    coupon_problem: str | None
    """Why the cart's coupon gives no discount right now, if it does not."""
    currency_problem: str | None = None
    """Which items for sale are priced in another currency (they count for nothing and block
    checkout), if any."""

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


def cart_currency(lines: tuple[PricedLine, ...]) -> str:
    """The currency of the cart's first item for sale (a withdrawn one counts for nothing),
    else of its first known item."""
    for line in (*(line for line in lines if line.available), *lines):
        if line.product is not None:
            return line.product.currency
    return DEFAULT_CURRENCY


def coupon_problem(
    coupon: CouponTerms, *, subtotal: int, currency: str, now: datetime
) -> str | None:
    """Why `coupon` cannot discount this subtotal now (limits per user are checked apart)."""
    if not coupon.active:
        return "coupon is no longer active"
    if coupon.valid_from is not None and now < coupon.valid_from:
        return "coupon is not valid yet"
    if coupon.valid_until is not None and now >= coupon.valid_until:
        return "coupon has expired"
    if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
        return "coupon has been used up"
    if coupon.currency != currency:
        return f"coupon is for {coupon.currency} carts"
    if subtotal < coupon.min_subtotal:
        return f"coupon needs a subtotal of at least {coupon.min_subtotal}"
    return None


def discount_for(coupon: CouponTerms, subtotal: int) -> int:
    """The amount off `subtotal`, never more than it. Percentages round down to whole minor
    units (integer arithmetic: no float ever touches money)."""
    if coupon.kind == "percentage":
        assert coupon.percent_off is not None
        return subtotal * coupon.percent_off // 100
    assert coupon.amount_off is not None
    return min(coupon.amount_off, subtotal)


def price_cart(
    items: tuple[tuple[str, int], ...],
    products: dict[str, PricedProduct],
    *,
    coupon_code: str | None,
    coupon: CouponTerms | None,
    now: datetime,
) -> PricedCart:
    looked_up = tuple(PricedLine(sku, quantity, products.get(sku)) for sku, quantity in items)
    currency = cart_currency(looked_up)
    lines = tuple(
        PricedLine(
            line.sku,
            line.quantity,
            line.product,
            in_cart_currency=line.product is None or line.product.currency == currency,
        )
        for line in looked_up
    )
    foreign = [line.sku for line in lines if line.available and not line.in_cart_currency]
    currency_problem = (
        f"not priced in {currency}, the cart's currency (remove to check out): "
        + ", ".join(foreign)
        if foreign
        else None
    )
    subtotal = sum(line.line_total for line in lines)
    discount = 0
    problem: str | None = None
    if coupon_code is not None:
        if coupon is None:
            problem = "coupon does not exist"
        else:
            problem = coupon_problem(coupon, subtotal=subtotal, currency=currency, now=now)
            if problem is None:
                discount = discount_for(coupon, subtotal)
    return PricedCart(lines, subtotal, discount, currency, coupon_code, problem, currency_problem)
