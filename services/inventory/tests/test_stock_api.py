"""Stock levels over HTTP: admin set with an audit trail, events, and every bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from contracts.events.inventory import StockCommitted, StockLevelChanged, StockLow, StockReserved
from shopkit.testing import eventually, fetchval, publish, wait_for_events

from contracts import new_id

from .conftest import Running
from .factories import order_confirmed, order_placed, product_created

MAX_ON_HAND = 10_000_000


def fresh_sku(prefix: str = "SKU") -> str:
    return f"{prefix}-{new_id()[-12:]}"


async def _trail(inventory: Running, sku: str) -> list[tuple[int, int, int, str]]:
    """The sku's audit trail, newest first: (from, to, delta, reason)."""
    response = await inventory.client.get(
        f"/api/inventory/{sku}/adjustments", headers=inventory.admin()
    )
    assert response.status_code == 200, response.text
    return [
        (i["previous_on_hand"], i["new_on_hand"], i["delta"], i["reason"])
        for i in response.json()["items"]
    ]


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{slug}"), body
    return body


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
    # Anonymous callers and customers see the contract's availability, nothing more.
    contract = {"sku": sku, "on_hand": 40, "reserved": 0, "available": 40}
    for headers in ({}, inventory.tokens.headers()):
        public = await inventory.client.get(f"/api/inventory/{sku}", headers=headers)
        assert public.status_code == 200
        assert public.json() == contract
    # Admins see the whole record, as a PUT answers it.
    full = await inventory.client.get(f"/api/inventory/{sku}", headers=inventory.admin())
    assert full.status_code == 200
    assert full.json() == response.json()


