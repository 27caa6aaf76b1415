"""`shop verify` against real (fresh, migrated) orders and inventory databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest
from shop_cli.verify import Report, _sold_orders_took_stock
from shopkit.relay import asyncpg_dsn
from shopkit.testing import migrated_database

from contracts import new_id

STUCK_AFTER = timedelta(minutes=20)


@dataclass
class Stores:
    orders: str
    inventory: str

    async def order(self, status: str, *, changed_minutes_ago: int = 0) -> str:
        order_id = new_id()
        conn = await asyncpg.connect(asyncpg_dsn(self.orders))
        try:
            await conn.execute(
                "INSERT INTO orders (id, user_id, status, currency, subtotal, discount, shipping, "
                "total, shipping_address, shipping_choice, payment_method_id, created_at, "
                "updated_at, status_changed_at) VALUES ($1, $2, $3, 'BRL', 1990, 0, 0, 1990, "
                "$4, $4, 'pm_card_visa', now(), now(), now() - make_interval(mins => $5))",
                order_id,
                new_id(),
                status,
                json.dumps({}),
                changed_minutes_ago,
            )
        finally:
            await conn.close()
        return order_id

    async def reservation(self, order_id: str, status: str, reason: str | None = None) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.inventory))
        try:
            await conn.execute(
                "INSERT INTO reservations (order_id, id, status, reason) VALUES ($1, $2, $3, $4)",
                order_id,
                new_id(),
                status,
                reason,
            )
        finally:
            await conn.close()


@pytest.fixture
async def stores(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stores]:
    async with migrated_database("orders") as orders, migrated_database("inventory") as inventory:
        # `shop verify` finds each store through the service's own settings.
        monkeypatch.setenv("ORDERS_DATABASE_URL", orders)
        monkeypatch.setenv("INVENTORY_DATABASE_URL", inventory)
        yield Stores(orders=orders, inventory=inventory)


async def test_a_sold_order_whose_stock_went_back_on_sale_is_a_violation(stores: Stores) -> None:
    committed = await stores.order("SHIPPED")
    await stores.reservation(committed, "committed")
    restocked = await stores.order("CONFIRMED")  # shipping voided the parcel: units back
    await stores.reservation(restocked, "released", "order_cancelled")
    unread = await stores.order("CONFIRMED")  # inventory has not read the confirmation yet
    await stores.reservation(unread, "held")
    cancelled = await stores.order("CANCELLED")
    await stores.reservation(cancelled, "released", "expired")

    oversold = await stores.order("SHIPPED")  # its hold expired before the confirmation was read
    await stores.reservation(oversold, "released", "expired")
    confirmed_expired = await stores.order("DELIVERED")
    await stores.reservation(confirmed_expired, "released", "expired")
    stuck = await stores.order("CONFIRMED", changed_minutes_ago=60)
    await stores.reservation(stuck, "held")
    unknown = await stores.order("CONFIRMED")

    report = Report()
    await _sold_orders_took_stock(report, STUCK_AFTER)

    assert sorted(report.violations) == sorted(
        [
            f"[2] order {oversold} is SHIPPED but its stock is not committed "
            "(reservation released:expired)",
            f"[2] order {confirmed_expired} is DELIVERED but its stock is not committed "
            "(reservation released:expired)",
            f"[2] order {stuck} is CONFIRMED but its stock is not committed (reservation held)",
            f"[2] order {unknown} is CONFIRMED but its stock is not committed (no reservation)",
        ]
    )


async def test_no_sold_orders_no_violations(stores: Stores) -> None:
    report = Report()
    await _sold_orders_took_stock(report, STUCK_AFTER)
    assert report.violations == []
