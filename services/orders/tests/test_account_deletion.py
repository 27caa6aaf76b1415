"""A deleted account (`UserDeletionRequested` on users.events): the user's orders keep what
accounting needs and lose what identifies the person; their cart is gone, in PostgreSQL and in
the Redis copy; a redelivery or a re-emission changes nothing; other users are untouched. The
timeline, a consumer group of its own that may lag, never keeps their personal fields either."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from contracts.events.orders import (
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
)
from contracts.events.users import UserDeletionRequested, UserProfileUpdated
from orders_service.service.timeline import TimelineStore
from shopkit.app import sessionmaker_of
from sqlalchemy import text

from contracts import Envelope, Event, new_id

from .support import Harness

PERSONAL = (
    "Maria Silva",
    "Avenida Paulista",
    "1578 fundos",
    "apto 12",
    "Bela Vista",
    "São Paulo",
)
NOTE = "Liguem para 11 98765-4321 antes de entregar"
IP = "203.0.113.9"


def _deletion(user_id: str) -> Envelope[Event]:
    return Envelope(data=UserDeletionRequested(user_id=user_id, requested_at=datetime.now(UTC)))


async def _customer(harness: Harness) -> dict[str, Any]:
    """A user with a cancelled order (with a note), a pending one, a confirmed one whose
    cancellation (with the note) waits for shipping, and a filled cart."""
    headers = harness.user()
    cancelled, _ = await harness.placed_order(headers)
    response = await harness.client.post(
        f"/api/orders/{cancelled['id']}/cancel", headers=headers, json={"reason": NOTE}
    )
    assert response.status_code == 200, response.text
    product = await harness.product(price=4200)
    await harness.fill_cart(headers, (product, 1))
    checkout = await harness.checkout(
        {**headers, "X-Forwarded-For": IP}, harness.checkout_body([(product.sku, 1)])
    )
    assert checkout.status_code == 202, checkout.text
    pending = checkout.json()
    requested, _ = await harness.placed_order(headers)
    await harness.authorize(requested, await harness.reserve(requested))
    await harness.wait_status(requested["id"], headers, "CONFIRMED")
    response = await harness.client.post(
        f"/api/orders/{requested['id']}/cancel", headers=headers, json={"reason": NOTE}
    )
    assert response.status_code == 202, response.text
    await harness.fill_cart(headers, (product, 3))
    cart = (await harness.client.get("/api/cart", headers=headers)).json()
    assert cart["item_count"] == 3  # and now copied into Redis
    return {
        "headers": headers,
        "user_id": harness.user_id(headers),
        "orders": [cancelled["id"], pending["id"], requested["id"]],
    }


async def _row(harness: Harness, order_id: str) -> dict[str, Any]:
    """The whole stored order: its row, lines and history, as JSON."""
    value = await harness.scalar(
        "SELECT json_build_object("
        " 'order', (SELECT to_jsonb(o) FROM orders o WHERE o.id = :id),"
        " 'lines', (SELECT jsonb_agg(l ORDER BY l.line_no) FROM order_lines l"
        "           WHERE l.order_id = :id),"
        " 'history', (SELECT jsonb_agg(h ORDER BY h.at, h.id) FROM order_status_history h"
        "             WHERE h.order_id = :id))",
        id=order_id,
    )
    found: dict[str, Any] = value if isinstance(value, dict) else json.loads(value)
    return found


async def _timeline_data(harness: Harness, subject: str) -> list[dict[str, Any]]:
    value = await harness.scalar(
        "SELECT coalesce(jsonb_agg(data ORDER BY time), '[]') FROM timeline_events"
        " WHERE subject = :subject",
        subject=subject,
    )
    found: list[dict[str, Any]] = value if isinstance(value, list) else json.loads(value)
    return found


async def _handled(harness: Harness, envelope: Envelope[Event]) -> None:
    """Wait until the orders consumer recorded the event in its inbox (applied and committed)."""

    async def recorded() -> bool:
        count = await harness.scalar(
            "SELECT count(*) FROM inbox WHERE event_id = :id", id=envelope.id
        )
        return bool(count)

    await harness.until(recorded)


async def test_deletion_anonymises_orders_and_deletes_the_cart(harness: Harness) -> None:
    gone, kept = await _customer(harness), await _customer(harness)
    await harness.bus.publish(
        UserProfileUpdated(
            user_id=gone["user_id"],
            name="Maria Silva",
            phone="+5511987654321",
            updated_at=datetime.now(UTC),
        )
    )

    async def recorded_in_timeline() -> bool:
        # The timeline projection holds the saga's personal data: the cancellation note and
        # the addresses. The profile event is recorded without its payload (never its phone).
        cancelled = json.dumps(await _timeline_data(harness, gone["orders"][0]))
        placed = await _timeline_data(harness, gone["orders"][1])
        profile = await _timeline_data(harness, gone["user_id"])
        other = await _timeline_data(harness, kept["orders"][1])
        return (
            json.dumps(NOTE)[1:-1] in cancelled
            and any("shipping_address" in data for data in placed)
            and bool(profile)
            and all(data == {} for data in profile)
            and any("shipping_address" in data for data in other)
        )

    await harness.until(recorded_in_timeline)
    before = {order_id: await _row(harness, order_id) for order_id in gone["orders"]}
    others_before = {order_id: await _row(harness, order_id) for order_id in kept["orders"]}
    assert before[gone["orders"][1]]["order"]["customer_ip"] == IP
    assert before[gone["orders"][2]]["order"]["cancellation_note"] == NOTE

    deletion = _deletion(gone["user_id"])
    await harness.bus.send(deletion)
    await _handled(harness, deletion)

    admin = harness.admin()
    # The order still in flight is cancelled: its address is gone, and so is the customer who
    # could have cancelled it. (The confirmed one's cancellation was already asked of shipping.)
    in_flight = gone["orders"][1]
    stopped = await harness.wait_status(in_flight, admin, "CANCELLED")
    assert stopped["history"][-1]["reason"] == "account_deleted"
    assert stopped["cancel_reason"] == "customer_request"
    [cancelled_event] = await harness.watcher.wait_for(in_flight, OrderCancelled)
    assert cancelled_event.data.previous_status == "PENDING"
    for order_id in gone["orders"]:
        after = await _row(harness, order_id)
        was = before[order_id]
        # Accounting survives: amounts, status, lines, payment references, history rows.
        for field in (
            "id",
            "user_id",
            "currency",
            "subtotal",
            "discount",
            "shipping",
            "total",
            "coupon_code",
            "shipping_choice",
            "payment_method_id",
            "payment_status",
            "created_at",
        ):
            assert after["order"][field] == was["order"][field], field
        assert after["lines"] == was["lines"]
        history = [(h["from_status"], h["to_status"], h["at"]) for h in after["history"]]
        if order_id == in_flight:
            history = history[:-1]  # the cancellation just added
        else:
            for field in ("status", "cancel_reason", "status_changed_at"):
                assert after["order"][field] == was["order"][field], field
        assert history == [(h["from_status"], h["to_status"], h["at"]) for h in was["history"]]
        # The person does not.
        assert after["order"]["customer_ip"] is None
        assert after["order"]["anonymised_at"] is not None
        assert after["order"]["shipping_address"] == {
            "recipient": "[removed]",
            "street": "[removed]",
            "number": "",
            "complement": None,
            "district": "[removed]",
            "city": "[removed]",
            "state": "SP",
            "cep": "01310000",
            "country": "BR",
        }
        stored = json.dumps(after, ensure_ascii=False)
        assert not any(value in stored for value in (*PERSONAL, NOTE, IP)), stored
        # The API still serves the order (placeholders validate), without the person.
        shown = await harness.client.get(f"/api/orders/{order_id}", headers=admin)
        assert shown.status_code == 200, shown.text
        assert shown.json()["total"] == was["order"]["total"]
        assert not any(value in shown.text for value in (*PERSONAL, NOTE))
    [cancel] = own_cancellations(await _row(harness, gone["orders"][0]))
    assert cancel["reason"] == "customer_request"

    # The cart is gone from PostgreSQL and from the Redis copy the API reads first.
    assert (
        await harness.scalar("SELECT count(*) FROM carts WHERE user_id = :u", u=gone["user_id"])
        == 0
    )
    cart = (await harness.client.get("/api/cart", headers=gone["headers"])).json()
    assert cart["items"] == [] and cart["item_count"] == 0
    # So are the checkout responses kept for retries (each a copy of the address).
    assert (
        await harness.scalar(
            "SELECT count(*) FROM idempotency_keys WHERE user_id = :u", u=gone["user_id"]
        )
        == 0
    )
    # And the timeline's copies of the user's events lost their personal fields.
    timeline = [
        *(await _timeline_data(harness, gone["user_id"])),
        *[d for o in gone["orders"] for d in await _timeline_data(harness, o)],
    ]
    assert timeline
    assert not any(
        key in data
        for data in timeline
        for key in ("shipping_address", "customer_ip", "name", "phone", "email")
    )
    assert not any(
        value in json.dumps(timeline, ensure_ascii=False) for value in (*PERSONAL, NOTE, IP)
    )

    # Another user's orders, cart, retry records and timeline are untouched.
    for order_id, was in others_before.items():
        assert await _row(harness, order_id) == was
    other_cart = (await harness.client.get("/api/cart", headers=kept["headers"])).json()
    assert other_cart["item_count"] == 3
    assert await harness.scalar(
        "SELECT count(*) FROM idempotency_keys WHERE user_id = :u", u=kept["user_id"]
    ) == len(kept["orders"])
    assert any(
        "shipping_address" in data for data in await _timeline_data(harness, kept["orders"][1])
    )


def own_cancellations(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The history rows of the customer's own cancellation."""
    return [h for h in row["history"] if h["to_status"] == "CANCELLED"]


