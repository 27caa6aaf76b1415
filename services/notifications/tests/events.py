"""Events other services publish, with valid defaults."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.events.orders import OrderConfirmed, OrderLine, ShippingAddress, ShippingChoice
from contracts.events.shipping import ShipmentDelivered, ShipmentDispatched

from contracts import new_id


def order_confirmed(user_id: str, *, order_id: str | None = None) -> OrderConfirmed:
    lines = [
        OrderLine(
            sku="BOOK-1",
            product_id=new_id(),
            name="Dom Casmurro",
            quantity=2,
            unit_price=3990,
            line_total=7980,
        )
    ]
    return OrderConfirmed(
        order_id=order_id or new_id(),
        user_id=user_id,
        payment_id=new_id(),
        lines=lines,
        total=7980 + 2490,
        currency="BRL",
        shipping_address=ShippingAddress(
            recipient="Ana Souza",
            street="Rua A",
            number="1",
            district="Centro",
            city="São Paulo",
            state="SP",
            cep="01001000",
        ),
        shipping_choice=ShippingChoice(
            quote_id="q", carrier="correios", service="PAC", price=2490, estimated_days=6
        ),
        confirmed_at=datetime.now(UTC),
    )


def dispatched(user_id: str, order_id: str) -> ShipmentDispatched:
    return ShipmentDispatched(
        shipment_id=new_id(),
        order_id=order_id,
        user_id=user_id,
        carrier="correios",
        tracking_number="PN123456785BR",
        dispatched_at=datetime.now(UTC),
    )


def delivered(user_id: str, order_id: str) -> ShipmentDelivered:
    return ShipmentDelivered(
        shipment_id=new_id(),
        order_id=order_id,
        user_id=user_id,
        skus=["BOOK-1"],
        tracking_number="PN123456785BR",
        delivered_at=datetime.now(UTC),
    )
