"""The money rules on their own (pure functions): what a priced cart adds up."""

from __future__ import annotations

from datetime import UTC, datetime

from orders_service.pricing import PricedProduct, price_cart

from contracts import new_id


def _product(sku: str, price: int, currency: str, *, active: bool = True) -> PricedProduct:
    return PricedProduct(new_id(), sku, f"Product {sku}", price, currency, active)


def test_a_priced_cart_never_adds_up_different_currencies() -> None:
    """1000 USD + 5000 BRL was shown as a subtotal of 6000 USD."""
    products = {"A": _product("A", 1000, "USD"), "B": _product("B", 5000, "BRL")}
    cart = price_cart(
        (("A", 1), ("B", 1)), products, coupon_code=None, coupon=None, now=datetime.now(UTC)
    )
    assert cart.currency == "USD"
    assert cart.subtotal == 1000
    assert [line.line_total for line in cart.lines] == [1000, 0]
    assert cart.currency_problem is not None and "B" in cart.currency_problem


def test_the_cart_currency_is_that_of_the_items_for_sale() -> None:
    """A withdrawn item counts for nothing, so it does not set the currency either."""
    products = {
        "OLD": _product("OLD", 700, "USD", active=False),
        "A": _product("A", 1000, "BRL"),
    }
    cart = price_cart(
        (("OLD", 1), ("A", 2)), products, coupon_code=None, coupon=None, now=datetime.now(UTC)
    )
    assert (cart.currency, cart.subtotal, cart.currency_problem) == ("BRL", 2000, None)
