"""`shop verify`: check the platform's invariants on a running (or stopped) stack.

An operator's tool: it reads every service's store directly, read-only, and compares them.

1. No order is CONFIRMED (or later) without an authorized or captured payment of exactly its
   total and currency.
2. Stock is conserved: available >= 0 and reserved + committed + available = received for every
   SKU, and the reserved/committed counters equal the held/committed reservation lines; every
   order CONFIRMED, SHIPPED or DELIVERED took its units out of stock (its reservation is
   committed, or released by shipping's `ShipmentCancelled`). Counters alone miss an order whose
   hold expired before its confirmation was read: its units are back on sale, sold twice.
3. Every order is terminal or legitimately waiting: nothing PENDING or AWAITING_PAYMENT past the
   reservation window, no cancelled order still holding stock or an authorization.
4. No double charge or double refund: at most one live payment per order, captured <= authorized,
   refunded <= captured, one compensation per order.
5. Every outbox is drained and every dead-letter queue is empty (or holds only undecodable input,
   which is reported).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

import asyncpg
import typer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table
from shopkit.cli import read_parked
from shopkit.kafka import client_options, configure_security
from shopkit.migrations import POSTGRES_SERVICES
from shopkit.mongo import create_client
from shopkit.relay import asyncpg_dsn
from shopkit.settings import ServiceSettings

console = Console()

LIVE_PAYMENT = ("authorized", "captured", "partially_refunded", "refunded")
HOLDING_PAYMENT = ("authorized", "requires_action", "pending")
CONFIRMED_OR_LATER = ("CONFIRMED", "SHIPPED", "DELIVERED", "REFUNDED")
SOLD = ("CONFIRMED", "SHIPPED", "DELIVERED")
"""Statuses whose units must be out of stock (a refunded order may have been restocked)."""
SHIPMENT_CANCELLED = "order_cancelled"
"""Release reason of a committed reservation that shipping's `ShipmentCancelled` restocked."""
TERMINAL = ("DELIVERED", "CANCELLED", "REFUNDED")


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    orders_by_status: Counter[str] = field(default_factory=Counter)
    stock: dict[str, int] = field(default_factory=dict)
    payments: dict[str, int] = field(default_factory=dict)
    outbox_backlog: dict[str, int] = field(default_factory=dict)
    parked: dict[str, Counter[str]] = field(default_factory=dict)

    def fail(self, invariant: int, message: str) -> None:
        self.violations.append(f"[{invariant}] {message}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "violations": self.violations,
            "notes": self.notes,
            "orders_by_status": dict(self.orders_by_status),
            "stock": self.stock,
            "payments": self.payments,
            "outbox_backlog": self.outbox_backlog,
            "parked": {group: dict(c) for group, c in self.parked.items()},
        }


def _database_url(service: str) -> str:
    module = __import__(f"{service}_service.config", fromlist=["*"])
    settings_class = next(
        value
        for name, value in vars(module).items()
        if name.endswith("Settings")
        and isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    )
    return str(settings_class().database_url)


class UnverifiableError(Exception):
    """A store cannot be read (not running, not migrated): the check cannot conclude."""


async def _fetch(service: str, query: str, *args: Any) -> list[asyncpg.Record]:
    try:
        conn = await asyncpg.connect(asyncpg_dsn(_database_url(service)))
    except (OSError, asyncpg.PostgresError) as exc:
        raise UnverifiableError(f"cannot connect to the {service} database: {exc}") from exc
    try:
        return list(await conn.fetch(query, *args))
    except asyncpg.UndefinedTableError as exc:
        raise UnverifiableError(
            f"the {service} database is not migrated ({exc}); "
            f"run `uv run shop db upgrade {service}`"
        ) from exc
    finally:
        await conn.close()


