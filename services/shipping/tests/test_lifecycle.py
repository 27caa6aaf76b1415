"""A shipment from OrderConfirmed to delivery, driven by signed carrier webhooks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contracts.events.orders import (
    OrderCancellationRequested,
    OrderCancelled,
    OrderFulfilmentReleased,
)
from contracts.events.shipping import (
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShipmentTrackingUpdated,
)
from shipping_service import cli, repository
from shipping_service.sandbox import SandboxCarrier
from shipping_service.service import shipments
from shipping_service.webhooks import SIGNATURE_HEADER, signature_header
from shopkit.app import sessionmaker_of
from shopkit.testing import eventually, publish, serve, wait_for_events
from sqlalchemy import text
from typer.testing import CliRunner

from contracts import Envelope, Event, new_id

from . import factories
from .conftest import Running

TOPIC = "shipping.events"


async def _confirmed_order(
    shipping: Running,
    *,
    service: str = "SEDEX",
    carrier: str = "correios",
    payment_review_pending: bool = False,
) -> tuple[str, str, dict[str, Any]]:
    """Publish products and an OrderConfirmed; returns (user id, order id, the shipment)."""
    ns = shipping.settings.kafka_namespace
    book, mug = factories.product(weight_grams=350), factories.product(weight_grams=420)
    user_id = new_id()
    order = factories.order_confirmed(
        user_id=user_id, lines=[(book.sku, 2), (mug.sku, 1)], carrier=carrier, service=service
    ).model_copy(update={"payment_review_pending": payment_review_pending})
    await publish(ns, book, mug, order)
    headers = shipping.tokens.headers(user_id)

    async def created() -> Any:
        response = await shipping.client.get(
            f"/api/shipping/orders/{order.order_id}", headers=headers
        )
        return response.json() if response.status_code == 200 else None

    shipment = await eventually(created, timeout=30, interval=0.3)
    return user_id, order.order_id, shipment


def _carrier(shipping: Running) -> SandboxCarrier:
    return SandboxCarrier(http=shipping.client, settings=shipping.settings)


async def test_full_lifecycle_driven_by_the_sandbox_carrier_cli(shipping: Running) -> None:
    user_id, order_id, shipment = await _confirmed_order(shipping)
    ns = shipping.settings.kafka_namespace
    assert shipment["status"] == "created"
    assert shipment["carrier"] == "correios"
    assert shipment["service"] == "SEDEX"
    created = await wait_for_events(ns, ShipmentCreated, where=lambda e: e.order_id == order_id)
    assert created[0].tracking_number == shipment["tracking_number"]
    assert created[0].user_id == user_id

    # The CLI, as an operator runs it, against the service's public endpoint over real HTTP.
    async with serve(shipping.app) as base_url:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli.app,
            ["simulate", shipment["tracking_number"], "--base-url", base_url],
        )
    assert result.exit_code == 0, result.output
    assert "posted -> in_transit -> out_for_delivery -> delivered" in result.output

    final = (
        await shipping.client.get(
            f"/api/shipping/orders/{order_id}", headers=shipping.tokens.headers(user_id)
        )
    ).json()
    assert final["status"] == "delivered"
    assert [e["status"] for e in final["events"]] == [
        "created",
        "posted",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]
    assert final["dispatched_at"] is not None
    assert final["delivered_at"] is not None

    delivered = await wait_for_events(ns, ShipmentDelivered, where=lambda e: e.order_id == order_id)
    dispatched = await wait_for_events(
        ns, ShipmentDispatched, where=lambda e: e.order_id == order_id
    )
    updates = await wait_for_events(
        ns, ShipmentTrackingUpdated, count=2, where=lambda e: e.order_id == order_id
    )
    assert len(dispatched) == 1
    assert len(delivered) == 1
    assert [u.status for u in updates] == ["in_transit", "out_for_delivery"]
    assert delivered[0].user_id == user_id
    assert sorted(delivered[0].skus) == sorted(
        {line["sku"] for line in await _items(shipping, order_id, user_id)}
    )

    public = (
        await shipping.client.get(f"/api/shipping/track/{shipment['tracking_number']}")
    ).json()
    assert public["status"] == "delivered"
    assert "Maria" not in json.dumps(public)
    assert "Augusta" not in json.dumps(public)


async def _items(shipping: Running, order_id: str, user_id: str) -> list[dict[str, Any]]:
    async with sessionmaker_of(shipping.app)() as session:
        found = await repository.shipment_for_order(session, order_id)
        assert found is not None
        return list(found.items)


async def test_redelivered_order_confirmed_creates_one_shipment(shipping: Running) -> None:
    ns = shipping.settings.kafka_namespace
    item = factories.product()
    order = factories.order_confirmed(user_id=new_id(), lines=[(item.sku, 1)])
    _, first = await publish(ns, item, order)
    again = await publish(ns, order)  # same order, new event id: the inbox cannot help here
    assert again[0].id != first.id
    marker = factories.order_confirmed(user_id=new_id(), lines=[(item.sku, 1)])
    await publish(ns, marker)
    await wait_for_events(ns, ShipmentCreated, where=lambda e: e.order_id == marker.order_id)
    created = await wait_for_events(
        ns, ShipmentCreated, where=lambda e: e.order_id == order.order_id
    )
    assert len(created) == 1


async def test_label_pdf_and_zpl_for_the_owner_only(shipping: Running) -> None:
    user_id, _, shipment = await _confirmed_order(shipping)
    url = f"/api/shipping/shipments/{shipment['shipment_id']}/label"
    pdf = await shipping.client.get(url, headers=shipping.tokens.headers(user_id))
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4")
    assert pdf.content.rstrip().endswith(b"%%EOF")
    assert shipment["tracking_number"].encode() in pdf.content
    zpl = await shipping.client.get(
        url, params={"format": "zpl"}, headers=shipping.tokens.headers(user_id)
    )
    assert zpl.text.startswith("^XA")
    assert shipment["tracking_number"] in zpl.text
    assert "Maria Silva" in zpl.text
    other = await shipping.client.get(url, headers=shipping.tokens.headers(new_id()))
    assert other.status_code == 404
    admin = await shipping.client.get(
        url, headers=shipping.tokens.headers(new_id(), ("customer", "admin"))
    )
    assert admin.status_code == 200
    anonymous = await shipping.client.get(url)
    assert anonymous.status_code == 401
    unknown_format = await shipping.client.get(
        url, params={"format": "docx"}, headers=shipping.tokens.headers(user_id)
    )
    assert unknown_format.status_code == 422  # the schema lists pdf and zpl


async def test_order_shipment_is_owner_or_admin_only(shipping: Running) -> None:
    user_id, order_id, _ = await _confirmed_order(shipping)
    url = f"/api/shipping/orders/{order_id}"
    assert (
        await shipping.client.get(url, headers=shipping.tokens.headers(new_id()))
    ).status_code == 404
    assert (
        await shipping.client.get(
            url, headers=shipping.tokens.headers(new_id(), ("customer", "admin"))
        )
    ).status_code == 200
    mine = (
        await shipping.client.get(
            "/api/shipping/shipments", headers=shipping.tokens.headers(user_id)
        )
    ).json()
    assert [s["order_id"] for s in mine["items"]] == [order_id]


def _signed(
    shipping: Running,
    body: dict[str, Any],
    *,
    secret: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    key = secret or shipping.settings.correios_webhook_secret.get_secret_value()
    stamp = timestamp if timestamp is not None else int(datetime.now(UTC).timestamp())
    return raw, {
        SIGNATURE_HEADER: signature_header(key, stamp, raw),
        "Content-Type": "application/json",
    }


async def test_forged_stale_and_malformed_webhooks_are_rejected(shipping: Running) -> None:
    _, order_id, shipment = await _confirmed_order(shipping)
    url = "/api/shipping/webhooks/correios"
    update = {
        "event_id": new_id(),
        "tracking_number": shipment["tracking_number"],
        "status": "posted",
        "occurred_at": datetime.now(UTC).isoformat(),
    }

    raw, headers = _signed(shipping, update, secret="not-the-carrier-secret")
    forged = await shipping.client.post(url, content=raw, headers=headers)
    raw, headers = _signed(
        shipping, update, timestamp=int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    )
    stale = await shipping.client.post(url, content=raw, headers=headers)
    raw, headers = _signed(shipping, update)
    tampered = await shipping.client.post(
        url, content=raw.replace(b"posted", b"delivered"), headers=headers
    )
    unsigned = await shipping.client.post(
        url, content=raw, headers={"Content-Type": "application/json"}
    )
    veloz_secret = shipping.settings.veloz_webhook_secret.get_secret_value()
    raw_v, headers_v = _signed(shipping, update, secret=veloz_secret)
    wrong_carrier_secret = await shipping.client.post(url, content=raw_v, headers=headers_v)
    raw_u, headers_u = _signed(shipping, update)
    unknown_carrier = await shipping.client.post(
        "/api/shipping/webhooks/acme", content=raw_u, headers=headers_u
    )  # not a carrier the schema lists
    raw_m, headers_m = _signed(shipping, {"event_id": "x", "status": "teleported"})
    malformed = await shipping.client.post(url, content=raw_m, headers=headers_m)

    # Signed, valid to the schema, and not storable as received (a 500 before, which the
    # carrier retries forever): a NUL in the text, a number past what Python reads, NaN,
    # Infinity, a float past what one holds, half of an emoji's UTF-16 pair in a field the
    # schema ignores, an instant before the first one the database driver writes.
    def extra(text: str) -> bytes:
        return json.dumps({**update, "event_id": new_id()}).encode()[:-1] + text.encode() + b"}"

    unstorable = []
    for body in (
        json.dumps({**update, "event_id": new_id(), "description": "a\u0000b"}).encode(),
        extra(', "n": ' + "9" * 5000),
        extra(', "n": NaN'),
        extra(', "n": -Infinity'),
        extra(', "n": 1e400'),
        extra(', "receiver": "Ana \\ud83d"'),
        json.dumps(
            {**update, "event_id": new_id(), "occurred_at": "0001-01-01T00:00:00+01:00"}
        ).encode(),
    ):
        stamp = int(datetime.now(UTC).timestamp())
        secret = shipping.settings.correios_webhook_secret.get_secret_value()
        unstorable.append(
            await shipping.client.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signature_header(secret, stamp, body),
                },
            )
        )
    # Headers no carrier sends, each a 500 before: a timestamp past int()'s 4,300 digits, a
    # superscript two (a digit to str.isdigit(), not to int()), a non-ASCII digest.
    odd_headers = [
        await shipping.client.post(
            url,
            content=raw,
            headers={"Content-Type": "application/json", "X-Carrier-Signature": value},
        )
        for value in (
            b"t=" + b"1" * 5000 + b",v1=00",
            b"t=\xb2,v1=" + headers["X-Carrier-Signature"].split("v1=")[1].encode(),
            headers["X-Carrier-Signature"].split(",")[0].encode() + b",v1=\xe9",
        )
    ]

    for response in (forged, stale, tampered, unsigned, wrong_carrier_secret, *odd_headers):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert stale.json()["type"].endswith("/stale-webhook")
    assert unknown_carrier.status_code == 422
    assert malformed.status_code == 422
    for response in unstorable:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    state = (await shipping.client.get(f"/api/shipping/track/{shipment['tracking_number']}")).json()
    assert state["status"] == "created"  # none of them moved the parcel
    assert [e["status"] for e in state["events"]] == ["created"]
    assert order_id


async def test_replayed_and_backward_webhooks_change_nothing(shipping: Running) -> None:
    _, order_id, shipment = await _confirmed_order(shipping)
    ns = shipping.settings.kafka_namespace
    tracking = shipment["tracking_number"]
    url = "/api/shipping/webhooks/correios"
    posted = {
        "event_id": new_id(),
        "tracking_number": tracking,
        "status": "posted",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    raw, headers = _signed(shipping, posted)
    first = await shipping.client.post(url, content=raw, headers=headers)
    replay = await shipping.client.post(url, content=raw, headers=headers)
    assert first.json() == {"outcome": "applied", "shipment_status": "posted"}
    assert replay.json()["outcome"] == "duplicate"

    carrier = _carrier(shipping)
    delivered = await carrier.send(carrier="correios", tracking_number=tracking, status="delivered")
    assert delivered.json() == {"outcome": "applied", "shipment_status": "delivered"}
    late = await carrier.send(
        carrier="correios",
        tracking_number=tracking,
        status="in_transit",
        occurred_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    assert late.json()["outcome"] == "stale"
    again_posted = await carrier.send(
        carrier="correios", tracking_number=tracking, status="posted", event_id=new_id()
    )
    assert again_posted.json()["outcome"] == "stale"

    state = (await shipping.client.get(f"/api/shipping/track/{tracking}")).json()
    assert state["status"] == "delivered"
    assert [e["status"] for e in state["events"]] == ["created", "posted", "delivered"]
    dispatched = await wait_for_events(
        ns, ShipmentDispatched, where=lambda e: e.order_id == order_id
    )
    delivered_events = await wait_for_events(
        ns, ShipmentDelivered, where=lambda e: e.order_id == order_id
    )
    assert len(dispatched) == 1
    assert len(delivered_events) == 1
    updates = list(
        await wait_for_events(ns, ShipmentCreated, where=lambda e: e.order_id == order_id)
    )
    assert len(updates) == 1


async def test_skipping_posted_still_dispatches_before_delivery(shipping: Running) -> None:
    _, order_id, shipment = await _confirmed_order(shipping, carrier="veloz", service="EXPRESS")
    ns = shipping.settings.kafka_namespace
    reply = await _carrier(shipping).send(
        carrier="veloz", tracking_number=shipment["tracking_number"], status="out_for_delivery"
    )
    assert reply.json()["outcome"] == "applied"
    dispatched = await wait_for_events(
        ns, ShipmentDispatched, where=lambda e: e.order_id == order_id
    )
    assert len(dispatched) == 1
    assert dispatched[0].carrier == "veloz"


async def test_exceptions_are_reported_and_delivery_continues(shipping: Running) -> None:
    _, order_id, shipment = await _confirmed_order(shipping)
    ns = shipping.settings.kafka_namespace
    tracking = shipment["tracking_number"]
    carrier = _carrier(shipping)
    await carrier.send(carrier="correios", tracking_number=tracking, status="posted")
    absent = await carrier.send(
        carrier="correios",
        tracking_number=tracking,
        status="exception",
        description="Destinatário ausente",
    )
    assert absent.json() == {"outcome": "applied", "shipment_status": "exception"}
    old_exception = await carrier.send(
        carrier="correios",
        tracking_number=tracking,
        status="exception",
        event_id=new_id(),
        occurred_at=datetime.now(UTC) - timedelta(days=1),
    )
    assert old_exception.json()["outcome"] == "stale"
    # The next day's second delivery attempt resumes the parcel (it was dropped as a repeat).
    await carrier.send(carrier="correios", tracking_number=tracking, status="in_transit")
    first_try = await carrier.send(
        carrier="correios", tracking_number=tracking, status="out_for_delivery"
    )
    assert first_try.json()["shipment_status"] == "out_for_delivery"
    again_absent = await carrier.send(
        carrier="correios",
        tracking_number=tracking,
        status="exception",
        description="Ausente",
        event_id=new_id(),
    )
    assert again_absent.json() == {"outcome": "applied", "shipment_status": "exception"}
    second_try = await carrier.send(
        carrier="correios",
        tracking_number=tracking,
        status="out_for_delivery",
        event_id=new_id(),
        occurred_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert second_try.json() == {"outcome": "applied", "shipment_status": "out_for_delivery"}
    done = await carrier.send(carrier="correios", tracking_number=tracking, status="delivered")
    assert done.json()["shipment_status"] == "delivered"
    exceptions = await wait_for_events(
        ns, ShipmentException, where=lambda e: e.order_id == order_id, count=2
    )
    assert [e.description for e in exceptions] == ["Destinatário ausente", "Ausente"]
    tries = await wait_for_events(
        ns,
        ShipmentTrackingUpdated,
        where=lambda e: e.order_id == order_id and e.status == "out_for_delivery",
        count=2,
    )
    assert len(tries) == 2


async def test_a_scan_arriving_after_a_newer_exception_does_not_erase_it(shipping: Running) -> None:
    """Out for delivery at 10:00, reported after the failed delivery of 11:00: it moved the
    status back, erasing the failure, and the next day's second attempt was then dropped as a
    repeat of it."""
    _, order_id, shipment = await _confirmed_order(shipping)
    ns = shipping.settings.kafka_namespace
    tracking = shipment["tracking_number"]
    carrier = _carrier(shipping)
    start = datetime.now(UTC) - timedelta(days=1)

    async def scan(status: str, at: datetime) -> dict[str, Any]:
        reply = await carrier.send(
            carrier="correios",
            tracking_number=tracking,
            status=status,
            event_id=new_id(),
            occurred_at=at,
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    await scan("posted", start)
    await scan("in_transit", start + timedelta(hours=1))
    assert await scan("exception", start + timedelta(hours=3)) == {
        "outcome": "applied",
        "shipment_status": "exception",
    }
    late = await scan("out_for_delivery", start + timedelta(hours=2))
    assert late == {"outcome": "applied", "shipment_status": "exception"}
    second_attempt = start + timedelta(days=1)
    retried = await scan("out_for_delivery", second_attempt)
    assert retried == {"outcome": "applied", "shipment_status": "out_for_delivery"}

    tries = await wait_for_events(
        ns,
        ShipmentTrackingUpdated,
        where=lambda e: e.order_id == order_id and e.status == "out_for_delivery",
    )
    assert [t.occurred_at for t in tries] == [second_attempt]


async def test_a_late_scan_still_proves_the_dispatch(shipping: Running) -> None:
    """The parcel's first news is an exception; the older pickup scan that follows announces
    the dispatch without hiding the exception."""
    _, order_id, shipment = await _confirmed_order(shipping)
    ns = shipping.settings.kafka_namespace
    carrier = _carrier(shipping)
    picked_up = datetime.now(UTC) - timedelta(hours=2)
    await carrier.send(
        carrier="correios", tracking_number=shipment["tracking_number"], status="exception"
    )
    late = await carrier.send(
        carrier="correios",
        tracking_number=shipment["tracking_number"],
        status="posted",
        occurred_at=picked_up,
    )

    assert late.json() == {"outcome": "applied", "shipment_status": "exception"}
    [dispatched] = await wait_for_events(
        ns, ShipmentDispatched, where=lambda e: e.order_id == order_id
    )
    assert dispatched.dispatched_at == picked_up


async def test_cancelled_order_voids_an_undispatched_shipment(shipping: Running) -> None:
    user_id, order_id, shipment = await _confirmed_order(shipping)
    await _cancel_and_see_it_voided(shipping, user_id, order_id, shipment)
    # Inventory's cue that nothing will ship: the committed units go back on the shelf.
    [voided] = await wait_for_events(
        shipping.settings.kafka_namespace, ShipmentCancelled, where=lambda e: e.order_id == order_id
    )
    assert (voided.shipment_id, voided.reason) == (shipment["shipment_id"], "customer_request")


async def test_cancelled_order_voids_a_shipment_held_before_pickup(shipping: Running) -> None:
    """An exception before pickup (a failed collection) left the shipment in `exception`; the
    cancellation skipped it, and a later pickup dispatched the cancelled order."""
    user_id, order_id, shipment = await _confirmed_order(shipping)
    held = await _carrier(shipping).send(
        carrier="correios",
        tracking_number=shipment["tracking_number"],
        status="exception",
        description="Coleta não realizada",
    )
    assert held.json() == {"outcome": "applied", "shipment_status": "exception"}
    await _cancel_and_see_it_voided(shipping, user_id, order_id, shipment)


async def test_a_parcel_under_payment_review_waits_for_the_approval(shipping: Running) -> None:
    """An order confirmed on a payment flagged for fraud review got its label at once and
    could be picked up while the review was open; a rejection then came too late and the goods
    left unpaid. The parcel is held, without a label, until the approval releases it."""
    ns = shipping.settings.kafka_namespace
    user_id, order_id, shipment = await _confirmed_order(shipping, payment_review_pending=True)
    headers = shipping.tokens.headers(user_id)
    assert shipment["status"] == "on_hold"
    label = await shipping.client.get(
        f"/api/shipping/shipments/{shipment['shipment_id']}/label", headers=headers
    )
    assert label.status_code == 409
    assert label.headers["content-type"] == "application/problem+json"
    assert label.json()["type"].endswith("/shipment-on-hold")
    pickup = await _carrier(shipping).send(
        carrier="correios", tracking_number=shipment["tracking_number"], status="posted"
    )
    assert pickup.json() == {"outcome": "held", "shipment_status": "on_hold"}

    await publish(
        ns,
        OrderFulfilmentReleased(order_id=order_id, user_id=user_id, released_at=datetime.now(UTC)),
    )

    async def released() -> bool:
        state = (
            await shipping.client.get(f"/api/shipping/track/{shipment['tracking_number']}")
        ).json()
        return bool(state["status"] == "created")

    await eventually(released, timeout=30, interval=0.3)
    label = await shipping.client.get(
        f"/api/shipping/shipments/{shipment['shipment_id']}/label", headers=headers
    )
    assert label.status_code == 200
    picked_up = await _carrier(shipping).send(
        carrier="correios",
        tracking_number=shipment["tracking_number"],
        status="posted",
        event_id=new_id(),  # the carrier's new scan, not a resend of the refused one
    )
    assert picked_up.json() == {"outcome": "applied", "shipment_status": "posted"}
    [dispatched] = await wait_for_events(
        ns, ShipmentDispatched, where=lambda e: e.order_id == order_id
    )
    assert dispatched.shipment_id == shipment["shipment_id"]


async def test_a_held_parcel_whose_payment_is_rejected_is_voided(shipping: Running) -> None:
    """The rejection cancels the order (payments voids, orders cancels): the held parcel is
    voided like any that has not left, and inventory gets its units back."""
    ns = shipping.settings.kafka_namespace
    user_id, order_id, shipment = await _confirmed_order(shipping, payment_review_pending=True)
    assert shipment["status"] == "on_hold"
    await _cancel_and_see_it_voided(shipping, user_id, order_id, shipment)
    [voided] = await wait_for_events(ns, ShipmentCancelled, where=lambda e: e.order_id == order_id)
    assert voided.shipment_id == shipment["shipment_id"]


async def test_a_cancellation_request_stops_a_parcel_that_has_not_left(
    shipping: Running,
) -> None:
    """Orders asks before it cancels a confirmed order; shipping's ShipmentCancelled is the
    answer that lets it cancel (and inventory restock)."""
    user_id, order_id, shipment = await _confirmed_order(shipping)
    await _cancel_and_see_it_voided(
        shipping, user_id, order_id, shipment, _cancellation_requested(user_id, order_id)
    )
    [voided] = await wait_for_events(
        shipping.settings.kafka_namespace, ShipmentCancelled, where=lambda e: e.order_id == order_id
    )
    assert (voided.shipment_id, voided.reason) == (shipment["shipment_id"], "customer_request")


async def test_a_cancellation_request_after_the_pickup_changes_nothing(shipping: Running) -> None:
    """The parcel left first: its ShipmentDispatched already told orders, which refuses the
    request; shipping neither voids the parcel nor announces a cancellation."""
    user_id, order_id, shipment = await _confirmed_order(shipping)
    picked_up = await _carrier(shipping).send(
        carrier="correios", tracking_number=shipment["tracking_number"], status="posted"
    )
    assert picked_up.json()["shipment_status"] == "posted"
    [request] = await publish(
        shipping.settings.kafka_namespace, _cancellation_requested(user_id, order_id)
    )

    async def handled() -> bool:
        return bool(
            await _scalar(
                shipping, "SELECT count(*) FROM inbox WHERE event_id = :id", id=request.id
            )
        )

    await eventually(handled, timeout=30, interval=0.3)
    # Anything the handler emitted would be in the outbox, written in its transaction.
    emitted = await _scalar(
        shipping,
        "SELECT count(*) FROM outbox WHERE key = :order_id AND ce_type = :type",
        order_id=order_id,
        type=ShipmentCancelled.ce_type,
    )
    assert emitted == 0
    state = (await shipping.client.get(f"/api/shipping/track/{shipment['tracking_number']}")).json()
    assert state["status"] == "posted"


def _cancellation_requested(user_id: str, order_id: str) -> OrderCancellationRequested:
    return OrderCancellationRequested(
        order_id=order_id,
        user_id=user_id,
        reason="customer_request",
        requested_at=datetime.now(UTC),
    )


async def test_a_locked_read_sees_what_the_transaction_it_waited_for_committed(
    shipping: Running,
) -> None:
    """A shipment loaded earlier in a transaction (a redelivered OrderConfirmed in the batch)
    stayed in the session as it was: the cancellation that then waited for the pickup's lock
    read that old copy, saw no scan, and cancelled a parcel that had left."""
    _, order_id, shipment = await _confirmed_order(shipping)
    sessions = sessionmaker_of(shipping.app)
    async with sessions() as batch, batch.begin():
        seen = await repository.shipment_for_order(batch, order_id)
        assert seen is not None and seen.progress == 0
        picked_up = await _carrier(shipping).send(
            carrier="correios", tracking_number=shipment["tracking_number"], status="posted"
        )
        assert picked_up.json()["outcome"] == "applied"
        for locked in (
            await repository.shipment_for_order(batch, order_id, for_update=True),
            await repository.shipment_by_tracking(
                batch, shipment["tracking_number"], for_update=True
            ),
        ):
            assert locked is not None
            assert (locked.status, locked.progress) == ("posted", 1)


async def _scalar(shipping: Running, sql: str, **params: Any) -> Any:
    async with sessionmaker_of(shipping.app)() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def _cancel_and_see_it_voided(
    shipping: Running,
    user_id: str,
    order_id: str,
    shipment: dict[str, Any],
    cancellation: OrderCancelled | OrderCancellationRequested | None = None,
) -> None:
    """Cancel the confirmed order (or ask to); its shipment ends cancelled, and a pickup
    reported after that moves nothing."""
    await publish(
        shipping.settings.kafka_namespace,
        cancellation
        or OrderCancelled(
            order_id=order_id,
            user_id=user_id,
            reason="customer_request",
            previous_status="CONFIRMED",
            cancelled_at=datetime.now(UTC),
        ),
    )

    async def cancelled() -> bool:
        state = (
            await shipping.client.get(f"/api/shipping/track/{shipment['tracking_number']}")
        ).json()
        return bool(state["status"] == "cancelled")

    await eventually(cancelled, timeout=30, interval=0.3)
    label = await shipping.client.get(
        f"/api/shipping/shipments/{shipment['shipment_id']}/label",
        headers=shipping.tokens.headers(user_id),
    )
    assert label.status_code == 409  # a label printed now could still send the goods
    assert label.json()["type"].endswith("/shipment-cancelled")
    # A carrier scan now means the parcel went after all: not applied (the order is over), and
    # told apart from a stale resend so that someone gets the parcel back.
    late = await _carrier(shipping).send(
        carrier="correios", tracking_number=shipment["tracking_number"], status="posted"
    )
    assert late.json() == {"outcome": "after_cancellation", "shipment_status": "cancelled"}


async def test_webhook_for_an_unknown_parcel_is_acknowledged_and_ignored(shipping: Running) -> None:
    reply = await _carrier(shipping).send(
        carrier="correios", tracking_number="SX000000000BR", status="posted"
    )
    assert reply.status_code == 200
    assert reply.json()["outcome"] == "unknown_shipment"


# An OrderConfirmed that could not be applied is parked, and an operator replays it later: the
# cancellation (or release) that followed it on the partition is handled first, and the
# replayed OrderConfirmed arrives after it. Published in that order here.


def _order_cancelled(user_id: str, order_id: str) -> OrderCancelled:
    return OrderCancelled.model_validate(
        {
            "order_id": order_id,
            "user_id": user_id,
            "reason": "customer_request",
            "previous_status": "CONFIRMED",
            "cancelled_at": datetime.now(UTC),
        }
    )


async def _handled(shipping: Running, *envelopes: Envelope[Event]) -> None:
    """Wait until the consumer has applied (or skipped as a duplicate) every envelope."""
    ids = sorted({e.id for e in envelopes})

    async def done() -> bool:
        seen = await _scalar(
            shipping,
            "SELECT count(DISTINCT event_id) FROM inbox WHERE event_id::text = ANY(:ids)",
            ids=ids,
        )
        return bool(seen == len(ids))

    await eventually(done, timeout=30, interval=0.3)


async def _emitted(shipping: Running, order_id: str, event_type: type[Event]) -> int:
    """How many events of a type the handlers wrote to the outbox for the order."""
    count: int = await _scalar(
        shipping,
        "SELECT count(*) FROM outbox WHERE key = :order_id AND ce_type = :type",
        order_id=order_id,
        type=event_type.ce_type,
    )
    return count


async def _assert_cancelled_from_the_start(
    shipping: Running, user_id: str, order_id: str
) -> dict[str, Any]:
    """The order's shipment exists, cancelled, never was live, and no label can be had."""
    headers = shipping.tokens.headers(user_id)
    shipment = (
        await shipping.client.get(f"/api/shipping/orders/{order_id}", headers=headers)
    ).json()
    assert shipment["status"] == "cancelled"
    assert [e["status"] for e in shipment["events"]] == ["cancelled"]
    label = await shipping.client.get(
        f"/api/shipping/shipments/{shipment['shipment_id']}/label", headers=headers
    )
    assert label.status_code == 409
    assert label.json()["type"].endswith("/shipment-cancelled")
    assert await _emitted(shipping, order_id, ShipmentCreated) == 0
    return dict(shipment)


