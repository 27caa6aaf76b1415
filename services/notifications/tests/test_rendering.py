"""Every template renders in both languages; money reads as the customer expects."""

from __future__ import annotations

from typing import Any

import pytest
from notifications_service.rendering import LANGUAGES, money, render

CONTEXTS: dict[str, dict[str, Any]] = {
    "welcome": {},
    "password_reset": {"reset_url": "http://s/reset?token=abc", "expires_at": "2026-01-01 10:00"},
    "order_confirmed": {
        "order_id": "0192aaaa-bbbb-7ccc-8ddd-eeeeffff0001",
        "total": 10470,
        "currency": "BRL",
        "carrier": "correios",
        "service": "PAC",
        "estimated_days": 6,
        "lines": [{"name": "Livro", "quantity": 2, "line_total": 7980}],
    },
    "order_cancelled": {
        "order_id": "0192aaaa-bbbb-7ccc-8ddd-eeeeffff0002",
        "reason": "payment_failed",
    },
    "order_shipped": {
        "order_id": "0192aaaa-bbbb-7ccc-8ddd-eeeeffff0003",
        "carrier": "veloz",
        "tracking_number": "VEL000000000001",
        "tracking_url": "http://s/t",
    },
    "order_delivered": {
        "order_id": "0192aaaa-bbbb-7ccc-8ddd-eeeeffff0004",
        "tracking_number": "PN123456785BR",
    },
    "payment_refunded": {
        "order_id": "0192aaaa-bbbb-7ccc-8ddd-eeeeffff0005",
        "amount": 123456,
        "currency": "BRL",
        "full": True,
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_every_template_renders(template: str, language: str) -> None:
    rendered = render(
        template, language, {"name": "Ana <b>", "storefront_url": "http://s", **CONTEXTS[template]}
    )
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.html.startswith(f'<!doctype html><html lang="{language}">')
    assert "Ana &lt;b&gt;" in rendered.html or template in ("password_reset",)
    if template in ("welcome", "password_reset"):
        assert rendered.sms == ""
    else:
        assert rendered.sms.startswith("Shop:")
        assert len(rendered.sms) <= 160


def test_languages_differ() -> None:
    context = {"storefront_url": "http://s", "name": None, **CONTEXTS["order_delivered"]}
    assert render("order_delivered", "pt-BR", context).subject.startswith("Pedido")
    assert render("order_delivered", "en", context).subject.startswith("Order")
    cancelled = {"storefront_url": "http://s", "name": None, **CONTEXTS["order_cancelled"]}
    assert "pagamento recusado" in render("order_cancelled", "pt-BR", cancelled).text
    assert "payment declined" in render("order_cancelled", "en", cancelled).text


@pytest.mark.parametrize(
    ("amount", "language", "expected"),
    [
        (0, "pt-BR", "R$ 0,00"),
        (5, "pt-BR", "R$ 0,05"),
        (123456789, "pt-BR", "R$ 1.234.567,89"),
        (123456789, "en", "BRL 1,234,567.89"),
    ],
)
def test_money(amount: int, language: str, expected: str) -> None:
    assert money(amount, "BRL", language) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_order_confirmation_adds_up_to_its_total(language: str) -> None:
    """The email listed the lines and the total only: with a coupon and shipping, the figures
    the customer read did not add up."""
    context = {
        **CONTEXTS["order_confirmed"],
        "subtotal": 7980,
        "discount": 798,
        "coupon_code": "BEMVINDO10",
        "shipping": 2490,
        "total": 7980 - 798 + 2490,
    }
    rendered = render("order_confirmed", language, {"name": "Ana", **context})
    for amount in (7980, 798, 2490, 9672):
        shown = money(amount, "BRL", language)
        assert shown in rendered.text and shown in rendered.html, (amount, rendered.text)
    assert "BEMVINDO10" in rendered.text
