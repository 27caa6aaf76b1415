"""The saga through the real consumer runtime: OrderPlaced and friends on Kafka, PostgreSQL state."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest
from contracts.events.inventory import (
    StockCommitted,
    StockReleased,
    StockReservationExtended,
    StockReservationFailed,
    StockReserved,
)
from contracts.events.orders import OrderPlaced
from contracts.types import utc_now
from inventory_service import jobs
from shopkit.testing import eventually, fetchval, publish, wait_for_events

from contracts import new_id

from .conftest import Running, running_inventory
from .factories import (
    order_cancelled,
    order_confirmed,
    order_placed,
    payment_action_required,
    payment_failed,
    shipment_cancelled,
)


def fresh_sku(prefix: str = "SKU") -> str:
    return f"{prefix}-{new_id()[-12:]}"


async def set_stock(service: Running, sku: str, on_hand: int) -> None:
    response = await service.client.put(
        f"/api/inventory/{sku}",
        json={"on_hand": on_hand, "reason": "count"},
        headers=service.admin(),
    )
    assert response.status_code == 200, response.text


async def stock_of(service: Running, sku: str) -> dict[str, int]:
    body = (await service.client.get(f"/api/inventory/{sku}", headers=service.admin())).json()
    return {k: body[k] for k in ("on_hand", "reserved", "available", "committed")}


async def check_balances(service: Running) -> None:
    """reserved + committed + available = total received, for every sku, and never negative."""
    broken = await fetchval(
        service.database_url,
        "SELECT count(*) FROM stock_items WHERE on_hand - reserved < 0 OR reserved < 0 "
        "OR reserved + committed + (on_hand - reserved) <> received",
    )
    assert broken == 0


async def reservation_statuses(service: Running, order_ids: list[str]) -> dict[str, int]:
    rows = await fetchval(
        service.database_url,
        "SELECT coalesce(json_object_agg(status, n), '{}') FROM "
        "(SELECT status, count(*) AS n FROM reservations WHERE order_id = ANY($1::uuid[]) "
        "GROUP BY status) s",
        order_ids,
    )
    return {str(k): int(v) for k, v in json.loads(rows).items()}


async def test_200_concurrent_checkouts_for_50_units_never_oversell(inventory: Running) -> None:
    sku = fresh_sku("HOT")
    await set_stock(inventory, sku, 50)
    before = await stock_of(inventory, sku)
    placed = [order_placed(new_id(), [(sku, 1)]) for _ in range(200)]

    samples: list[int] = []
    done = asyncio.Event()

    async def watch_available() -> None:
        while not done.is_set():
            samples.append((await stock_of(inventory, sku))["available"])
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch_available())
    await publish(inventory.namespace, *placed)
    order_ids = [p.order_id for p in placed]

    async def all_decided() -> dict[str, int] | None:
        statuses = await reservation_statuses(inventory, order_ids)
        return statuses if sum(statuses.values()) == 200 else None

    statuses = await eventually(all_decided, timeout=120, interval=0.2)
    done.set()
    await watcher
    assert statuses == {"held": 50, "failed": 150}
    assert samples
    assert min(samples) >= 0
    assert await stock_of(inventory, sku) == {
        "on_hand": 50,
        "reserved": 50,
        "available": 0,
        "committed": 0,
    }
    await check_balances(inventory)

    reserved = await wait_for_events(
        inventory.namespace, StockReserved, where=lambda e: e.lines[0].sku == sku, count=50
    )
    failed = await wait_for_events(
        inventory.namespace,
        StockReservationFailed,
        where=lambda e: e.unavailable[0].sku == sku,
        count=150,
    )
    assert len({e.order_id for e in reserved}) == 50
    assert len({e.order_id for e in failed}) == 150
    assert {e.order_id for e in reserved}.isdisjoint({e.order_id for e in failed})
    assert all(e.unavailable[0].available == 0 and e.reason == "out_of_stock" for e in failed)

    # Release every hold (some twice: a cancellation and a payment failure): back to the start.
    holders = {e.order_id for e in reserved}
    by_id = {p.order_id: p for p in placed}
    releases = [order_cancelled(by_id[o]) for o in holders]
    releases += [payment_failed(by_id[o]) for o in list(holders)[:10]]
    await publish(inventory.namespace, *releases)

    async def all_released() -> bool:
        return (await reservation_statuses(inventory, order_ids)) == {"released": 50, "failed": 150}

    await eventually(all_released, timeout=60)
    assert await stock_of(inventory, sku) == before
    released = await wait_for_events(
        inventory.namespace, StockReleased, where=lambda e: e.order_id in holders, count=50
    )
    await asyncio.sleep(1)  # a duplicate release would surface now
    released = await wait_for_events(
        inventory.namespace, StockReleased, where=lambda e: e.order_id in holders, count=50
    )
    assert sorted(e.order_id for e in released) == sorted(holders)  # exactly once each
    await check_balances(inventory)


async def test_multi_line_orders_reserve_all_or_nothing(inventory: Running) -> None:
    plenty, scarce = fresh_sku("PLENTY"), fresh_sku("SCARCE")
    await set_stock(inventory, plenty, 10)
    await set_stock(inventory, scarce, 1)
    unknown = fresh_sku("NOSUCH")
    first = order_placed(new_id(), [(plenty, 2), (scarce, 1)])
    second = order_placed(new_id(), [(plenty, 2), (scarce, 1)])
    third = order_placed(new_id(), [(plenty, 1), (unknown, 1)])
    await publish(inventory.namespace, first)
    await wait_for_events(
        inventory.namespace, StockReserved, where=lambda e: e.order_id == first.order_id
    )
    await publish(inventory.namespace, second, third)
    failures = await wait_for_events(
        inventory.namespace,
        StockReservationFailed,
        where=lambda e: e.order_id in {second.order_id, third.order_id},
        count=2,
    )
    by_order = {f.order_id: f for f in failures}
    assert [(u.sku, u.requested, u.available) for u in by_order[second.order_id].unavailable] == [
        (scarce, 1, 0)
    ]
    assert by_order[second.order_id].reason == "out_of_stock"
    assert by_order[third.order_id].reason == "unknown_sku"
    assert [u.sku for u in by_order[third.order_id].unavailable] == [unknown]
    held = await inventory.client.get(
        f"/api/inventory/reservations/{first.order_id}", headers=inventory.admin()
    )
    assert held.status_code == 200
    assert held.json()["status"] == "held"
    assert held.json()["lines"] == [{"sku": plenty, "quantity": 2}, {"sku": scarce, "quantity": 1}]
    # Nothing of the failed orders is held, not even their available lines.
    assert await stock_of(inventory, plenty) == {
        "on_hand": 10,
        "reserved": 2,
        "available": 8,
        "committed": 0,
    }


async def test_confirmation_commits_and_a_cancelled_confirmed_order_restocks(
    inventory: Running,
) -> None:
    """Committed units go back once shipping says nothing will ship (`ShipmentCancelled`),
    not on the order's cancellation alone: its parcel may already be on its way."""
    sku, placed = await _held(inventory, "COMMIT", stock=5, quantity=2)
    confirmed = order_confirmed(placed)
    await publish(inventory.namespace, confirmed, confirmed)  # a second copy with a new id
    committed = await wait_for_events(
        inventory.namespace, StockCommitted, where=lambda e: e.order_id == placed.order_id
    )
    assert [(line.sku, line.quantity) for line in committed[0].lines] == [(sku, 2)]
    await eventually(lambda: _stock_is(inventory, sku, on_hand=3, reserved=0, committed=2))

    await publish(inventory.namespace, order_cancelled(placed, previous_status="CONFIRMED"))
    await asyncio.sleep(1)  # the cancellation alone moves nothing
    assert await _stock_is(inventory, sku, on_hand=3, reserved=0, committed=2)
    await publish(inventory.namespace, shipment_cancelled(placed))
    await eventually(lambda: _stock_is(inventory, sku, on_hand=5, reserved=0, committed=0))
    released = await wait_for_events(
        inventory.namespace, StockReleased, where=lambda e: e.order_id == placed.order_id
    )
    assert [r.reason for r in released] == ["order_cancelled"]
    await check_balances(inventory)