@pytest.mark.parametrize("kind", ["request", "order_cancelled"])
async def test_a_cancellation_before_the_parked_confirmation_is_remembered(
    shipping: Running, kind: str
) -> None:
    """The cancellation found no shipment and was forgotten; the replayed OrderConfirmed then
    created a live shipment for a cancelled order, which could be labelled and sent. Now the
    shipment is created cancelled, and the cancellation was answered once, as one that
    stopped a parcel in time (orders finishes the order, inventory restocks), naming the
    shipment's id."""
    ns = shipping.settings.kafka_namespace
    user_id = new_id()
    order = factories.order_confirmed(user_id=user_id, lines=[(factories.sku(), 1)])
    cancellation = (
        _cancellation_requested(user_id, order.order_id)
        if kind == "request"
        else _order_cancelled(user_id, order.order_id)
    )
    await _handled(shipping, *await publish(ns, cancellation, order))

    shipment = await _assert_cancelled_from_the_start(shipping, user_id, order.order_id)
    assert await _emitted(shipping, order.order_id, ShipmentCancelled) == 1
    [answer] = await wait_for_events(
        ns, ShipmentCancelled, where=lambda e: e.order_id == order.order_id
    )
    assert (answer.shipment_id, answer.user_id, answer.reason) == (
        shipment["shipment_id"],
        user_id,
        "customer_request",
    )
    late = await _carrier(shipping).send(
        carrier="correios", tracking_number=shipment["tracking_number"], status="posted"
    )
    assert late.json() == {"outcome": "after_cancellation", "shipment_status": "cancelled"}