async def _orders_and_payments(report: Report, stuck_after: timedelta) -> None:
    orders = await _fetch(
        "orders",
        "SELECT id::text, status, total, currency, status_changed_at < now() - $1::interval AS old "
        "FROM orders",
        stuck_after,
    )
    attempts = await _fetch(
        "payments",
        "SELECT order_id::text, id::text, status, amount, currency, amount_captured, "
        "amount_refunded FROM payment_attempts",
    )
    refunds = await _fetch(
        "payments",
        "SELECT order_id::text, payment_id::text, amount, request_key FROM refunds "
        "WHERE status = 'succeeded'",
    )
    by_order: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for attempt in attempts:
        by_order[attempt["order_id"]].append(attempt)
    refunded: dict[str, int] = defaultdict(int)
    compensations: Counter[tuple[str, str]] = Counter()
    for refund in refunds:
        refunded[refund["payment_id"]] += refund["amount"]
        if refund["request_key"] and not refund["request_key"].startswith("admin:"):
            compensations[(refund["order_id"], refund["request_key"])] += 1

    report.payments = {
        "attempts": len(attempts),
        "authorized_or_later": sum(a["status"] in LIVE_PAYMENT for a in attempts),
        "captured_total": sum(a["amount_captured"] for a in attempts),
        "refunded_total": sum(a["amount_refunded"] for a in attempts),
        "voided": sum(a["status"] == "voided" for a in attempts),
        "failed": sum(a["status"] == "failed" for a in attempts),
    }
    for order in orders:
        report.orders_by_status[order["status"]] += 1
        mine = by_order.get(order["id"], [])
        live = [a for a in mine if a["status"] in LIVE_PAYMENT]
        if order["status"] in CONFIRMED_OR_LATER and not any(
            a["amount"] == order["total"] and a["currency"] == order["currency"] for a in live
        ):
            report.fail(
                1,
                f"order {order['id']} is {order['status']} without an authorized "
                f"payment of {order['total']} {order['currency']}",
            )
        if order["status"] in ("PENDING", "AWAITING_PAYMENT") and order["old"]:
            report.fail(3, f"order {order['id']} stuck in {order['status']}")
        if order["status"] == "CANCELLED":
            holding = [a for a in mine if a["status"] in (*HOLDING_PAYMENT, "captured")]
            if holding:
                report.fail(
                    4,
                    f"cancelled order {order['id']} still has payment "
                    f"{holding[0]['id']} {holding[0]['status']}",
                )
        if len(live) > 1:
            report.fail(4, f"order {order['id']} has {len(live)} live payments (double charge)")
    for attempt in attempts:
        if attempt["amount_captured"] > attempt["amount"]:
            report.fail(4, f"payment {attempt['id']} captured more than it authorized")
        if attempt["amount_refunded"] > attempt["amount_captured"]:
            report.fail(4, f"payment {attempt['id']} refunded more than it captured")
        if refunded.get(attempt["id"], 0) != attempt["amount_refunded"]:
            report.fail(4, f"payment {attempt['id']} refunds do not add up")
    for (order_id, key), count in compensations.items():
        if count > 1:
            report.fail(4, f"compensation {key} ran {count} times for order {order_id}")

    cancelled = [o["id"] for o in orders if o["status"] == "CANCELLED"]
    if cancelled:
        holding = await _fetch(
            "inventory",
            "SELECT order_id::text FROM reservations WHERE status = 'held' "
            "AND order_id = ANY($1::uuid[])",
            cancelled,
        )
        for row in holding:
            report.fail(3, f"cancelled order {row['order_id']} still holds stock")


async def _stock(report: Report) -> None:
    items = await _fetch(
        "inventory", "SELECT sku, on_hand, reserved, committed, received FROM stock_items"
    )
    lines = await _fetch(
        "inventory",
        "SELECT l.sku, r.status, sum(l.quantity)::int AS units FROM reservation_lines l "
        "JOIN reservations r USING (order_id) WHERE r.status IN ('held', 'committed') "
        "GROUP BY l.sku, r.status",
    )
    held: dict[str, int] = defaultdict(int)
    committed: dict[str, int] = defaultdict(int)
    for line in lines:
        (held if line["status"] == "held" else committed)[line["sku"]] += line["units"]
    totals = Counter[str]()
    for item in items:
        available = item["on_hand"] - item["reserved"]
        totals.update(
            received=item["received"],
            reserved=item["reserved"],
            committed=item["committed"],
            available=available,
        )
        if available < 0:
            report.fail(2, f"sku {item['sku']} has negative available stock ({available})")
        if item["reserved"] + item["committed"] + available != item["received"]:
            report.fail(2, f"sku {item['sku']}: reserved + committed + available != received")
        if held.get(item["sku"], 0) != item["reserved"]:
            report.fail(
                2,
                f"sku {item['sku']}: reserved {item['reserved']} but held lines "
                f"{held.get(item['sku'], 0)}",
            )
        if committed.get(item["sku"], 0) != item["committed"]:
            report.fail(
                2,
                f"sku {item['sku']}: committed {item['committed']} but committed lines "
                f"{committed.get(item['sku'], 0)}",
            )
    report.stock = {"skus": len(items), **dict(totals)}