async def test_a_cancelled_order_whose_parcel_left_keeps_its_units_out(
    inventory: Running,
) -> None:
    """The customer's cancel raced the dispatch: orders accepted it, shipping had already
    handed the parcel over (no ShipmentCancelled). The units went back on the shelf anyway and
    could be sold a second time."""
    sku, placed = await _held(inventory, "SHIPPED", stock=1, quantity=1)
    await publish(inventory.namespace, order_confirmed(placed))
    await eventually(lambda: _stock_is(inventory, sku, on_hand=0, reserved=0, committed=1))
    await publish(inventory.namespace, order_cancelled(placed, previous_status="CONFIRMED"))

    second = order_placed(new_id(), [(sku, 1)])
    await publish(inventory.namespace, second)
    failed = await wait_for_events(
        inventory.namespace, StockReservationFailed, where=lambda e: e.order_id == second.order_id
    )
    assert failed  # the last unit is gone with the parcel
    assert await _stock_is(inventory, sku, on_hand=0, reserved=0, committed=1)
    await check_balances(inventory)


async def test_a_shipment_cancelled_before_the_confirmation_arrives_releases_once(
    inventory: Running,
) -> None:
    """Shipping's word comes on another topic than the order's events and may overtake them:
    the hold is released at once, and the confirmation and cancellation arriving after it
    move nothing."""
    sku, placed = await _held(inventory, "OVERTAKE", stock=3, quantity=2)
    await publish(inventory.namespace, shipment_cancelled(placed))
    await eventually(lambda: _stock_is(inventory, sku, on_hand=3, reserved=0, committed=0))
    await publish(
        inventory.namespace,
        order_confirmed(placed),
        order_cancelled(placed, previous_status="CONFIRMED"),
    )
    await asyncio.sleep(1)
    assert await _stock_is(inventory, sku, on_hand=3, reserved=0, committed=0)
    await check_balances(inventory)