async def test_cancellation_and_parked_confirmation_delivered_twice_change_nothing_more(
    shipping: Running,
) -> None:
    """Each redelivered as is (the inbox), the OrderConfirmed replayed once more by the
    operator, the request asked again by orders and its OrderCancelled echo: one cancelled
    shipment, one answer."""
    ns = shipping.settings.kafka_namespace
    user_id = new_id()
    order = factories.order_confirmed(user_id=user_id, lines=[(factories.sku(), 1)])
    request, confirmed = await publish(ns, _cancellation_requested(user_id, order.order_id), order)
    again = await publish(
        ns,
        request,
        confirmed,
        order,  # a new event id: the inbox cannot tell it is the same order
        _cancellation_requested(user_id, order.order_id),
        _order_cancelled(user_id, order.order_id),
    )
    await _handled(shipping, request, confirmed, *again)

    shipment = await _assert_cancelled_from_the_start(shipping, user_id, order.order_id)
    assert await _emitted(shipping, order.order_id, ShipmentCancelled) == 1
    [answer] = await wait_for_events(
        ns, ShipmentCancelled, where=lambda e: e.order_id == order.order_id
    )
    assert answer.shipment_id == shipment["shipment_id"]


async def test_a_confirmed_order_then_cancelled_is_answered_once_as_before(
    shipping: Running,
) -> None:
    """The usual order of events: the live shipment is voided, the request answered once, and
    the OrderCancelled that follows the answer changes nothing."""
    ns = shipping.settings.kafka_namespace
    user_id, order_id, shipment = await _confirmed_order(shipping)
    await _handled(
        shipping,
        *await publish(
            ns, _cancellation_requested(user_id, order_id), _order_cancelled(user_id, order_id)
        ),
    )

    state = (
        await shipping.client.get(
            f"/api/shipping/orders/{order_id}", headers=shipping.tokens.headers(user_id)
        )
    ).json()
    assert state["shipment_id"] == shipment["shipment_id"]
    assert [e["status"] for e in state["events"]] == ["created", "cancelled"]
    assert await _emitted(shipping, order_id, ShipmentCreated) == 1
    assert await _emitted(shipping, order_id, ShipmentCancelled) == 1
    [answer] = await wait_for_events(ns, ShipmentCancelled, where=lambda e: e.order_id == order_id)
    assert answer.shipment_id == shipment["shipment_id"]


