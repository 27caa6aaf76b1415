"""GET /api/users/me/export (LGPD/GDPR access request) on the running stack: a customer with an
account, an order and a review finds their data from every service in one document, and
another customer finds none of it."""

from __future__ import annotations

from typing import Any

import httpx
from shop_cli.client import ApiError, Session, new_customer
from shopkit.testing import eventually

from .conftest import TIMEOUT, Catalog, buy

SOURCES = {"auth", "catalog", "orders", "payments", "shipping", "notifications"}


async def _export(customer: Session) -> dict[str, Any] | None:
    """The export, or None while users has not yet made the profile (from UserRegistered)."""
    try:
        return await customer.get("/api/users/me/export")  # type: ignore[no-any-return]
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None


async def test_export_gathers_every_services_data(
    customer: Session, catalog: Catalog, http: httpx.AsyncClient
) -> None:
    placed = await buy(customer, [(catalog.skus[2], 1)])
    order = await customer.wait_for(placed["id"], {"CONFIRMED", "SHIPPED"}, TIMEOUT)
    [line] = order["lines"]
    review = await customer.post(
        f"/api/products/{line['product_id']}/reviews",
        {"rating": 5, "title": "Ótimo", "text": "Exportado inteiro"},
    )

    async def complete() -> dict[str, Any] | None:
        # Shipping makes the shipment and notifications learns the contact from events.
        export = await _export(customer)
        if export is None:
            return None
        sections = export["services"]
        ready = all(sections[name]["status"] == "ok" for name in SOURCES) and (
            sections["shipping"]["data"]["shipments"]
            and sections["notifications"]["data"]["contact"]
        )
        return export if ready else None

    export = await eventually(complete, timeout=TIMEOUT, interval=0.5)

    assert export["user_id"] == customer.user_id
    assert set(export["services"]) == SOURCES
    data = {name: section["data"] for name, section in export["services"].items()}
    assert data["auth"]["account"]["email"] == customer.email
    assert data["auth"]["login_history"][0]["outcome"] == "success"
    assert [o["id"] for o in data["orders"]["orders"]] == [order["id"]]
    assert (
        data["orders"]["orders"][0]["shipping_address"]["cep"] == order["shipping_address"]["cep"]
    )
    [written] = data["catalog"]["reviews"]
    assert (written["id"], written["product_id"], written["rating"]) == (
        review["id"],
        line["product_id"],
        5,
    )
    [paid] = data["payments"]["orders"]
    assert paid["order_id"] == order["id"]
    assert paid["amount"] == order["total"]
    assert paid["attempts"][0]["card_last4"] == "4242"
    assert [s["order_id"] for s in data["shipping"]["shipments"]] == [order["id"]]
    assert data["notifications"]["contact"]["email"] == customer.email
    assert customer.access_token not in str(export)

    stranger = await new_customer(http, name="Bruno Lima")

    async def every_source_answered() -> dict[str, Any] | None:
        # A source slower than the export's per-service budget (loaded machine) answers later.
        export = await _export(stranger)
        if export is None:
            return None
        sections = export["services"]
        return export if all(sections[name]["status"] == "ok" for name in SOURCES) else None

    theirs = await eventually(every_source_answered, timeout=TIMEOUT, interval=0.5)
    sections = theirs["services"]
    assert {name for name in SOURCES if sections[name]["status"] == "ok"} == SOURCES
    assert sections["orders"]["data"]["orders"] == []
    assert sections["catalog"]["data"]["reviews"] == []
    assert sections["payments"]["data"]["orders"] == []
    assert sections["shipping"]["data"]["shipments"] == []
    assert order["id"] not in str(theirs)


async def test_each_services_export_refuses_an_anonymous_caller(http: httpx.AsyncClient) -> None:
    # /api/products/** reads are public at the gateway: the catalog itself asks for the token.
    for path in (
        "/api/users/me/export",
        "/api/auth/me/export",
        "/api/orders/me/export",
        "/api/products/me/export",
        "/api/payments/me/export",
        "/api/shipping/me/export",
        "/api/notifications/me/export",
    ):
        response = await http.get(path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json", path
