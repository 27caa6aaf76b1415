"""The demo's story as assertions: every saga path through the public API, with the final
state of order, stock, payment, shipment and notifications checked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

from shop_cli.client import (
    DECLINED_CARD,
    ROOT,
    THREE_DS_CARD,
    ApiError,
    Session,
)
from shopkit.testing import eventually

from .conftest import TIMEOUT, Catalog, buy


async def _stock(session: Session, sku: str) -> dict[str, Any]:
    # Anyone reads on_hand, reserved and available; `committed` is the admin's view.
    return await session.get(f"/api/inventory/{sku}")  # type: ignore[no-any-return]


async def _payments(session: Session, order_id: str) -> dict[str, Any]:
    return await session.get(f"/api/payments/orders/{order_id}")  # type: ignore[no-any-return]


def _history(order: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(change.get("from"), change["to"]) for change in order["history"]]


async def test_good_card_with_coupon_is_confirmed_shipped_delivered_and_refunded(
    customer: Session, admin: Session, catalog: Catalog
) -> None:
    coupon = f"E2E{catalog.skus[0][-8:].replace('-', '')}"
    await admin.create_coupon(coupon, 10)
    before = await _stock(admin, catalog.skus[0])
    placed = await buy(customer, [(catalog.skus[0], 2), (catalog.skus[1], 1)], coupon=coupon)
    assert placed["status"] == "PENDING"
    subtotal = 2 * catalog.prices[catalog.skus[0]] + catalog.prices[catalog.skus[1]]
    assert placed["subtotal"] == subtotal
    assert placed["discount"] == subtotal // 10
    assert placed["total"] == subtotal - placed["discount"] + placed["shipping"]

    order = await customer.wait_for(placed["id"], {"CONFIRMED"}, TIMEOUT)
    payment = await _payments(customer, order["id"])
    assert payment["amount_authorized"] == order["total"]
    assert payment["currency"] == order["currency"]
    stock = await eventually(
        lambda: _committed(admin, catalog.skus[0], before["committed"] + 2), timeout=TIMEOUT
    )
    assert stock["on_hand"] == before["on_hand"] - 2

    shipment = await eventually(lambda: _shipment(customer, order["id"]), timeout=TIMEOUT)
    simulated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shop_cli.main", "carrier", "simulate", shipment["tracking_number"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert simulated.returncode == 0, simulated.stderr
    order = await customer.wait_for(order["id"], {"DELIVERED"}, TIMEOUT)
    assert [to for _, to in _history(order)][-3:] == ["CONFIRMED", "SHIPPED", "DELIVERED"]
    payment = await eventually(
        lambda: _captured(customer, order["id"], order["total"]), timeout=TIMEOUT
    )
    assert payment["amount_captured"] == order["total"]

    refund = await admin.post(
        f"/api/payments/orders/{order['id']}/refunds",
        {"amount": 500, "reason": "scratched"},
        headers={"Idempotency-Key": f"e2e-{order['id']}"},
    )
    again = await admin.post(
        f"/api/payments/orders/{order['id']}/refunds",
        {"amount": 500, "reason": "scratched"},
        headers={"Idempotency-Key": f"e2e-{order['id']}"},
    )
    assert again["refund_id"] == refund["refund_id"]
    payment = await eventually(lambda: _refunded(customer, order["id"], 500), timeout=TIMEOUT)
    assert payment["amount_refunded"] == 500  # the same key refunded once

    notifications = await eventually(
        lambda: _templates(
            customer,
            {"welcome", "order_confirmed", "order_shipped", "order_delivered", "payment_refunded"},
        ),
        timeout=TIMEOUT,
    )
    assert notifications


async def test_declined_card_cancels_the_order_and_releases_the_stock(
    customer: Session, catalog: Catalog
) -> None:
    before = await _stock(customer, catalog.skus[2])
    placed = await buy(customer, [(catalog.skus[2], 3)], DECLINED_CARD)
    order = await customer.wait_for(placed["id"], {"CANCELLED"}, TIMEOUT)
    assert order["status"] == "CANCELLED"
    payment = await _payments(customer, order["id"])
    assert payment["amount_authorized"] == 0
    assert payment["attempts"][0]["status"] == "failed"
    await eventually(
        lambda: _available(customer, catalog.skus[2], before["available"]), timeout=TIMEOUT
    )


async def test_3ds_card_waits_for_the_customer_then_confirms(
    customer: Session, catalog: Catalog
) -> None:
    placed = await buy(customer, [(catalog.skus[3], 1)], THREE_DS_CARD)
    waiting = await customer.wait_for(placed["id"], {"AWAITING_PAYMENT"}, TIMEOUT)
    assert waiting["payment"]["next_action"]["client_secret"]
    await customer.complete_3ds(waiting)
    order = await customer.wait_for(placed["id"], {"CONFIRMED"}, TIMEOUT)
    assert ("AWAITING_PAYMENT", "CONFIRMED") in _history(order)
    payment = await _payments(customer, order["id"])
    assert payment["amount_authorized"] == order["total"]


async def test_3ds_failed_by_the_customer_cancels_and_releases(
    customer: Session, catalog: Catalog
) -> None:
    before = await _stock(customer, catalog.skus[3])
    placed = await buy(customer, [(catalog.skus[3], 1)], THREE_DS_CARD)
    waiting = await customer.wait_for(placed["id"], {"AWAITING_PAYMENT"}, TIMEOUT)
    await customer.complete_3ds(waiting, success=False)
    order = await customer.wait_for(placed["id"], {"CANCELLED"}, TIMEOUT)
    assert order["status"] == "CANCELLED"
    await eventually(
        lambda: _available(customer, catalog.skus[3], before["available"]), timeout=TIMEOUT
    )


async def test_out_of_stock_cancels_without_touching_payment(
    customer: Session, catalog: Catalog
) -> None:
    placed = await buy(customer, [(catalog.scarce, 2)])
    order = await customer.wait_for(placed["id"], {"CANCELLED"}, TIMEOUT)
    assert "out_of_stock" in {change.get("reason") for change in order["history"]}
    payment = await _payments(customer, order["id"])
    assert payment["attempts"] == []
    stock = await _stock(customer, catalog.scarce)
    assert stock["available"] == 1  # the single unit is still there


async def test_customer_cancellation_voids_the_authorization_and_releases_stock(
    customer: Session, catalog: Catalog
) -> None:
    before = await _stock(customer, catalog.skus[4])
    placed = await buy(customer, [(catalog.skus[4], 2)])
    await customer.wait_for(placed["id"], {"CONFIRMED"}, TIMEOUT)
    requested = await customer.cancel(placed["id"])
    # Confirmed: shipping is asked first, since the parcel could be leaving.
    assert requested["status"] == "CONFIRMED"
    assert requested["cancellation"]["status"] == "requested"
    order = await customer.wait_for(placed["id"], {"CANCELLED"}, TIMEOUT)
    assert order["cancellation"]["status"] == "accepted"
    shipment = await customer.get(f"/api/shipping/orders/{order['id']}")
    assert shipment["status"] == "cancelled"
    payment = await eventually(lambda: _voided(customer, order["id"]), timeout=TIMEOUT)
    assert payment["amount_captured"] == 0
    await eventually(
        lambda: _available(customer, catalog.skus[4], before["available"]), timeout=TIMEOUT
    )
    saga = {
        "shop.orders.order_placed.v1",
        "shop.inventory.stock_reserved.v1",
        "shop.payments.payment_authorized.v1",
        "shop.orders.order_cancellation_requested.v1",
        "shop.shipping.shipment_cancelled.v1",
        "shop.orders.order_cancelled.v1",
        "shop.inventory.stock_released.v1",
        "shop.payments.payment_voided.v1",
    }
    # The timeline is a projection of every topic: eventually complete.
    types = await eventually(lambda: _timeline_types(customer, order["id"], saga), timeout=TIMEOUT)
    assert saga <= types


async def test_another_customer_cannot_see_my_order(
    customer: Session, http: Any, catalog: Catalog
) -> None:
    from shop_cli.client import new_customer

    placed = await buy(customer, [(catalog.skus[0], 1)])
    intruder = await new_customer(http)
    for path in (
        f"/api/orders/{placed['id']}",
        f"/api/orders/{placed['id']}/timeline",
        f"/api/payments/orders/{placed['id']}",
        f"/api/shipping/orders/{placed['id']}",
    ):
        response = await http.get(path, headers=intruder.headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")


async def _timeline_types(session: Session, order_id: str, wanted: set[str]) -> Any:
    timeline = await session.timeline(order_id)
    types = {event["type"] for event in timeline["events"]}
    return types if wanted <= types else None


async def _committed(session: Session, sku: str, committed: int) -> Any:
    stock = await _stock(session, sku)
    return stock if stock["committed"] >= committed else None


async def _available(session: Session, sku: str, available: int) -> Any:
    stock = await _stock(session, sku)
    return stock if stock["available"] == available and stock["reserved"] == 0 else None


async def _shipment(session: Session, order_id: str) -> Any:
    try:
        return await session.get(f"/api/shipping/orders/{order_id}")
    except ApiError:
        return None


async def _captured(session: Session, order_id: str, amount: int) -> Any:
    payment = await _payments(session, order_id)
    return payment if payment["amount_captured"] == amount else None


async def _refunded(session: Session, order_id: str, amount: int) -> Any:
    payment = await _payments(session, order_id)
    return payment if payment["amount_refunded"] >= amount else None


async def _voided(session: Session, order_id: str) -> Any:
    payment = await _payments(session, order_id)
    return payment if payment["attempts"] and payment["attempts"][0]["status"] == "voided" else None


async def _templates(session: Session, wanted: set[str]) -> Any:
    page = await session.get("/api/notifications")
    sent = {item["template"] for item in page["items"] if item["status"] == "sent"}
    return sent if wanted <= sent else None