async def _held(
    inventory: Running, prefix: str, *, stock: int, quantity: int
) -> tuple[str, OrderPlaced]:
    """A new sku with `stock` units, and an order holding `quantity` of them."""
    sku = fresh_sku(prefix)
    await set_stock(inventory, sku, stock)
    placed = order_placed(new_id(), [(sku, quantity)])
    await publish(inventory.namespace, placed)
    await wait_for_events(
        inventory.namespace, StockReserved, where=lambda e: e.order_id == placed.order_id
    )
    return sku, placed


async def test_expired_holds_are_released_and_payment_actions_extend_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sweeper's clock is held an hour back until the 3-D Secure extension is in: however slow
    # a loaded machine handles PaymentActionRequired, no 2 s hold can expire before it.
    sweeper_lag = [timedelta(hours=1)]

    def sweeper_clock() -> datetime:
        return utc_now() - sweeper_lag[0]

    monkeypatch.setattr(jobs, "utc_now", sweeper_clock)
    async with running_inventory(
        reservation_ttl_seconds=2, reservation_extension_seconds=600, sweep_interval_seconds=0.2
    ) as service:
        sku = fresh_sku("EXPIRE")
        await set_stock(service, sku, 4)
        abandoned = order_placed(new_id(), [(sku, 1)])
        in_3ds = order_placed(new_id(), [(sku, 2)])
        await publish(service.namespace, abandoned, in_3ds)
        reserved = await wait_for_events(
            service.namespace,
            StockReserved,
            where=lambda e: e.order_id in {abandoned.order_id, in_3ds.order_id},
            count=2,
        )
        await publish(service.namespace, payment_action_required(in_3ds))
        extended = await wait_for_events(
            service.namespace,
            StockReservationExtended,
            where=lambda e: e.order_id == in_3ds.order_id,
        )
        original = next(r for r in reserved if r.order_id == in_3ds.order_id)
        assert extended[0].expires_at > original.expires_at
        sweeper_lag[0] = timedelta(0)  # the real clock again: the abandoned hold is overdue

        expired = await wait_for_events(
            service.namespace, StockReleased, where=lambda e: e.order_id == abandoned.order_id
        )
        assert [(e.reason, e.lines[0].quantity) for e in expired] == [("expired", 1)]
        await eventually(lambda: _stock_is(service, sku, on_hand=4, reserved=2, committed=0))

        # A confirmation for the expired order comes too late to move stock; the extended one
        # still commits.
        await publish(service.namespace, order_confirmed(abandoned), order_confirmed(in_3ds))
        await wait_for_events(
            service.namespace, StockCommitted, where=lambda e: e.order_id == in_3ds.order_id
        )
        await eventually(lambda: _stock_is(service, sku, on_hand=2, reserved=0, committed=2))
        await check_balances(service)


async def _stock_is(service: Running, sku: str, **expected: int) -> bool:
    stock = await stock_of(service, sku)
    return all(stock[k] == v for k, v in expected.items())