async def test_two_cancellations_in_one_batch_answer_once(shipping: Running) -> None:
    """The consumer applies a batch in one transaction, and its session does not autoflush:
    the second cancellation's locked reload threw away the first one's unflushed change, found
    the shipment still `created`, and cancelled and announced it again."""
    user_id, order_id, _ = await _confirmed_order(shipping)
    async with sessionmaker_of(shipping.app)() as batch, batch.begin():
        first = await shipments.cancel_for_order(
            session=batch, cancellation=_cancellation_requested(user_id, order_id)
        )
        second = await shipments.cancel_for_order(
            session=batch, cancellation=_order_cancelled(user_id, order_id)
        )
    assert first is not None
    assert second is None
    events = await _scalar(
        shipping,
        "SELECT count(*) FROM tracking_events t JOIN shipments s ON s.id = t.shipment_id"
        " WHERE s.order_id = :order_id AND t.status = 'cancelled'",
        order_id=order_id,
    )
    assert events == 1


async def test_a_release_before_the_parked_confirmation_is_remembered(shipping: Running) -> None:
    """The approval of the payment review found no shipment and was forgotten; the replayed
    OrderConfirmed then made a shipment held for a release that had already come, forever."""
    user_id = new_id()
    order = factories.order_confirmed(user_id=user_id, lines=[(factories.sku(), 1)]).model_copy(
        update={"payment_review_pending": True}
    )
    release = OrderFulfilmentReleased(
        order_id=order.order_id, user_id=user_id, released_at=datetime.now(UTC)
    )
    await _handled(shipping, *await publish(shipping.settings.kafka_namespace, release, order))

    headers = shipping.tokens.headers(user_id)
    shipment = (
        await shipping.client.get(f"/api/shipping/orders/{order.order_id}", headers=headers)
    ).json()
    assert shipment["status"] == "created"
    label = await shipping.client.get(
        f"/api/shipping/shipments/{shipment['shipment_id']}/label", headers=headers
    )
    assert label.status_code == 200
    assert await _emitted(shipping, order.order_id, ShipmentCreated) == 1
