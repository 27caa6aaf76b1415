"""Property: however the saga's events are interleaved, duplicated or batched, stock ends right.

Each example builds a few orders, each following a real saga history (placed -> confirmed,
payment failed, cancelled, ...). Events of one order on one topic keep their order (Kafka keeps
it per key), but the orders, payments and shipping topics interleave freely, so a payment
failure can overtake its own OrderPlaced, and shipping's word that a cancelled order's parcel
will not ship can overtake the confirmation and the cancellation. Copies are redelivered later, with the same event id (inbox) or a
new one (a re-emitted fact). Batches are applied the way the consumer runtime applies them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from contracts.types import utc_now
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inventory_service import repository, service
from inventory_service.consumers import saga
from inventory_service.inbox import InventoryInbox
from inventory_service.models import messaging
from inventory_service.service import StockPolicy
from shopkit.db import create_engine, create_sessionmaker
from shopkit.testing import create_database, drop_database, migrate
from sqlalchemy import text

from contracts import Envelope, Event, new_id

from .factories import (
    order_cancelled,
    order_confirmed,
    order_placed,
    payment_action_required,
    payment_failed,
    shipment_cancelled,
)

INITIAL = 50
POLICY = StockPolicy(
    reservation_ttl=timedelta(minutes=15), extension=timedelta(minutes=15), low_stock_threshold=5
)

TOPICS = ("orders", "payments", "shipping")
# scenario -> (orders-topic steps, payments-topic steps, shipping-topic steps, final status)
SCENARIOS: dict[str, tuple[list[str], list[str], list[str], str]] = {
    "pending": (["placed"], [], [], "held"),
    "confirmed": (["placed", "confirmed"], [], [], "committed"),
    "action_then_confirmed": (["placed", "confirmed"], ["action"], [], "committed"),
    "confirmed_then_cancelled": (
        ["placed", "confirmed", "cancelled_confirmed"],
        [],
        ["shipment_cancelled"],
        "released",
    ),
    # The cancel raced the dispatch: the parcel left, shipping says nothing, the units are gone.
    "cancelled_after_dispatch": (
        ["placed", "confirmed", "cancelled_confirmed"],
        [],
        [],
        "committed",
    ),
    "payment_failed": (["placed", "cancelled_pending"], ["failed"], [], "released"),
    "action_then_failed": (["placed", "cancelled_awaiting"], ["action", "failed"], [], "released"),
    "customer_cancelled": (["placed", "cancelled_pending"], [], [], "released"),
}


RELEASES = (
    "failed",
    "cancelled_pending",
    "cancelled_awaiting",
    "cancelled_confirmed",
    "shipment_cancelled",
)


def run_isolated(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine on its own loop in its own thread (hypothesis drives sync tests)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    async def create() -> str:
        url = await create_database("test_inventory_order")
        await migrate("inventory", url)
        return url

    url: str = run_isolated(create)
    yield url
    run_isolated(lambda: drop_database(url))


@dataclass
class Example:
    orders: list[tuple[str, list[tuple[str, int]]]]
    deliveries: list[tuple[int, str, bool]] = field(default_factory=list)
    """(order index, step, is a re-emitted copy with a new event id); same-id copies repeat."""
    batches: list[int] = field(default_factory=list)


@st.composite
def examples(draw: st.DrawFn) -> Example:
    orders = [
        (
            draw(st.sampled_from(sorted(SCENARIOS))),
            draw(
                st.lists(
                    st.tuples(st.sampled_from("ABC"), st.integers(1, 3)), min_size=1, max_size=3
                )
            ),
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    queues = {
        (index, topic): list(steps)
        for index, (scenario, _) in enumerate(orders)
        for topic, steps in zip(TOPICS, SCENARIOS[scenario][:3], strict=True)
        if steps
    }
    sequence: list[tuple[int, str, bool]] = []
    while queues:
        key = draw(st.sampled_from(sorted(queues)))
        sequence.append((key[0], queues[key].pop(0), False))
        if not queues[key]:
            del queues[key]
    for _ in range(draw(st.integers(0, 4))):
        original = draw(st.integers(0, len(sequence) - 1))
        position = draw(st.integers(original + 1, len(sequence)))
        index, step, _ = sequence[original]
        sequence.insert(position, (index, step, draw(st.booleans())))
    batches = draw(st.lists(st.integers(1, 3), min_size=len(sequence), max_size=len(sequence)))
    return Example(orders=orders, deliveries=sequence, batches=batches)


def build_event(step: str, placed: Any) -> Event:
    makers: dict[str, Callable[[], Event]] = {
        "placed": lambda: placed,
        "confirmed": lambda: order_confirmed(placed),
        "cancelled_pending": lambda: order_cancelled(placed, "PENDING"),
        "cancelled_awaiting": lambda: order_cancelled(placed, "AWAITING_PAYMENT"),
        "cancelled_confirmed": lambda: order_cancelled(placed, "CONFIRMED"),
        "failed": lambda: payment_failed(placed),
        "action": lambda: payment_action_required(placed),
        "shipment_cancelled": lambda: shipment_cancelled(placed),
    }
    return makers[step]()


async def play(url: str, example: Example) -> None:
    engine = create_engine(url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    policy = POLICY
    inbox = InventoryInbox(sessionmaker, messaging, policy)
    tag = new_id()[-10:]
    skus = {name: f"H{tag}-{name}" for name in "ABC"}
    try:
        async with sessionmaker() as session, session.begin():
            for sku in skus.values():
                await service.set_stock(
                    session,
                    sku=sku,
                    on_hand=INITIAL,
                    reason="count",
                    actor_id=new_id(),
                    policy=policy,
                    now=utc_now(),
                )
        placed = [
            order_placed(new_id(), [(skus[name], q) for name, q in lines])
            for _, lines in example.orders
        ]
        # One envelope per (order, step): a same-id copy is that very envelope again.
        originals: dict[tuple[int, str], Envelope[Event]] = {}
        envelopes: list[Envelope[Event]] = []
        for index, step, reemitted in example.deliveries:
            key = (index, step)
            if key not in originals:
                originals[key] = Envelope(data=build_event(step, placed[index]))
                envelopes.append(originals[key])
            elif reemitted:
                envelopes.append(Envelope(data=originals[key].data))
            else:
                envelopes.append(originals[key])

        position = 0
        for size in example.batches:
            batch = envelopes[position : position + size]
            position += size
            if not batch:
                break
            await apply_like_the_consumer(inbox, batch)
            await check_balances(sessionmaker, list(skus.values()))

        await check_outcome(sessionmaker, example, placed, skus)
    finally:
        await engine.dispose()


async def apply_like_the_consumer(inbox: InventoryInbox, batch: list[Envelope[Event]]) -> None:
    async with inbox.transaction() as tx:
        fresh = await tx.claim("inventory-saga", batch)
        applied: set[str] = set()
        for envelope in batch:
            if envelope.id not in fresh or envelope.id in applied:
                continue
            applied.add(envelope.id)
            handler = saga.handler_for(envelope.type)
            assert handler is not None
            await handler(envelope, tx.context(envelope))
        await tx.commit()


async def check_balances(sessionmaker: Any, skus: list[str]) -> None:
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT sku, on_hand, reserved, committed, received FROM stock_items "
                    "WHERE sku = ANY(:skus)"
                ),
                {"skus": skus},
            )
        ).all()
        held = dict(
            (
                await session.execute(
                    text(
                        "SELECT l.sku, sum(l.quantity) FROM reservation_lines l JOIN reservations r "
                        "USING (order_id) WHERE r.status = 'held' AND l.sku = ANY(:skus) GROUP BY l.sku"
                    ),
                    {"skus": skus},
                )
            ).all()
        )
    for sku, on_hand, reserved, committed, received in rows:
        available = on_hand - reserved
        assert available >= 0
        assert reserved + committed + available == received == INITIAL
        assert reserved == held.get(sku, 0)


async def check_outcome(
    sessionmaker: Any, example: Example, placed: list[Any], skus: dict[str, str]
) -> None:
    order_ids = [p.order_id for p in placed]
    async with sessionmaker() as session:
        book = await repository.load_book(session, order_ids=order_ids, skus=skus.values())
        reservations, stock = book.reservations, book.stock
        events = (
            await session.execute(
                text("SELECT key, ce_type FROM outbox WHERE key = ANY(:ids)"), {"ids": order_ids}
            )
        ).all()
    expected_held: dict[str, int] = dict.fromkeys(skus.values(), 0)
    expected_committed: dict[str, int] = dict.fromkeys(skus.values(), 0)
    for index, ((scenario, _), order) in enumerate(zip(example.orders, placed, strict=True)):
        final = SCENARIOS[scenario][3]
        steps = [step for i, step, _ in example.deliveries if i == index]
        overtaken = steps.index("placed") > min(
            (steps.index(s) for s in RELEASES if s in steps), default=len(steps)
        )
        assert reservations[order.order_id].status == final, (scenario, example.deliveries)
        counts = {
            t: sum(1 for k, ce in events if k == order.order_id and ce == t)
            for t in (
                "shop.inventory.stock_reserved.v1",
                "shop.inventory.stock_released.v1",
                "shop.inventory.stock_committed.v1",
            )
        }
        reserved_n, released_n, committed_n = counts.values()
        assert max(counts.values()) <= 1, (scenario, counts)  # each step at most once
        if final == "held":
            assert (reserved_n, released_n, committed_n) == (1, 0, 0)
        if final == "committed":
            assert (reserved_n, released_n, committed_n) == (1, 0, 1)
        if final == "released":
            # Units that were ever held are given back exactly once...
            assert released_n == reserved_n
        # ...and an order whose release overtook it never holds stock (payments would charge).
        assert reserved_n == (0 if overtaken else 1), (scenario, steps)
        for line in order.lines:
            target = expected_held if final == "held" else expected_committed
            if final != "released":
                target[line.sku] += line.quantity
    for sku, row in stock.items():
        assert row.reserved == expected_held[sku]
        assert row.committed == expected_committed[sku]
        assert row.available == INITIAL - expected_held[sku] - expected_committed[sku]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(example=examples())
def test_any_delivery_order_and_duplication_ends_in_the_same_state(
    database_url: str, example: Example
) -> None:
    run_isolated(lambda: play(database_url, example))


def test_a_release_before_its_reservation_holds_nothing(database_url: str) -> None:
    example = Example(
        orders=[("payment_failed", [("A", 2)])],
        deliveries=[(0, "failed", False), (0, "placed", False), (0, "cancelled_pending", False)],
        batches=[1, 1, 1],
    )
    run_isolated(lambda: play(database_url, example))
