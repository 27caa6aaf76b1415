"""End-to-end checkout benchmark on the running stack, through the gateway.

* Throughput: closed-loop checkouts (cart add, shipping quote, POST /api/orders) from several
  load-generator processes for 60 s; a checkout counts when its `OrderConfirmed` is seen on
  Kafka (accepted -> CONFIRMED). A closed loop admits more than the saga completes, so a backlog
  drains after the load stops: `confirmed_per_s_including_drain` (confirmations over the load
  and the drain) is the rate the stack sustains.
* Latency: an open-loop run at half the sustained rate; accepted-to-confirmed p50/p99, and the
  median of each saga step (reserved by inventory, authorized by payments, confirmed by orders;
  each includes the relay and Kafka hop before it).
* CPU: user + system CPU of every server process of the stack (services, PostgreSQL and its
  backends, Kafka, Redis, FerretDB, localstripe, Mailpit), from /proc, over the throughput
  window and the drain, divided by the confirmed checkouts, in total and per component. The
  load generators are not counted (other work on the machine during the run is).

Targets: >= 100 checkouts/s, p99 < 500 ms at half rate, <= 20 CPU-ms per checkout.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from shop_cli.client import GOOD_CARD, ApiError, Session, gateway_client, login, new_admin, register

from bench.figures import percentile
from bench.run import wait_until_quiet
from contracts import decode, topics

ROOT = Path(__file__).resolve().parents[1]
PIDS = Path(os.environ.get("SHOP_STATE_DIR", ROOT / ".state")) / "pids"
SECONDS = int(os.environ.get("BENCH_CHECKOUT_SECONDS", "60"))
WORKERS = int(os.environ.get("BENCH_CHECKOUT_PROCESSES", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CHECKOUT_CONCURRENCY", "16"))
ORDERS_PER_CUSTOMER = 20  # below the payments' per-user velocity rule
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU of the server processes


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, own CPU ticks, reaped children's CPU ticks)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (
            int(fields[1]),
            int(fields[11]) + int(fields[12]),
            int(fields[13]) + int(fields[14]),
        )
    return table


def server_cpu_by_component() -> dict[str, float]:
    """CPU seconds so far of each stack component (its recorded PID and all descendants)."""
    roots: dict[str, int] = {}
    for path in PIDS.glob("*.pid"):
        text = path.read_text().strip()
        if text.isdigit():
            roots[path.stem] = int(text)
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seconds: dict[str, float] = {}
    for name, root in roots.items():
        if root not in table:
            continue
        ticks = table[root][2]  # children that already exited (e.g. PostgreSQL backends)
        stack = [root]
        while stack:
            pid = stack.pop()
            ticks += table[pid][1]
            stack.extend(children.get(pid, []))
        seconds[name] = ticks / CLOCK_TICKS
    return seconds


def server_cpu_seconds() -> float:
    return sum(server_cpu_by_component().values())


# ---------------------------------------------------------------- load generator processes


async def _checkout(session: Session, sku: str) -> tuple[str, float] | None:
    try:
        await session.add_to_cart(sku, 1)
        quote = await session.quote([{"sku": sku, "quantity": 1}])
        quote_id = min(quote["options"], key=lambda o: o["price"])["quote_id"]
        order = await session.checkout(quote_id, GOOD_CARD)
    except ApiError:
        return None
    return order["id"], time.time()


Shopper = tuple[str, str, str]
"""(user id, email, access token): logged in before the measured window."""


def _sessions(http: Any, shoppers: list[Shopper]) -> list[Session]:
    return [
        Session(http=http, user_id=u, email=e, access_token=t, refresh_token="")
        for u, e, t in shoppers
    ]


async def _closed_loop(shoppers: list[Shopper], sku: str, until: float) -> list[Any]:
    async with gateway_client(timeout=30) as http:
        queue = asyncio.Queue[Session]()
        for session in _sessions(http, shoppers):
            queue.put_nowait(session)
        accepted: list[Any] = []

        async def shopper() -> None:
            # Each lane shops as one customer for a while, then takes the next one.
            while time.time() < until and not queue.empty():
                session = queue.get_nowait()
                for _ in range(ORDERS_PER_CUSTOMER):
                    if time.time() >= until:
                        return
                    result = await _checkout(session, sku)
                    if result:
                        accepted.append(result)

        await asyncio.gather(*(shopper() for _ in range(CONCURRENCY)))
        return accepted


async def _open_loop(shoppers: list[Shopper], sku: str, rate: float, seconds: float) -> list[Any]:
    async with gateway_client(timeout=30) as http:
        sessions = _sessions(http, shoppers)
        accepted: list[Any] = []
        pending: set[asyncio.Task[None]] = set()
        idle = asyncio.Queue[Session]()
        for session in sessions:
            idle.put_nowait(session)

        async def one(session: Session) -> None:
            result = await _checkout(session, sku)
            if result:
                accepted.append(result)
            idle.put_nowait(session)

        begin = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            session = await idle.get()
            task = asyncio.create_task(one(session))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        return accepted


def _worker(args: tuple[str, list[Shopper], str, float, float]) -> list[Any]:
    mode, credentials, sku, a, b = args
    if mode == "closed":
        return asyncio.run(_closed_loop(credentials, sku, a))
    return asyncio.run(_open_loop(credentials, sku, a, b))


# ---------------------------------------------------------------- confirmations from Kafka


HOPS = {
    b"shop.inventory.stock_reserved.v1": "reserved",
    b"shop.payments.payment_authorized.v1": "authorized",
}
"""Saga steps timed on the way to the confirmation (seen on Kafka by this process)."""


class Confirmations:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.steps: dict[str, dict[str, float]] = {name: {} for name in HOPS.values()}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            topics.ORDERS,
            topics.INVENTORY,
            topics.PAYMENTS,
            bootstrap_servers="127.0.0.1:9092",
            auto_offset_reset="latest",
            enable_auto_commit=False,
            group_id=f"bench-{secrets.token_hex(4)}",
        )
        await self._consumer.start()
        while not self._consumer.assignment():  # noqa: ASYNC110 - polling the client's state
            await asyncio.sleep(0.1)
        for tp in self._consumer.assignment():
            await self._consumer.seek_to_end(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            ce_type = dict(record.headers).get("ce_type")
            if ce_type == b"shop.orders.order_confirmed.v1":
                self.at.setdefault(decode(list(record.headers), record.value).subject, time.time())
            elif ce_type in HOPS:
                subject = decode(list(record.headers), record.value).subject
                self.steps[HOPS[ce_type]].setdefault(subject, time.time())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def _p99(values: list[float]) -> float:
    return percentile(values, 0.99)


def _steps(
    confirmations: Confirmations, accepted: list[Any], summary: Callable[[list[float]], float]
) -> dict[str, float]:
    """A summary (median, p99) of each saga step's time, from the step before it (accepted ->
    reserved by inventory -> authorized by payments -> confirmed by orders; relays and Kafka
    included)."""
    figures: dict[str, float] = {}
    previous: dict[str, float] = dict(accepted)
    for name, seen in [*confirmations.steps.items(), ("confirmed", confirmations.at)]:
        gaps = [(seen[o] - previous[o]) * 1000 for o in previous if o in seen]
        if gaps:
            figures[f"to_{name}"] = summary(gaps)
        previous = {o: seen[o] for o in previous if o in seen}
    return figures


async def _settle(confirmations: Confirmations, accepted: list[Any], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(o not in confirmations.at for o, _ in accepted):  # noqa: ASYNC110
        await asyncio.sleep(0.2)


async def _customers(http: Any, count: int) -> list[Shopper]:
    async def one() -> Shopper:
        email = f"bench-{secrets.token_hex(6)}@example.com"
        password = f"Bench-{secrets.token_hex(8)}"
        await register(http, email, password, "Bench Shopper")
        session = await login(http, email, password)
        return session.user_id, email, session.access_token

    shoppers: list[Shopper] = []
    for start in range(0, count, 8):
        shoppers += await asyncio.gather(*(one() for _ in range(min(8, count - start))))
    return shoppers


async def run() -> dict[str, object]:
    async with gateway_client() as http:
        admin = await new_admin(http)
        sku = f"BENCH-{secrets.token_hex(3).upper()}"
        await admin.post(
            "/api/products",
            {"sku": sku, "name": f"Bench item {sku}", "price": 4990, "weight_grams": 500},
        )
        await admin.set_stock(sku, 1_000_000, "checkout benchmark")
        per_second_guess = 150
        needed = int(per_second_guess * (SECONDS + SECONDS / 2) / ORDERS_PER_CUSTOMER) + WORKERS
        credentials = await _customers(http, needed)
    await asyncio.sleep(2)  # the new product reaches the orders and shipping projections

    confirmations = Confirmations()
    await confirmations.start()
    chunks = [credentials[i::WORKERS] for i in range(WORKERS)]
    throughput_chunks = [c[: len(c) * 2 // 3] for c in chunks]
    latency_chunks = [c[len(c) * 2 // 3 :] for c in chunks]
    ctx = multiprocessing.get_context("spawn")
    figures: dict[str, object] = {}
    try:
        # The load processes run below the stack's priority: their CPU is not counted, and on
        # two cores they must not take it from the services they measure either.
        with ctx.Pool(WORKERS, initializer=os.nice, initargs=(10,)) as pool:
            cpu_before, wall_before = server_cpu_by_component(), time.time()
            until = wall_before + SECONDS
            results = await asyncio.to_thread(
                pool.map, _worker, [("closed", c, sku, until, 0.0) for c in throughput_chunks]
            )
            accepted = [item for chunk in results for item in chunk]
            await _settle(confirmations, accepted)
            cpu_after, wall_after = server_cpu_by_component(), time.time()
            confirmed = [o for o, _ in accepted if o in confirmations.at]
            per_component = {
                name: (cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / max(len(confirmed), 1)
                for name in cpu_after
            }
            window = wall_after - wall_before
            rate = len(confirmed) / SECONDS
            figures["checkouts_accepted"] = len(accepted)
            figures["checkouts_confirmed"] = len(confirmed)
            figures["confirmed_checkouts_per_s"] = round(rate, 1)
            # Confirmations seen before the load stopped: lower when a backlog drains afterwards.
            in_window = sum(1 for o in confirmed if confirmations.at[o] <= until)
            figures["confirmed_within_window_per_s"] = round(in_window / SECONDS, 1)
            # What the stack sustains: every confirmation over the load plus the time its
            # backlog took to drain (the figure above over-counts when a backlog builds up).
            figures["confirmed_per_s_including_drain"] = round(len(confirmed) / window, 1)
            figures["server_cpu_ms_per_checkout"] = round(sum(per_component.values()), 1)
            figures["cpu_ms_per_checkout_by_component"] = {
                name: round(ms, 1)
                for name, ms in sorted(per_component.items(), key=lambda item: -item[1])
            }
            figures["measured_window_s"] = round(window, 1)

            # Half the rate the stack sustained (its backlog drain included), so the latency run
            # measures the pipeline rather than a queue left over from an overload; and only
            # once the stack is idle again: the confirmations are drained, but the emails and
            # shipments of the throughput run would otherwise still be under way.
            figures["waited_before_latency_run_s"] = await asyncio.to_thread(wait_until_quiet)
            target_rate = max(len(confirmed) / window / 2, 1.0)
            latency_seconds = SECONDS / 2
            per_worker = target_rate / WORKERS
            results = await asyncio.to_thread(
                pool.map,
                _worker,
                [("open", c, sku, per_worker, latency_seconds) for c in latency_chunks],
            )
            accepted = [item for chunk in results for item in chunk]
            await _settle(confirmations, accepted)
            latencies = [
                (confirmations.at[o] - t) * 1000 for o, t in accepted if o in confirmations.at
            ]
            figures["latency_rate_per_s"] = round(target_rate, 1)
            figures["latency_p50_ms_by_step"] = _steps(confirmations, accepted, _p50)
            figures["latency_p99_ms_by_step"] = _steps(confirmations, accepted, _p99)
            if latencies:
                figures["accepted_to_confirmed_p50_ms"] = _p50(latencies)
                figures["accepted_to_confirmed_p99_ms"] = _p99(latencies)
            figures["targets"] = (
                ">= 100 checkouts/s, p99 < 500 ms at half rate, <= 20 CPU-ms per checkout"
            )
            figures["load_generators"] = f"{WORKERS} processes x {CONCURRENCY} shoppers"
            figures["machine_load_1m"] = os.getloadavg()[0]
    finally:
        await confirmations.stop()
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run()), indent=2))