async def test_a_second_deletion_changes_nothing(harness: Harness) -> None:
    gone = await _customer(harness)
    first = _deletion(gone["user_id"])
    await harness.bus.send(first)
    await _handled(harness, first)
    anonymised = {order_id: await _row(harness, order_id) for order_id in gone["orders"]}

    # The same event delivered again (the inbox drops it), then the request emitted again
    # under a new id (the handler runs: its effect must already be there).
    again = _deletion(gone["user_id"])
    await harness.bus.send(first)
    await harness.bus.send(again)
    await _handled(harness, again)

    for order_id, was in anonymised.items():
        assert await _row(harness, order_id) == was  # not even updated_at moved
    cart = (await harness.client.get("/api/cart", headers=gone["headers"])).json()
    assert cart["item_count"] == 0


async def test_a_confirmed_order_of_a_deleted_account_is_asked_to_stop(harness: Harness) -> None:
    """Confirmed, its parcel not picked up yet: it went on to ship to "[removed]" and charge a
    customer who could no longer cancel. Its cancellation is asked of shipping instead."""
    headers = harness.user()
    order, _ = await harness.placed_order(headers)
    await harness.authorize(order, await harness.reserve(order))
    await harness.wait_status(order["id"], headers, "CONFIRMED")

    deletion = _deletion(harness.user_id(headers))
    await harness.bus.send(deletion)
    await _handled(harness, deletion)

    [requested] = await harness.watcher.wait_for(order["id"], OrderCancellationRequested)
    assert requested.data.reason == "customer_request"
    shown = await harness.order(order["id"], harness.admin())
    assert shown["status"] == "CONFIRMED"
    assert shown["cancellation"]["status"] == "requested"


