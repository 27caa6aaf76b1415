"""Checkout: the user's cart becomes a PENDING order and `OrderPlaced` starts the saga.

One transaction claims the Idempotency-Key, locks the cart, redeems the coupon, stores the
order with its lines, history and outbox event, and empties the cart. A retry with the same key
and body answers with the first response; the same key with another body is refused. Prices
are the catalog's at this moment; a client that sends `expected_total` (what it showed) gets a
409 instead of an order at another total.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.events.orders import OrderLine, OrderPlaced, ShippingAddress, ShippingChoice
from shopkit import quotes
from shopkit.erasure import AccountDeletedError

from contracts import new_id
from orders_service import errors
from orders_service.cache import CartCache, CartOwner, CartSnapshot
from orders_service.pricing import PricedProduct, discount_for
from orders_service.repository import carts, checkout, coupons, idempotency
from orders_service.repository.carts import PricedItems
from orders_service.repository.checkout import NewOrder
from orders_service.repository.erasure import ERASURES
from orders_service.schemas import OrderCreate, OrderPublic
from orders_service.service.transitions import RequestEmitter
from orders_service.session import Transaction


@dataclass(frozen=True, slots=True)
class CheckoutRules:
    quote_secret: str
    max_line_quantity: int


def request_hash(body: OrderCreate) -> str:
    fields = body.model_dump(mode="json")
    if fields["expected_total"] is None:
        # Left out, it is left out of the hash too: a body sent before the field existed keeps
        # the fingerprint its Idempotency-Key was stored with.
        del fields["expected_total"]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sellable_lines(
    cart: PricedItems, rules: CheckoutRules
) -> list[tuple[str, int, PricedProduct]]:
    if not cart.items:
        raise errors.EmptyCartError("add items to the cart before checking out")
    lines: list[tuple[str, int, PricedProduct]] = []
    for sku, quantity in cart.items:
        product = cart.products.get(sku)
        if product is None:
            raise errors.UnknownProductError(
                f"{sku} is not in the catalog; remove it from the cart"
            )
        if not product.is_active:
            raise errors.ProductUnavailableError(
                f"{sku} is no longer for sale; remove it from the cart"
            )
        if quantity > rules.max_line_quantity:
            raise errors.QuantityLimitError(f"at most {rules.max_line_quantity} units of {sku}")
        lines.append((sku, quantity, product))
    if len({product.currency for _, _, product in lines}) > 1:
        raise errors.CurrencyMismatchError("the cart mixes currencies")
    return lines


def _verified_quote(
    quote_id: str,
    *,
    rules: CheckoutRules,
    lines: list[tuple[str, int, PricedProduct]],
    cep: str,
    currency: str,
    now: datetime,
) -> quotes.SignedQuote:
    try:
        quote = quotes.verify_quote(quote_id, rules.quote_secret)
    except quotes.InvalidQuoteError as exc:
        raise errors.InvalidQuoteError(f"shipping quote rejected: {exc}") from exc
    if quote.is_expired(now):
        raise errors.ExpiredQuoteError("the shipping quote expired; ask for a new one")
    if not quote.covers([(sku, quantity) for sku, quantity, _ in lines]):
        raise errors.QuoteMismatchError(
            "the shipping quote was computed for other items; ask for a new one"
        )
    if quote.destination_cep != cep:
        raise errors.QuoteMismatchError("the shipping quote is for another CEP")
    if quote.currency != currency:
        raise errors.QuoteMismatchError(
            f"the shipping quote is in {quote.currency}, the cart in {currency}"
        )
    return quote


async def _redeem_coupon(
    tx: Transaction,
    *,
    code: str,
    order_id: str,
    user_id: str,
    subtotal: int,
    currency: str,
    now: datetime,
) -> int:
    """Take one use of the coupon for this order; returns the discount."""
    terms = await coupons.take_use(tx.session, code=code, now=now)
    if terms is None:
        raise errors.CouponInvalidError(
            f"coupon {code} can no longer be used; remove it from the cart"
        )
    if terms.currency != currency:
        raise errors.CouponInvalidError(f"coupon {code} is for {terms.currency} carts")
    if subtotal < terms.min_subtotal:
        raise errors.CouponInvalidError(
            f"coupon {code} needs a subtotal of at least {terms.min_subtotal}"
        )
    if terms.max_uses_per_user is not None:
        # The coupon row is locked by take_use, so this count cannot race another checkout.
        held = await coupons.held_by_user(tx.session, coupon_id=terms.id, user_id=user_id)
        if held >= terms.max_uses_per_user:
            raise errors.CouponInvalidError(f"you have used coupon {code} as often as it allows")
    discount = discount_for(terms, subtotal)
    await coupons.add_redemption(
        tx.session,
        order_id=order_id,
        coupon_id=terms.id,
        user_id=user_id,
        discount=discount,
        now=now,
    )
    return discount


async def place_order(
    *,
    tx: Transaction,
    cache: CartCache,
    user_id: str,
    idempotency_key: str,
    body: OrderCreate,
    customer_ip: str | None,
    rules: CheckoutRules,
) -> OrderPublic:
    session = tx.session
    fingerprint = request_hash(body)
    while True:
        start = await checkout.begin(
            session,
            user_id=user_id,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            now=datetime.now(UTC),
        )
        if start.claimed:
            break
        earlier = await idempotency.find(session, user_id=user_id, key=idempotency_key)
        if earlier is not None:
            if earlier.request_hash != fingerprint or earlier.response is None:
                raise errors.IdempotencyKeyReusedError(
                    "this Idempotency-Key was used for a different request; use a new key"
                )
            return OrderPublic.model_validate(earlier.response)
        # the earlier request's key expired between the two statements: claim it again

    # The account's token can outlive its deletion for a moment (auth revokes it in its own
    # consumer): a deleted account places nothing. Held until the commit, so an erasure that
    # starts meanwhile waits for this order and then anonymises it with the others.
    if await ERASURES.hold(session, user_id):
        raise AccountDeletedError("this account has been deleted; it can no longer place orders")

    # Taken after `begin` waited for the cart lock and the Idempotency-Key: a quote or coupon
    # that expired during that wait must be refused, not judged by the time the request came in.
    now = datetime.now(UTC)
    if start.cart is None:
        raise errors.EmptyCartError("add items to the cart before checking out")
    cart = start.cart
    lines = _sellable_lines(await carts.priced_items(session, cart.id), rules)
    currency = lines[0][2].currency
    address = body.shipping_address
    quote = _verified_quote(
        body.shipping_quote_id,
        rules=rules,
        lines=lines,
        cep=address.cep,
        currency=currency,
        now=now,
    )

    order_id = new_id()
    order_lines = [
        OrderLine(
            sku=sku,
            product_id=product.product_id,
            name=product.name,
            quantity=quantity,
            unit_price=product.price,
            line_total=product.price * quantity,
        )
        for sku, quantity, product in lines
    ]
    subtotal = sum(line.line_total for line in order_lines)
    coupon_code = cart.coupon_code
    discount = 0
    if coupon_code is not None:
        discount = await _redeem_coupon(
            tx,
            code=coupon_code,
            order_id=order_id,
            user_id=user_id,
            subtotal=subtotal,
            currency=currency,
            now=now,
        )
    total = subtotal - discount + quote.price
    if body.expected_total is not None and body.expected_total != total:
        # Raising rolls the whole transaction back: no order, the coupon use and the cart are
        # kept, and the Idempotency-Key is released rather than stored with this answer.
        raise errors.PriceChangedError(
            f"the total is now {total} {currency}, not the {body.expected_total} shown; "
            "show the new amounts and check out again",
            expected_total=body.expected_total,
            subtotal=subtotal,
            discount=discount,
            shipping=quote.price,
            total=total,
            currency=currency,
        )
    shipping_address = ShippingAddress(**address.model_dump())
    shipping_choice = ShippingChoice(
        quote_id=quote.quote_id,
        carrier=quote.carrier,
        service=quote.service,
        price=quote.price,
        estimated_days=quote.estimated_days,
    )
    order = NewOrder(
        order_id=order_id,
        user_id=user_id,
        currency=currency,
        subtotal=subtotal,
        discount=discount,
        shipping=quote.price,
        total=total,
        coupon_code=coupon_code,
        shipping_address=shipping_address.model_dump(mode="json"),
        shipping_choice=shipping_choice.model_dump(mode="json"),
        payment_method_id=body.payment_method_id,
        customer_ip=customer_ip,
        lines=[line.model_dump() for line in order_lines],
        placed_at=now,
    )
    response = _placed(order)
    cart_version = await checkout.place(
        session,
        order,
        cart_id=cart.id,
        idempotency_key=idempotency_key,
        response=response.model_dump(mode="json"),
    )
    # The saga starts from this event; its correlation id (the order id) ties the whole flow.
    await RequestEmitter(session, correlation_id=order_id)(
        OrderPlaced(
            order_id=order_id,
            user_id=user_id,
            lines=order_lines,
            subtotal=subtotal,
            discount=discount,
            shipping=order.shipping,
            total=order.total,
            currency=currency,
            coupon_code=coupon_code,
            shipping_address=shipping_address,
            shipping_choice=shipping_choice,
            payment_method_id=body.payment_method_id,
            customer_ip=customer_ip,
            placed_at=now,
        )
    )

    emptied = CartSnapshot(cart_version, (), None)
    owner = CartOwner.of_user(user_id)

    async def refresh_cart_copy() -> None:
        await cache.put(owner, emptied)

    tx.after_commit(refresh_cart_copy)
    return response


def _placed(order: NewOrder) -> OrderPublic:
    """The new order as GET /api/orders/{id} shows it, without reading it back."""
    return OrderPublic.model_validate(
        {
            "id": order.order_id,
            "user_id": order.user_id,
            "status": "PENDING",
            "lines": order.lines,
            "subtotal": order.subtotal,
            "discount": order.discount,
            "shipping": order.shipping,
            "total": order.total,
            "currency": order.currency,
            "coupon_code": order.coupon_code,
            "shipping_address": order.shipping_address,
            "shipping_choice": order.shipping_choice,
            "payment": {"status": "pending", "payment_method_id": order.payment_method_id},
            "history": [{"from": None, "to": "PENDING", "reason": "placed", "at": order.placed_at}],
            "created_at": order.placed_at,
            "updated_at": order.placed_at,
        }
    )