async def _sold_orders_took_stock(report: Report, stuck_after: timedelta) -> None:
    """Every order CONFIRMED or later has its reservation committed (or restocked by shipping)."""
    orders = await _fetch(
        "orders",
        "SELECT id::text, status, status_changed_at < now() - $2::interval AS old "
        "FROM orders WHERE status = ANY($1::text[])",
        list(SOLD),
        stuck_after,
    )
    if not orders:
        return
    reservations = {
        row["order_id"]: row
        for row in await _fetch(
            "inventory",
            "SELECT order_id::text, status, reason FROM reservations "
            "WHERE order_id = ANY($1::uuid[])",
            [o["id"] for o in orders],
        )
    }
    for order in orders:
        reservation = reservations.get(order["id"])
        if reservation is None:
            state = "no reservation"
        else:
            state = "reservation " + ":".join(
                filter(None, (reservation["status"], reservation["reason"]))
            )
            if _took_stock(reservation["status"], reservation["reason"]):
                continue
            if reservation["status"] == "held" and not order["old"]:
                continue  # inventory has not read the confirmation yet
        report.fail(
            2,
            f"order {order['id']} is {order['status']} but its stock is not committed ({state})",
        )


def _took_stock(status: str, reason: str | None) -> bool:
    return status == "committed" or (status == "released" and reason == SHIPMENT_CANCELLED)


async def _outboxes(report: Report) -> None:
    for service in POSTGRES_SERVICES:
        rows = await _fetch(service, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
        report.outbox_backlog[service] = int(rows[0]["n"])
    from catalog_service.config import CatalogSettings

    settings = CatalogSettings()
    client = create_client(settings.mongo_url)
    try:
        db = client[settings.mongo_database]
        pending = 0
        for name in await db.list_collection_names():
            pending += await db[name].count_documents({"outbox_pending": True})
        report.outbox_backlog["catalog"] = pending
    finally:
        await client.close()
    for service, backlog in report.outbox_backlog.items():
        if backlog:
            report.fail(5, f"{service} outbox holds {backlog} unpublished event(s)")


async def _dead_letters(report: Report, bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="shop-verify", **client_options()
    )
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    # Live consumer groups only: isolated test runs use namespaced groups (`t<stamp>_<hex>.`).
    groups = sorted(
        t.removesuffix(".dlq")
        for t in topics
        if t.endswith(".dlq") and not (t.startswith("t") and "." in t[:20] and "_" in t[:20])
    )
    for group in groups:
        parked = await read_parked(bootstrap, group)
        if not parked:
            continue
        reasons = Counter(m.meta.get("dlq_reason", "?") for m in parked)
        report.parked[group] = reasons
        failed = reasons.get("handler_failed", 0)
        if failed:
            report.fail(5, f"{group}.dlq holds {failed} message(s) its handler failed on")
        explained = sum(reasons.values()) - failed
        if explained:
            report.notes.append(
                f"{group}.dlq holds {explained} undecodable message(s): {dict(reasons)}"
            )


async def verify(*, stuck_after: timedelta, bootstrap: str) -> Report:
    report = Report()
    await _orders_and_payments(report, stuck_after)
    await _stock(report)
    await _sold_orders_took_stock(report, stuck_after)
    await _outboxes(report)
    await _dead_letters(report, bootstrap)
    return report


def render(report: Report) -> None:
    table = Table(title="orders by status")
    table.add_column("status")
    table.add_column("orders", justify="right")
    for status, count in sorted(report.orders_by_status.items()):
        table.add_row(status, str(count))
    console.print(table)
    for title, figures in (
        ("stock", report.stock),
        ("payments", report.payments),
        ("outbox backlog", report.outbox_backlog),
    ):
        summary = Table(title=title)
        summary.add_column("figure")
        summary.add_column("value", justify="right")
        for key, value in figures.items():
            summary.add_row(key, str(value))
        console.print(summary)
    for note in report.notes:
        console.print(f"note: {note}")
    if report.violations:
        console.print(f"[red]{len(report.violations)} violation(s):[/red]")
        for violation in report.violations[:200]:
            console.print(f"  {violation}", markup=False)
    else:
        console.print("[green]0 violations: all five invariants hold[/green]")


def command(
    stuck_after_minutes: Annotated[
        float, typer.Option(help="PENDING/AWAITING_PAYMENT older than this is stuck")
    ] = 20.0,
    bootstrap: Annotated[str, typer.Option(envvar="SHOP_KAFKA_BOOTSTRAP")] = "127.0.0.1:9092",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the five invariants across every service's store; exit 1 on any violation."""
    configure_security(ServiceSettings().kafka_security())
    try:
        report = asyncio.run(
            verify(stuck_after=timedelta(minutes=stuck_after_minutes), bootstrap=bootstrap)
        )
    except UnverifiableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report)
    if report.violations:
        raise typer.Exit(1)