async def test_an_unknown_user_is_a_no_op(harness: Harness) -> None:
    kept = await _customer(harness)
    before = {order_id: await _row(harness, order_id) for order_id in kept["orders"]}
    stranger = _deletion(new_id())
    await harness.bus.send(stranger)
    await _handled(harness, stranger)

    for order_id, was in before.items():
        assert await _row(harness, order_id) == was
    assert (await harness.client.get("/api/cart", headers=kept["headers"])).json()[
        "item_count"
    ] == 3


# ----------------------------------------------------------------- the timeline's backlog


async def _ordered_with_ip(harness: Harness, headers: dict[str, str]) -> list[Envelope[Event]]:
    """A CONFIRMED order placed from `IP`: its OrderPlaced and OrderConfirmed."""
    product = await harness.product(price=3100)
    await harness.fill_cart(headers, (product, 1))
    response = await harness.checkout(
        {**headers, "X-Forwarded-For": IP}, harness.checkout_body([(product.sku, 1)])
    )
    assert response.status_code == 202, response.text
    order = response.json()
    await harness.authorize(order, await harness.reserve(order))
    await harness.wait_status(order["id"], headers, "CONFIRMED")
    placed = await harness.watcher.wait_for(order["id"], OrderPlaced)
    confirmed = await harness.watcher.wait_for(order["id"], OrderConfirmed)
    events: list[Envelope[Event]] = [placed[0], confirmed[0]]
    assert placed[0].data.customer_ip == IP
    return events


