"""Stock levels over HTTP: admin set with an audit trail, events, and every bad input."""

from __future__ import annotations

from contracts.events.inventory import StockLevelChanged, StockLow
from shopkit.testing import eventually, fetchval, publish, wait_for_events

from contracts import new_id

from .conftest import Running
from .factories import product_created


def fresh_sku(prefix: str = "SKU") -> str:
    return f"{prefix}-{new_id()[-12:]}"


async def test_admin_sets_stock_and_anyone_reads_it(inventory: Running) -> None:
    sku = fresh_sku()
    response = await inventory.client.put(
        f"/api/inventory/{sku}",
        json={"on_hand": 40, "reason": "initial count"},
        headers=inventory.admin(),
    )
    assert response.status_code == 200, response.text
    assert response.json() | {"updated_at": None} == {
        "sku": sku,
        "product_id": None,
        "on_hand": 40,
        "reserved": 0,
        "available": 40,
        "committed": 0,
        "low_stock_threshold": 5,
        "updated_at": None,
    }
    public = await inventory.client.get(f"/api/inventory/{sku}")
    assert public.status_code == 200
    assert {k: public.json()[k] for k in ("sku", "on_hand", "reserved", "available")} == {
        "sku": sku,
        "on_hand": 40,
        "reserved": 0,
        "available": 40,
    }


async def test_every_change_is_in_the_audit_trail_and_announced(inventory: Running) -> None:
    sku = fresh_sku()
    admin_id = new_id()
    headers = inventory.tokens.headers(admin_id, roles=("customer", "admin"))
    for on_hand, reason in ((30, "received PO-1"), (27, "damaged in warehouse"), (27, "recount")):
        response = await inventory.client.put(
            f"/api/inventory/{sku}", json={"on_hand": on_hand, "reason": reason}, headers=headers
        )
        assert response.status_code == 200
    trail = await inventory.client.get(f"/api/inventory/{sku}/adjustments", headers=headers)
    assert trail.status_code == 200
    items = trail.json()["items"]
    # Newest first; setting the same level again records nothing.
    assert [(i["previous_on_hand"], i["new_on_hand"], i["delta"], i["reason"]) for i in items] == [
        (30, 27, -3, "damaged in warehouse"),
        (0, 30, 30, "received PO-1"),
    ]
    assert {i["actor_id"] for i in items} == {admin_id}
    changes = await wait_for_events(
        inventory.namespace, StockLevelChanged, where=lambda e: e.sku == sku, count=2
    )
    assert sorted((e.on_hand, e.delta, e.reason) for e in changes) == [
        (27, -3, "damaged in warehouse"),
        (30, 30, "received PO-1"),
    ]


async def test_low_stock_is_announced_when_crossing_the_threshold(inventory: Running) -> None:
    sku = fresh_sku()
    headers = inventory.admin()
    for on_hand in (12, 8, 3, 2):
        await inventory.client.put(
            f"/api/inventory/{sku}",
            json={"on_hand": on_hand, "reason": "count", "low_stock_threshold": 10},
            headers=headers,
        )
    lows = await wait_for_events(inventory.namespace, StockLow, where=lambda e: e.sku == sku)
    assert [(e.available, e.threshold) for e in lows] == [(8, 10)]  # once, not on every drop


async def test_stock_set_before_the_product_exists_survives_its_creation(
    inventory: Running,
) -> None:
    early, late = fresh_sku("EARLY"), fresh_sku("LATE")
    await inventory.client.put(
        f"/api/inventory/{early}", json={"on_hand": 9, "reason": "count"}, headers=inventory.admin()
    )
    early_event, late_event = product_created(early), product_created(late)
    await publish(inventory.namespace, early_event, late_event)

    async def both_linked() -> bool:
        linked = await fetchval(
            inventory.database_url,
            "SELECT count(*) FROM stock_items WHERE sku = ANY($1) AND product_id IS NOT NULL",
            [early, late],
        )
        return bool(linked == 2)

    await eventually(both_linked, timeout=60)
    early_stock = (await inventory.client.get(f"/api/inventory/{early}")).json()
    late_stock = (await inventory.client.get(f"/api/inventory/{late}")).json()
    assert (early_stock["on_hand"], early_stock["product_id"]) == (9, early_event.product_id)
    assert (late_stock["on_hand"], late_stock["product_id"]) == (0, late_event.product_id)


async def test_bad_input_is_a_problem_document_and_changes_nothing(inventory: Running) -> None:
    sku = fresh_sku()
    admin = inventory.admin()
    await inventory.client.put(
        f"/api/inventory/{sku}", json={"on_hand": 5, "reason": "count"}, headers=admin
    )
    cases = [
        ({"on_hand": -1, "reason": "x"}, 422),
        ({"on_hand": 2.5, "reason": "x"}, 422),
        ({"on_hand": "7", "reason": "x"}, 422),
        ({"on_hand": 3}, 422),
        ({"on_hand": 3, "reason": "   "}, 422),
        ({"on_hand": 3, "reason": "x", "reserved": 0}, 422),
    ]
    for body, status in cases:
        response = await inventory.client.put(f"/api/inventory/{sku}", json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= response.json().keys()
    invalid_sku = await inventory.client.put(
        "/api/inventory/bad sku!", json={"on_hand": 1, "reason": "x"}, headers=admin
    )
    assert invalid_sku.status_code == 422
    missing = await inventory.client.get(f"/api/inventory/{fresh_sku()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    customer = await inventory.client.put(
        f"/api/inventory/{sku}",
        json={"on_hand": 1, "reason": "x"},
        headers=inventory.tokens.headers(),
    )
    assert customer.status_code == 403
    anonymous = await inventory.client.put(
        f"/api/inventory/{sku}", json={"on_hand": 1, "reason": "x"}
    )
    assert anonymous.status_code == 401
    bad_cursor = await inventory.client.get("/api/inventory?cursor=%%%", headers=admin)
    assert bad_cursor.status_code == 422
    not_an_id = await inventory.client.get(
        f"/api/inventory/{sku}/adjustments?cursor=YWJj", headers=admin
    )
    assert not_an_id.status_code == 422
    for order_id, status in (("not-a-uuid", 422), (new_id(), 404)):
        reservation = await inventory.client.get(
            f"/api/inventory/reservations/{order_id}", headers=admin
        )
        assert reservation.status_code == status
        assert reservation.headers["content-type"] == "application/problem+json"
    stock = (await inventory.client.get(f"/api/inventory/{sku}")).json()
    assert stock["on_hand"] == 5


async def test_admin_lists_stock_page_by_page(inventory: Running) -> None:
    prefix = f"LIST{new_id()[-8:]}"
    skus = sorted(f"{prefix}-{i:02d}" for i in range(7))
    for sku in skus:
        await inventory.client.put(
            f"/api/inventory/{sku}",
            json={"on_hand": 1, "reason": "count"},
            headers=inventory.admin(),
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (
            await inventory.client.get("/api/inventory", params=params, headers=inventory.admin())
        ).json()
        seen += [item["sku"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s for s in seen if s.startswith(prefix)] == skus
    assert len(seen) == len(set(seen))
