"""Events other services would publish, built with valid defaults."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from contracts.events.catalog import ProductCreated
from contracts.events.orders import OrderConfirmed, OrderLine, ShippingAddress, ShippingChoice

from contracts import new_id


def sku() -> str:
    return f"SKU-{secrets.token_hex(4).upper()}"


def product(
    *,
    sku_: str | None = None,
    weight_grams: int = 500,
    version: int = 1,
    is_active: bool = True,
    product_id: str | None = None,
) -> ProductCreated:
    code = sku_ or sku()
    return ProductCreated(
        product_id=product_id or new_id(),
        sku=code,
        name=f"Product {code}",
        slug=code.lower(),
        price=4990,
        currency="BRL",
        is_active=is_active,
        weight_grams=weight_grams,
        version=version,
        occurred_at=datetime.now(UTC),
    )


def address(**overrides: object) -> ShippingAddress:
    fields: dict[str, object] = {
        "recipient": "Maria Silva",
        "street": "Rua Augusta",
        "number": "1500",
        "complement": "apto 42",
        "district": "Consolação",
        "city": "São Paulo",
        "state": "SP",
        "cep": "01304001",
        "country": "BR",
    }
    fields.update(overrides)
    return ShippingAddress.model_validate(fields)


def order_confirmed(
    *,
    user_id: str,
    lines: list[tuple[str, int]],
    carrier: str = "correios",
    service: str = "SEDEX",
    order_id: str | None = None,
) -> OrderConfirmed:
    order_lines = [
        OrderLine(
            sku=code,
            product_id=new_id(),
            name=code,
            quantity=quantity,
            unit_price=4990,
            line_total=4990 * quantity,
        )
        for code, quantity in lines
    ]
    total = sum(line.line_total for line in order_lines) + 2990
    return OrderConfirmed(
        order_id=order_id or new_id(),
        user_id=user_id,
        payment_id=new_id(),
        lines=order_lines,
        total=total,
        currency="BRL",
        shipping_address=address(),
        shipping_choice=ShippingChoice(
            quote_id="signed-elsewhere",
            carrier=carrier,
            service=service,
            price=2990,
            estimated_days=2,
        ),
        confirmed_at=datetime.now(UTC),
    )