def _still_in_backlog(envelope: Envelope[Event]) -> Envelope[Event]:
    """`envelope` as the timeline consumer would meet it later, lagging behind: the running
    consumer recorded the original already, so the copy carries an id of its own."""
    return replace(envelope, id=new_id())


def _without(envelope: Envelope[Event], *fields: str) -> dict[str, Any]:
    data: dict[str, Any] = envelope.data.model_dump(mode="json")
    return {key: value for key, value in data.items() if key not in fields}


async def _recorded(harness: Harness, envelope: Envelope[Event]) -> dict[str, Any] | None:
    value = await harness.scalar(
        "SELECT data FROM timeline_events WHERE event_id = :id", id=envelope.id
    )
    if value is None:
        return None
    found: dict[str, Any] = value if isinstance(value, dict) else json.loads(value)
    return found


async def _record_batch(harness: Harness, envelopes: Sequence[Envelope[Event]]) -> None:
    """Record `envelopes` as one consumed batch of the timeline consumer: its store's unit of
    work, committed once."""
    async with TimelineStore(sessionmaker_of(harness.app)).transaction() as batch:
        for envelope in envelopes:
            batch.record(envelope)
        await batch.commit()


async def test_the_timeline_records_an_erased_accounts_late_events_without_its_data(
    harness: Harness,
) -> None:
    """The erasure ran while the order's OrderPlaced and OrderConfirmed still waited in the
    timeline consumer's backlog: they arrive afterwards, and are stored without the address
    and the IP (everything else of them stays)."""
    headers = harness.user()
    events = await _ordered_with_ip(harness, headers)
    deletion = _deletion(harness.user_id(headers))
    await harness.bus.send(deletion)
    await _handled(harness, deletion)

    late = [await harness.bus.send(_still_in_backlog(event)) for event in events]

    async def stored() -> list[dict[str, Any]] | None:
        rows = [await _recorded(harness, envelope) for envelope in late]
        return None if None in rows else [row for row in rows if row is not None]

    rows = await harness.until(stored)
    for envelope, data in zip(late, rows, strict=True):
        assert data == _without(envelope, "shipping_address", "customer_ip"), envelope.type
        assert not any(value in json.dumps(data, ensure_ascii=False) for value in (*PERSONAL, IP))


async def test_other_users_in_the_same_timeline_batch_keep_their_data(harness: Harness) -> None:
    """One batch of the timeline with an erased account's events and another user's: only the
    erased account's rows lose their personal fields."""
    gone, kept = harness.user(), harness.user()
    gone_events = await _ordered_with_ip(harness, gone)
    kept_events = await _ordered_with_ip(harness, kept)
    deletion = _deletion(harness.user_id(gone))
    await harness.bus.send(deletion)
    await _handled(harness, deletion)

    gone_late = [_still_in_backlog(event) for event in gone_events]
    kept_late = [_still_in_backlog(event) for event in kept_events]
    await _record_batch(harness, [gone_late[0], kept_late[0], gone_late[1], kept_late[1]])

    for envelope in gone_late:
        data = await _recorded(harness, envelope)
        assert data == _without(envelope, "shipping_address", "customer_ip"), envelope.type
    for envelope in kept_late:
        data = await _recorded(harness, envelope)
        assert data == _without(envelope), envelope.type
        assert data["shipping_address"]["recipient"] == "Maria Silva"
    assert (await _recorded(harness, kept_late[0]) or {})["customer_ip"] == IP


