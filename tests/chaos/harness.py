"""Fault injection on the real stack: kill -9 services, restart Kafka, stall PostgreSQL.

Services are restarted behind two `FaultProxy`s (PostgreSQL and Kafka's FAULTS listener), a
mixed checkout load runs through the gateway, faults are fired while it runs, and once every
order has settled `shop verify` must find zero violations. The services are restored to their
normal configuration afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from shop_cli.client import (
    DECLINED_CARD,
    GOOD_CARD,
    THREE_DS_CARD,
    ApiError,
    Session,
    gateway_client,
    new_admin,
    new_customer,
)
from shop_cli.faults import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra/local/stack.sh"
PIDS = Path(os.environ.get("SHOP_STATE_DIR", ROOT / ".state")) / "pids"

PG_PROXY_PORT = 25432
KAFKA_PROXY_PORT = 29092
KAFKA_FAULTS_PORT = 19092
POSTGRES_SERVICES = (
    "auth",
    "users",
    "inventory",
    "orders",
    "payments",
    "shipping",
    "notifications",
)
SERVICES = (*POSTGRES_SERVICES, "catalog", "gateway")
ORDERS_PER_SHOPPER = 15
SETTLED = {"CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED"}


def chaos_environment(reservation_ttl_seconds: int) -> dict[str, str]:
    """Service settings that route PostgreSQL and Kafka through the fault proxies."""
    env = {
        f"{s.upper()}_DATABASE_URL": f"postgresql+asyncpg://shop:shop@127.0.0.1:{PG_PROXY_PORT}/{s}"
        for s in POSTGRES_SERVICES
    }
    env["SHOP_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{KAFKA_PROXY_PORT}"
    # Abandoned 3-D Secure payments expire within the run instead of after 15 minutes.
    env["INVENTORY_RESERVATION_TTL_SECONDS"] = str(reservation_ttl_seconds)
    env["INVENTORY_RESERVATION_EXTENSION_SECONDS"] = str(reservation_ttl_seconds)
    env["INVENTORY_SWEEP_INTERVAL_SECONDS"] = "1"
    return env


async def stack(*args: str, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(STACK),
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"stack.sh {' '.join(args)} failed: {output.decode()[-2000:]}")
    return output.decode()


def kill_9(name: str) -> int:
    pid = int((PIDS / f"{name}.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    return pid


@dataclass
class Outcome:
    order_id: str
    plan: str


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0


PLANS = (
    ["good"] * 55
    + ["declined"] * 15
    + ["3ds"] * 10
    + ["3ds_abandoned"] * 5
    + ["out_of_stock"] * 5
    + ["cancel"] * 10
)


class Load:
    """Mixed checkouts; every call retried through faults (checkout keeps its Idempotency-Key)."""

    def __init__(self, http: httpx.AsyncClient, skus: list[str], scarce: str) -> None:
        self.http = http
        self.skus = skus
        self.scarce = scarce
        self.result = LoadResult()

    async def _retry(self, action: Any, deadline: float = 180.0, also: tuple[int, ...] = ()) -> Any:
        """Retry what faults cause (no answer, 5xx, 429); `also` adds statuses a step expects
        while the platform catches up (a product not yet projected is a 404 for a moment)."""
        started = time.monotonic()
        while True:
            try:
                return await action()
            except (httpx.TransportError, ApiError) as exc:
                status = getattr(exc, "status", 0)
                if isinstance(exc, ApiError) and status < 500 and status not in (429, *also):
                    raise
                self.result.retries += 1
                if time.monotonic() - started > deadline:
                    raise
                await asyncio.sleep(0.5 + random.random())

    async def one(self, customer: Session, plan: str) -> None:
        sku = self.scarce if plan == "out_of_stock" else random.choice(self.skus)
        quantity = 3 if plan == "out_of_stock" else 1
        card = {
            "declined": DECLINED_CARD,
            "3ds": THREE_DS_CARD,
            "3ds_abandoned": THREE_DS_CARD,
        }.get(plan, GOOD_CARD)
        key = secrets.token_hex(16)
        await self._retry(lambda: self._set_cart(customer, sku, quantity), also=(404,))
        # Like a storefront: quote exactly what the cart holds (a retried add must not have
        # doubled a line, and a failed checkout must not leave stale lines behind).
        cart = await self._retry(customer.cart)
        lines = [{"sku": i["sku"], "quantity": i["quantity"]} for i in cart["items"]]
        quote = await self._retry(lambda: customer.quote(lines), also=(404,))
        quote_id = min(quote["options"], key=lambda o: o["price"])["quote_id"]
        order = await self._retry(lambda: customer.checkout(quote_id, card, idempotency_key=key))
        self.result.outcomes.append(Outcome(order["id"], plan))
        if plan == "3ds":
            waiting = await self._retry(
                lambda: customer.wait_for(order["id"], {"AWAITING_PAYMENT", "CANCELLED"}, 120)
            )
            if waiting["status"] == "AWAITING_PAYMENT":
                await self._retry(lambda: customer.complete_3ds(waiting))
        elif plan == "cancel":
            confirmed = await self._retry(
                lambda: customer.wait_for(order["id"], {"CONFIRMED", "CANCELLED"}, 120)
            )
            if confirmed["status"] == "CONFIRMED":
                try:
                    await self._retry(lambda: customer.cancel(order["id"]))
                except ApiError as exc:  # e.g. already cancelled by the saga: fine
                    self.result.errors[f"cancel {exc.status}"] += 1

    @staticmethod
    async def _set_cart(customer: Session, sku: str, quantity: int) -> None:
        """Make the cart hold exactly `quantity` of `sku` and nothing else (safe to retry:
        quantities are set, never added twice)."""
        cart = await customer.cart()
        for item in cart["items"]:
            if item["sku"] != sku:
                await customer.delete(f"/api/cart/items/{item['sku']}")
        if any(item["sku"] == sku for item in cart["items"]):
            await customer.patch(f"/api/cart/items/{sku}", {"quantity": quantity})
        else:
            await customer.add_to_cart(sku, quantity)

    async def run(self, checkouts: int, concurrency: int) -> LoadResult:
        # Enough shoppers that none exceeds the payments' per-user velocity rule (which would
        # decline good cards as risky and blur what the faults did).
        # Each lane has shoppers of its own (index = lane modulo the lane count): two lanes
        # sharing a shopper would empty or change each other's cart between quote and checkout.
        per_lane = -(-checkouts // (concurrency * ORDERS_PER_SHOPPER)) + 1
        count = concurrency * per_lane
        customers = [await self._retry(lambda: new_customer(self.http)) for _ in range(count)]
        plans = [random.choice(PLANS) for _ in range(checkouts)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for plan in plans:
            queue.put_nowait(plan)

        async def worker(lane: int) -> None:
            served = 0
            while not queue.empty():
                plan = queue.get_nowait()
                turn = (served // ORDERS_PER_SHOPPER) % per_lane
                customer = customers[lane + concurrency * turn]
                served += 1
                try:
                    await self.one(customer, plan)
                except ApiError as exc:
                    self.result.errors[f"{exc.status} {exc.body.get('detail', '')}"[:120]] += 1
                except Exception as exc:
                    self.result.errors[type(exc).__name__] += 1

        await asyncio.gather(*(worker(lane) for lane in range(concurrency)))
        return self.result


async def prepare_catalog(
    http: httpx.AsyncClient, products: int = 8, units: int = 100_000
) -> tuple[Session, list[str], str]:
    admin = await new_admin(http)
    run = secrets.token_hex(3).upper()
    skus = []
    for i in range(products + 1):
        sku = f"CHAOS-{run}-{i}"
        await admin.post(
            "/api/products",
            {
                "sku": sku,
                "name": f"Chaos item {run} {i}",
                "price": 2990 + 100 * i,
                "weight_grams": 400,
            },
        )
        await admin.set_stock(sku, units if i < products else 1, "chaos run")
        skus.append(sku)
    return admin, skus[:-1], skus[-1]


async def settle(
    session: Session, outcomes: list[Outcome], timeout: float
) -> tuple[Counter[str], dict[str, dict[str, int]]]:
    """Wait until every order reached a terminal or legitimately waiting state."""
    deadline = time.monotonic() + timeout
    pending = {o.order_id for o in outcomes}
    statuses: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            try:
                order = await session.get(f"/api/orders/{order_id}")
            except (httpx.TransportError, ApiError):
                continue
            status = statuses[order_id] = order["status"]
            # A confirmed order whose cancellation shipping has not answered yet is on its way.
            asked = (order.get("cancellation") or {}).get("status") == "requested"
            if status in SETTLED and not asked:
                pending.discard(order_id)
        if pending:
            await asyncio.sleep(1)
    by_plan: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        by_plan.setdefault(outcome.plan, Counter())[statuses.get(outcome.order_id, "UNKNOWN")] += 1
    states = Counter(statuses.get(o.order_id, "UNKNOWN") for o in outcomes)
    return states, {plan: dict(counts) for plan, counts in by_plan.items()}


@dataclass
class Faults:
    pg: FaultProxy
    kafka: FaultProxy
    log: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {text}")

    async def kill_and_restart(self, name: str, env: dict[str, str]) -> None:
        pid = kill_9(name)
        self.note(f"kill -9 {name} (pid {pid})")
        await asyncio.sleep(1)
        await stack("up", name, env=env)
        self.note(f"{name} restarted")

    async def restart_kafka(self) -> None:
        self.note("kafka: stop")
        await stack("down", "kafka")
        await stack("up", "kafka")
        self.note("kafka: started again")

    async def stall_postgres(self, seconds: float) -> None:
        self.pg.pause()
        self.note(f"postgres connections stalled for {seconds}s")
        await asyncio.sleep(seconds)
        self.pg.resume()

    def drop_postgres(self) -> None:
        self.note(f"postgres: {self.pg.drop_all()} connections reset")

    def drop_kafka(self) -> None:
        self.note(f"kafka: {self.kafka.drop_all()} connections reset")


async def start_proxies() -> Faults:
    pg = FaultProxy(listen_port=PG_PROXY_PORT, target_port=5432)
    kafka = FaultProxy(listen_port=KAFKA_PROXY_PORT, target_port=KAFKA_FAULTS_PORT)
    await pg.start()
    await kafka.start()
    return Faults(pg=pg, kafka=kafka)


async def chaos_run(
    *,
    checkouts: int,
    concurrency: int,
    kill: tuple[str, ...],
    restart_kafka: bool,
    stall_seconds: float,
    settle_timeout: float,
    reservation_ttl: int,
) -> dict[str, Any]:
    faults = await start_proxies()
    env = chaos_environment(reservation_ttl)
    try:
        await stack("down", "services")
        await stack("up", "services", env=env)
        async with gateway_client(timeout=30) as http:
            admin, skus, scarce = await prepare_catalog(http)
            await asyncio.sleep(2)  # projections of the new products
            load = Load(http, skus, scarce)
            load_task = asyncio.create_task(load.run(checkouts, concurrency))

            async def fire() -> None:
                await asyncio.sleep(3)
                for name in kill:
                    if load_task.done():
                        break
                    await faults.kill_and_restart(name, env)
                    await asyncio.sleep(2)
                if stall_seconds:
                    await faults.stall_postgres(stall_seconds)
                    faults.drop_postgres()
                    faults.drop_kafka()
                if restart_kafka:
                    await faults.restart_kafka()

            await asyncio.gather(load_task, fire())
            result = load_task.result()
            states, by_plan = await settle(admin, result.outcomes, settle_timeout)
        return {
            "orders": len(result.outcomes),
            "states": dict(states),
            "by_plan": by_plan,
            "client_errors": dict(result.errors),
            "client_retries": result.retries,
            "faults": faults.log,
        }
    finally:
        await stack("down", "services")
        await faults.pg.stop()
        await faults.kafka.stop()
        await stack("up", "services")