async def test_the_openapi_says_what_each_caller_reads(inventory: Running) -> None:
    document = (await inventory.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert set(schemas["StockPublic"]["properties"]) == {"sku", "on_hand", "reserved", "available"}
    assert {"committed", "product_id", "low_stock_threshold", "updated_at"} <= set(
        schemas["StockAdmin"]["properties"]
    )
    ok = document["paths"]["/api/inventory/{sku}"]["get"]["responses"]["200"]
    variants = ok["content"]["application/json"]["schema"]["anyOf"]
    assert sorted(v["$ref"].rsplit("/", 1)[-1] for v in variants) == ["StockAdmin", "StockPublic"]
    assert "admins" in ok["description"]


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
    admin = inventory.admin()
    early_stock = (await inventory.client.get(f"/api/inventory/{early}", headers=admin)).json()
    late_stock = (await inventory.client.get(f"/api/inventory/{late}", headers=admin)).json()
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
    bad_expectations = [
        {"on_hand": 3, "reason": "x", "expected_on_hand": -1},
        {"on_hand": 3, "reason": "x", "expected_on_hand": "5"},
        {"on_hand": 3, "reason": "x", "expected_on_hand": 4.5},
        {"on_hand": 3, "reason": "x", "expected_on_hand": MAX_ON_HAND + 1},
    ]
    for body in bad_expectations:
        response = await inventory.client.put(f"/api/inventory/{sku}", json=body, headers=admin)
        _problem(response, 422, "validation-error")
    for body in (
        {"delta": 1},
        {"delta": 2.5, "reason": "x"},
        {"delta": "1", "reason": "x"},
        {"delta": True, "reason": "x"},
        {"delta": MAX_ON_HAND + 1, "reason": "x"},
        {"delta": -MAX_ON_HAND - 1, "reason": "x"},
        {"delta": 1, "reason": "x", "on_hand": 9},
        {"reason": "x"},
    ):
        response = await inventory.client.post(
            f"/api/inventory/{sku}/adjustments", json=body, headers=admin
        )
        _problem(response, 422, "validation-error")
    by_customer = await inventory.client.post(
        f"/api/inventory/{sku}/adjustments",
        json={"delta": 1, "reason": "x"},
        headers=inventory.tokens.headers(),
    )
    assert by_customer.status_code == 403
    stock = (await inventory.client.get(f"/api/inventory/{sku}")).json()
    assert stock["on_hand"] == 5
    assert await _trail(inventory, sku) == [(0, 5, 5, "count")]


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


async def test_a_set_based_on_a_stale_level_is_refused_and_changes_nothing(
    inventory: Running,
) -> None:
    """The admin read on_hand=10 and sets 30 after a delivery of 20, but an order for 3 was
    committed meanwhile: without the precondition that would be 3 phantom units (+23)."""
    sku = fresh_sku("STALE")
    admin = inventory.admin()
    first = await inventory.client.put(
        f"/api/inventory/{sku}", json={"on_hand": 10, "reason": "count"}, headers=admin
    )
    assert first.status_code == 200, first.text
    placed = order_placed(new_id(), [(sku, 3)])
    await publish(inventory.namespace, placed)
    await wait_for_events(
        inventory.namespace, StockReserved, where=lambda e: e.order_id == placed.order_id
    )
    await publish(inventory.namespace, order_confirmed(placed))
    await wait_for_events(
        inventory.namespace, StockCommitted, where=lambda e: e.order_id == placed.order_id
    )
    before = (await inventory.client.get(f"/api/inventory/{sku}", headers=admin)).json()
    assert (before["on_hand"], before["committed"]) == (7, 3)

    delivery = {"on_hand": 30, "reason": "delivery PO-7", "expected_on_hand": 10}
    refused = await inventory.client.put(f"/api/inventory/{sku}", json=delivery, headers=admin)
    problem = _problem(refused, 409, "stock-changed")
    assert (problem["on_hand"], problem["expected_on_hand"]) == (7, 10)
    assert (await inventory.client.get(f"/api/inventory/{sku}", headers=admin)).json() == before
    assert await _trail(inventory, sku) == [(0, 10, 10, "count")]

    # Decided again from the current level, the same kind of request applies.
    agreed = {"on_hand": 27, "reason": "delivery PO-7", "expected_on_hand": 7}
    applied = await inventory.client.put(f"/api/inventory/{sku}", json=agreed, headers=admin)
    assert applied.status_code == 200, applied.text
    assert {k: applied.json()[k] for k in ("on_hand", "reserved", "committed")} == {
        "on_hand": 27,
        "reserved": 0,
        "committed": 3,
    }
    assert await _trail(inventory, sku) == [(7, 27, 20, "delivery PO-7"), (0, 10, 10, "count")]
    # The outbox publishes in commit order: had the refused set leaked an event, it would be
    # on the topic before this one.
    changes = await wait_for_events(
        inventory.namespace,
        StockLevelChanged,
        where=lambda e: e.sku == sku and e.reason == "delivery PO-7",
    )
    assert [(e.on_hand, e.delta) for e in changes] == [(27, 20)]


async def test_a_stale_set_of_a_new_sku_creates_no_row(inventory: Running) -> None:
    sku = fresh_sku("NEWSTALE")
    refused = await inventory.client.put(
        f"/api/inventory/{sku}",
        json={"on_hand": 8, "reason": "count", "expected_on_hand": 5},
        headers=inventory.admin(),
    )
    assert _problem(refused, 409, "stock-changed")["on_hand"] == 0
    assert (await inventory.client.get(f"/api/inventory/{sku}")).status_code == 404
    # A new sku is at 0: expecting that (or nothing, as before) sets it.
    for on_hand, expected in ((8, 0), (9, None)):
        applied = await inventory.client.put(
            f"/api/inventory/{sku}",
            json={"on_hand": on_hand, "reason": "count", "expected_on_hand": expected},
            headers=inventory.admin(),
        )
        assert applied.status_code == 200, applied.text
        assert applied.json()["on_hand"] == on_hand


async def test_adjustments_add_to_the_level_as_it_is_then(inventory: Running) -> None:
    sku = fresh_sku("ADJ")
    admin_id = new_id()
    headers = inventory.tokens.headers(admin_id, roles=("customer", "admin"))
    await inventory.client.put(
        f"/api/inventory/{sku}", json={"on_hand": 10, "reason": "count"}, headers=headers
    )
    placed = order_placed(new_id(), [(sku, 4)])
    await publish(inventory.namespace, placed)
    await wait_for_events(
        inventory.namespace, StockReserved, where=lambda e: e.order_id == placed.order_id
    )

    async def adjust(delta: int, reason: str) -> httpx.Response:
        return await inventory.client.post(
            f"/api/inventory/{sku}/adjustments",
            json={"delta": delta, "reason": reason},
            headers=headers,
        )

    delivered = await adjust(20, "delivery PO-8")
    assert delivered.status_code == 200, delivered.text
    assert {k: delivered.json()[k] for k in ("sku", "on_hand", "reserved", "available")} == {
        "sku": sku,
        "on_hand": 30,
        "reserved": 4,
        "available": 26,
    }
    below = _problem(await adjust(-27, "breakage"), 409, "stock-below-reserved")
    assert (below["reserved"], below["on_hand"]) == (4, 30)
    above = _problem(await adjust(MAX_ON_HAND - 29, "typo"), 409, "stock-above-maximum")
    assert (above["maximum"], above["on_hand"]) == (MAX_ON_HAND, 30)
    unchanged = await adjust(0, "nothing")
    assert unchanged.status_code == 200
    assert unchanged.json()["on_hand"] == 30
    broken = await adjust(-26, "breakage")
    assert broken.status_code == 200, broken.text
    assert (broken.json()["on_hand"], broken.json()["available"]) == (4, 0)

    # Refused and empty adjustments leave no trace; the others are in the trail and announced.
    assert await _trail(inventory, sku) == [
        (30, 4, -26, "breakage"),
        (10, 30, 20, "delivery PO-8"),
        (0, 10, 10, "count"),
    ]
    trail = await inventory.client.get(f"/api/inventory/{sku}/adjustments", headers=headers)
    assert {i["actor_id"] for i in trail.json()["items"]} == {admin_id}
    changes = await wait_for_events(
        inventory.namespace,
        StockLevelChanged,
        where=lambda e: e.sku == sku and e.reason != "count",
        count=2,
    )
    assert [(e.on_hand, e.reserved, e.delta, e.reason) for e in changes] == [
        (30, 4, 20, "delivery PO-8"),
        (4, 4, -26, "breakage"),
    ]

    unknown = fresh_sku("ADJ")
    missing = await inventory.client.post(
        f"/api/inventory/{unknown}/adjustments",
        json={"delta": 5, "reason": "delivery"},
        headers=headers,
    )
    _problem(missing, 404, "stock-not-found")
    assert (await inventory.client.get(f"/api/inventory/{unknown}")).status_code == 404


async def test_concurrent_adjustments_are_all_kept(inventory: Running) -> None:
    sku = fresh_sku("ADJMANY")
    admin = inventory.admin()
    await inventory.client.put(
        f"/api/inventory/{sku}", json={"on_hand": 5, "reason": "count"}, headers=admin
    )
    responses = await asyncio.gather(
        *(
            inventory.client.post(
                f"/api/inventory/{sku}/adjustments",
                json={"delta": 1, "reason": f"delivery {i}"},
                headers=admin,
            )
            for i in range(10)
        )
    )
    assert [r.status_code for r in responses] == [200] * 10
    assert (await inventory.client.get(f"/api/inventory/{sku}")).json()["on_hand"] == 15
    # Each adjustment counted from the one before it (the row lock serialised them).
    trail = await _trail(inventory, sku)
    assert [(before, after) for before, after, _, _ in trail] == [
        (n - 1, n) for n in range(15, 5, -1)
    ] + [(0, 5)]


async def test_a_sku_named_reservations_reaches_its_audit_trail(inventory: Running) -> None:
    """`reservations` is a valid sku; its trail must not be taken for an order id (a 422)."""
    admin = inventory.admin()
    reason = f"count {new_id()}"  # the sku is fixed: tell this test's entry from others
    await inventory.client.put(
        "/api/inventory/reservations", json={"on_hand": 3, "reason": reason}, headers=admin
    )
    trail = await inventory.client.get("/api/inventory/reservations/adjustments", headers=admin)
    assert trail.status_code == 200, trail.text
    newest = trail.json()["items"][0]
    assert (newest["sku"], newest["new_on_hand"], newest["reason"]) == ("reservations", 3, reason)
    # Order ids still reach the reservations.
    reservation = await inventory.client.get(
        f"/api/inventory/reservations/{new_id()}", headers=admin
    )
    _problem(reservation, 404, "reservation-not-found")