async def test_an_erasure_waits_for_a_timeline_batch_holding_the_user(harness: Harness) -> None:
    """A timeline batch with the user's OrderPlaced is still open (its insert waits for another
    transaction writing the same event, as a second consumer in a rebalance would) when the
    erasure runs: the erasure waits for the batch to commit, then scrubs what it stored."""
    headers = harness.user()
    placed, _ = await _ordered_with_ip(harness, headers)
    late = _still_in_backlog(placed)
    redelivered = Envelope(
        data=UserProfileUpdated(user_id=new_id(), name="Ana", updated_at=datetime.now(UTC))
    )
    async with harness.engine.connect() as other:
        await other.execute(
            text(
                "INSERT INTO timeline_events"
                " (event_id, correlation_id, subject, type, source, topic, time, data)"
                " VALUES (:id, :correlation_id, :subject, :type, :source, :topic, now(), '{}')"
            ),
            {
                "id": redelivered.id,
                "correlation_id": redelivered.correlation_id,
                "subject": redelivered.subject,
                "type": redelivered.type,
                "source": redelivered.source,
                "topic": redelivered.topic,
            },
        )
        batch = asyncio.create_task(_record_batch(harness, [late, redelivered]))

        async def batch_waits() -> bool:
            waiting = await harness.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO timeline_events%'"
            )
            return bool(waiting)

        await harness.until(batch_waits)
        deletion = _deletion(harness.user_id(headers))
        await harness.bus.send(deletion)

        async def erasure_handled() -> bool:
            count = await harness.scalar(
                "SELECT count(*) FROM inbox WHERE event_id = :id", id=deletion.id
            )
            return bool(count)

        async def erasure_waits() -> bool:
            # Queued on a user's lock (the two-key kind: the coupons' turn is a one-key lock).
            waiting = await harness.scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objsubid = 2"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            return bool(waiting)

        async def erasure_done_or_waiting() -> bool:
            return await erasure_handled() or await erasure_waits()

        await harness.until(erasure_done_or_waiting)
        assert not await erasure_handled(), "the erasure ran while the batch was open"
        assert not batch.done()
        # Let the batch go: the other transaction gives up its copy of the event.
        await other.rollback()
        await asyncio.wait_for(batch, timeout=30)

    await _handled(harness, deletion)
    data = await _recorded(harness, late)
    assert data == _without(late, "shipping_address", "customer_ip")


async def test_a_token_that_outlived_the_deletion_places_no_order(harness: Harness) -> None:
    # auth revokes the account's tokens in its own consumer, which may lag behind this one:
    # the checkout used to store an order with the full address and IP that nothing would
    # ever anonymise (the deletion is handled once).
    user = harness.user()
    user_id = harness.user_id(user)
    product = await harness.product(price=1000)
    await harness.bus.send(
        Envelope(data=UserDeletionRequested(user_id=user_id, requested_at=datetime.now(UTC)))
    )

    async def erased() -> bool:
        return bool(
            await harness.scalar(
                "SELECT count(*) FROM erased_users WHERE user_id = :user_id", user_id=user_id
            )
        )

    await harness.until(erased)
    await harness.fill_cart(user, (product, 2))
    response = await harness.checkout(user, harness.checkout_body([(product.sku, 2)]))
    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/account-deleted")
    stored = await harness.scalar(
        "SELECT count(*) FROM orders WHERE user_id = :user_id", user_id=user_id
    )
    assert stored == 0
    keys = await harness.scalar(
        "SELECT count(*) FROM idempotency_keys WHERE user_id = :user_id", user_id=user_id
    )
    assert keys == 0
