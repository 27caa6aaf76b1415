"""Broken object level authorization: another customer can neither read nor change what is
Alice's, through any service, and cannot even learn that it exists.

Alice owns one of everything (a confirmed order with its payment, shipment, label and
timeline; an address; a wishlist entry; notifications; a cart). Bob, signed in, asks for each
by id and gets exactly the 404 a random id gets; his own listings and data exports never
contain any of it; admin views of it are 403 for him; and nothing of Alice's changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from shop_cli.client import DEMO_ADDRESS, Session, new_customer
from shopkit.testing import eventually

from contracts import new_id

from .conftest import TIMEOUT, Product, confirmed_order, not_yet


@dataclass
class AliceHas:
    alice: Session
    order: dict[str, Any]
    shipment: dict[str, Any]
    address: dict[str, Any]
    product_id: str
    deliveries: list[str]


@pytest.fixture(scope="module")
async def alice_has(http: httpx.AsyncClient, product: Product) -> AliceHas:
    alice = await new_customer(http, name="Alice Owner")
    order, shipment = await confirmed_order(alice, product)
    address = await alice.post("/api/users/me/addresses", {**DEMO_ADDRESS, "label": "Alice's home"})
    await eventually(
        lambda: not_yet(lambda: alice.post("/api/users/me/wishlist", {"product_id": product.id})),
        timeout=TIMEOUT,
        interval=0.5,
    )
    await alice.add_to_cart(product.sku, 2)  # a cart with something in it, not checked out

    async def notified() -> list[str]:
        return [d["id"] for d in (await alice.get("/api/notifications"))["items"]]

    deliveries = await eventually(notified, timeout=TIMEOUT, interval=0.5)
    return AliceHas(alice, order, shipment, address, product.id, deliveries)


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    return body


async def _as_unknown(bob: Session, method: str, path: str, real: str, **kw: Any) -> None:
    """Bob's request for Alice's `real` id is the same 404 problem as for an id nobody has."""
    mine = await bob.http.request(method, path, headers=bob.headers, **kw)
    other = await bob.http.request(method, path.replace(real, new_id()), headers=bob.headers, **kw)
    assert mine.status_code == 404, (method, path, mine.text)
    assert other.status_code == 404, (method, path, other.text)
    assert (_problem(mine)["type"], _problem(mine)["title"]) == (
        _problem(other)["type"],
        _problem(other)["title"],
    )


async def test_orders_payments_and_shipments_of_another_customer_are_not_found(
    alice_has: AliceHas, customer: Session
) -> None:
    bob, order_id = customer, alice_has.order["id"]
    shipment_id = alice_has.shipment["shipment_id"]
    for method, path in (
        ("GET", f"/api/orders/{order_id}"),
        ("GET", f"/api/orders/{order_id}/timeline"),
        ("POST", f"/api/orders/{order_id}/cancel"),
        ("GET", f"/api/payments/orders/{order_id}"),
        ("GET", f"/api/shipping/orders/{order_id}"),
    ):
        await _as_unknown(bob, method, path, order_id)
    for path in (
        f"/api/shipping/shipments/{shipment_id}",
        f"/api/shipping/shipments/{shipment_id}/label",
        f"/api/shipping/shipments/{shipment_id}/label?format=zpl",
    ):
        await _as_unknown(bob, "GET", path, shipment_id)

    # Alice's order did not move, and is still hers to see in full.
    mine = await alice_has.alice.order(order_id)
    assert mine["status"] == "CONFIRMED"
    assert (await alice_has.alice.get(f"/api/payments/orders/{order_id}"))["order_id"] == order_id
    label = await alice_has.alice.http.get(
        f"/api/shipping/shipments/{shipment_id}/label", headers=alice_has.alice.headers
    )
    assert label.status_code == 200 and label.content.startswith(b"%PDF")


async def test_address_book_wishlist_and_cart_are_per_customer(
    alice_has: AliceHas, customer: Session
) -> None:
    bob, address_id = customer, alice_has.address["id"]
    url = f"/api/users/me/addresses/{address_id}"
    await _as_unknown(bob, "GET", url, address_id)
    await _as_unknown(bob, "PATCH", url, address_id, json={"street": "Rua do Intruso"})
    await _as_unknown(bob, "DELETE", url, address_id)
    assert (await alice_has.alice.get(url))["street"] == DEMO_ADDRESS["street"]

    # Bob removing "the" product from his wishlist touches his list only.
    removed = await bob.http.delete(
        f"/api/users/me/wishlist/{alice_has.product_id}", headers=bob.headers
    )
    assert removed.status_code == 204
    alices = await alice_has.alice.get("/api/users/me/wishlist")
    assert [i["product_id"] for i in alices["items"]] == [alice_has.product_id]

    assert (await bob.get("/api/users/me/addresses"))["items"] == []
    assert (await bob.get("/api/users/me/wishlist"))["items"] == []
    assert (await bob.cart())["items"] == []
    assert (await alice_has.alice.cart())["items"][0]["quantity"] == 2


async def test_listings_and_exports_hold_nothing_of_another_customer(
    alice_has: AliceHas, customer: Session
) -> None:
    bob = customer
    alice_values = {
        alice_has.alice.user_id,
        alice_has.alice.email,
        alice_has.order["id"],
        alice_has.shipment["shipment_id"],
        alice_has.shipment["tracking_number"],
        alice_has.address["id"],
        *alice_has.deliveries,
    }
    bobs = [
        await bob.get("/api/orders"),
        await bob.get("/api/notifications"),
        await bob.get("/api/shipping/shipments"),
        await bob.get("/api/shipping/me/export"),
        await bob.get("/api/notifications/me/export"),
        await bob.get("/api/users/me/export"),
        await bob.get("/api/auth/login-history"),
    ]
    seen = str(bobs)
    leaked = sorted(value for value in alice_values if value in seen)
    assert leaked == [], leaked
    assert bobs[0]["items"] == [] and bobs[2]["items"] == []
    # ... while Alice's own export does hold them (the check above could not pass vacuously).
    alices = str(await alice_has.alice.get("/api/users/me/export"))
    assert alice_has.order["id"] in alices and alice_has.address["id"] in alices


async def test_admin_views_of_alices_things_are_forbidden_to_bob(
    alice_has: AliceHas, customer: Session
) -> None:
    bob, order_id = customer, alice_has.order["id"]
    for method, path, body, headers in (
        ("GET", f"/api/inventory/reservations/{order_id}", None, {}),
        (
            "POST",
            f"/api/payments/orders/{order_id}/refunds",
            {"amount": 1, "reason": "mine now"},
            {"Idempotency-Key": new_id()},
        ),
        ("POST", f"/api/notifications/admin/deliveries/{alice_has.deliveries[0]}/resend", None, {}),
        ("GET", f"/api/orders/admin?user_id={alice_has.alice.user_id}", None, {}),
        ("GET", f"/api/notifications/admin/deliveries?user_id={alice_has.alice.user_id}", None, {}),
    ):
        response = await bob.http.request(
            method, path, json=body, headers={**bob.headers, **headers}
        )
        assert response.status_code == 403, (method, path, response.text)
        _problem(response)


async def test_identity_headers_from_clients_are_not_believed(
    alice_has: AliceHas, customer: Session
) -> None:
    """The gateway drops identity headers a client sends; services go by the token alone."""
    bob, order_id = customer, alice_has.order["id"]
    spoofed = {
        **bob.headers,
        "X-User-Id": alice_has.alice.user_id,
        "X-User-Roles": "admin",
        "X-Forwarded-User": alice_has.alice.user_id,
        "X-Auth-Request-User": alice_has.alice.user_id,
    }
    responses = await asyncio.gather(
        bob.http.get(f"/api/orders/{order_id}", headers=spoofed),
        bob.http.get("/api/auth/me", headers=spoofed),
        bob.http.get("/api/orders/admin", headers=spoofed),
    )
    assert responses[0].status_code == 404
    assert responses[1].json()["id"] == bob.user_id
    assert responses[2].status_code == 403
