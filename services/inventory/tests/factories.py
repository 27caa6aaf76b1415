"""Saga events as the other services send them (valid contracts, realistic values)."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.events.catalog import ProductCreated
from contracts.events.orders import (
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    ShippingAddress,
    ShippingChoice,
)
from contracts.events.payments import NextAction, PaymentActionRequired, PaymentFailed
from contracts.events.shipping import ShipmentCancelled
from contracts.types import utc_now

from contracts import new_id

ADDRESS = ShippingAddress(
    recipient="Ana Souza",
    street="Rua Augusta",
    number="1500",
    district="Consolação",
    city="São Paulo",
    state="SP",
    cep="01304001",
)
CHOICE = ShippingChoice(
    quote_id="q-test", carrier="correios", service="PAC", price=2500, estimated_days=5
)


def order_lines(items: Sequence[tuple[str, int]]) -> list[OrderLine]:
    return [
        OrderLine(
            sku=sku,
            product_id=new_id(),
            name=f"Produto {sku}",
            quantity=quantity,
            unit_price=1990,
            line_total=1990 * quantity,
        )
        for sku, quantity in items
    ]


def order_placed(order_id: str, items: Sequence[tuple[str, int]], user_id: str = "") -> OrderPlaced:
    lines = order_lines(items)
    subtotal = sum(line.line_total for line in lines)
    return OrderPlaced(
        order_id=order_id,
        user_id=user_id or new_id(),
        lines=lines,
        subtotal=subtotal,
        discount=0,
        shipping=CHOICE.price,
        total=subtotal + CHOICE.price,
        currency="BRL",
        shipping_address=ADDRESS,
        shipping_choice=CHOICE,
        payment_method_id="pm_card_visa",
        placed_at=utc_now(),
    )


def order_confirmed(placed: OrderPlaced) -> OrderConfirmed:
    return OrderConfirmed(
        order_id=placed.order_id,
        user_id=placed.user_id,
        payment_id=new_id(),
        lines=placed.lines,
        total=placed.total,
        currency=placed.currency,
        shipping_address=placed.shipping_address,
        shipping_choice=placed.shipping_choice,
        confirmed_at=utc_now(),
    )


def order_cancelled(
    placed: OrderPlaced, previous_status: OrderStatus = "PENDING"
) -> OrderCancelled:
    return OrderCancelled(
        order_id=placed.order_id,
        user_id=placed.user_id,
        reason="customer_request",
        previous_status=previous_status,
        cancelled_at=utc_now(),
    )


def shipment_cancelled(placed: OrderPlaced) -> ShipmentCancelled:
    return ShipmentCancelled(
        shipment_id=new_id(),
        order_id=placed.order_id,
        user_id=placed.user_id,
        reason="customer_request",
        cancelled_at=utc_now(),
    )


def payment_failed(placed: OrderPlaced) -> PaymentFailed:
    return PaymentFailed(
        order_id=placed.order_id,
        payment_id=new_id(),
        reason="declined",
        decline_code="card_declined",
        failed_at=utc_now(),
    )


def payment_action_required(placed: OrderPlaced) -> PaymentActionRequired:
    return PaymentActionRequired(
        order_id=placed.order_id,
        payment_id=new_id(),
        provider_payment_id="pi_test_3ds",
        next_action=NextAction(type="redirect_to_url", redirect_url="https://example.test/3ds"),
        amount=placed.total,
        currency=placed.currency,
    )


def product_created(sku: str, product_id: str = "") -> ProductCreated:
    return ProductCreated(
        product_id=product_id or new_id(),
        sku=sku,
        name=f"Produto {sku}",
        slug=sku.lower(),
        price=1990,
        currency="BRL",
        category_ids=[],
        is_active=True,
        weight_grams=300,
        version=1,
        occurred_at=utc_now(),
    )
