"""Forged, stale and replayed webhooks, through the gateway (where webhooks need no token).

The signature header is the webhook's credential: a wrong MAC, a body that is not the one
signed, a missing header or a timestamp outside the tolerance window is a 401 problem and
changes nothing. A replay of a genuine delivery is acknowledged (providers retry until they
get a 2xx) and applied once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from payments_service.config import PaymentsSettings
from shipping_service.config import ShippingSettings
from shipping_service.webhooks import SIGNATURE_HEADER, signature_header
from shop_cli.client import Session, new_customer
from shopkit.testing import eventually

from contracts import new_id

from .conftest import TIMEOUT, Product, confirmed_order

STRIPE_URL = "/api/payments/webhooks/stripe"
PROBLEM = "application/problem+json"


# ---------------------------------------------------------------- Stripe


def _stripe_secret() -> str:
    return PaymentsSettings().stripe_webhook_secret.get_secret_value()


def _stripe_event(event_id: str | None = None) -> bytes:
    """An event about a payment intent this platform never created: inert if applied."""
    return json.dumps(
        {
            "id": event_id or f"evt_sec_{new_id().replace('-', '')}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_sec_{new_id().replace('-', '')}",
                    "object": "payment_intent",
                    "status": "succeeded",
                    "amount": 1000,
                    "currency": "brl",
                    "metadata": {},
                }
            },
        }
    ).encode()


def _stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


async def _post_stripe(
    http: httpx.AsyncClient, payload: bytes, signature: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await http.post(STRIPE_URL, content=payload, headers=headers)


def _refused(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith(f"/{slug}")


async def test_stripe_webhook_with_a_bad_signature_is_refused(http: httpx.AsyncClient) -> None:
    payload = _stripe_event()
    secret = _stripe_secret()
    for signature in (
        _stripe_signature(payload, "whsec_someone_else"),
        _stripe_signature(payload, secret).replace("v1=", "v1=00"),
        "t=1,v1=deadbeef",
        "garbage",
        None,
    ):
        _refused(await _post_stripe(http, payload, signature), "invalid-webhook")
    # Signed, but over another body: the MAC covers the exact bytes.
    tampered = payload.replace(b'"amount": 1000', b'"amount": 1')
    _refused(
        await _post_stripe(http, tampered, _stripe_signature(payload, secret)), "invalid-webhook"
    )


async def test_stripe_webhook_with_a_stale_timestamp_is_refused(http: httpx.AsyncClient) -> None:
    payload = _stripe_event()
    settings = PaymentsSettings()
    stale = int(time.time()) - settings.stripe_webhook_tolerance_seconds - 60
    response = await _post_stripe(
        http, payload, _stripe_signature(payload, _stripe_secret(), stale)
    )
    _refused(response, "invalid-webhook")
    assert "timestamp" in response.json()["detail"].lower()
    # Dated ahead by more than the tolerance: it would stay replayable for that long.
    future = int(time.time()) + settings.stripe_webhook_tolerance_seconds + 60
    response = await _post_stripe(
        http, payload, _stripe_signature(payload, _stripe_secret(), future)
    )
    _refused(response, "invalid-webhook")
    assert "future" in response.json()["detail"].lower()


async def test_a_replayed_stripe_event_is_acknowledged_once(http: httpx.AsyncClient) -> None:
    payload = _stripe_event()
    event_id = json.loads(payload)["id"]
    first = await _post_stripe(http, payload, _stripe_signature(payload, _stripe_secret()))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "event_id": event_id, "duplicate": False}
    # The same delivery again (a fresh signature, as Stripe retries), then the captured request
    # byte for byte within the window: both acknowledged, recorded as duplicates.
    again = await _post_stripe(http, payload, _stripe_signature(payload, _stripe_secret()))
    replay = await http.post(STRIPE_URL, content=payload, headers=first.request.headers)
    for response in (again, replay):
        assert response.status_code == 200, response.text
        assert response.json() == {"received": True, "event_id": event_id, "duplicate": True}


# ---------------------------------------------------------------- carriers


@pytest.fixture(scope="module")
async def parcel(http: httpx.AsyncClient, product: Product) -> tuple[Session, dict[str, Any]]:
    """A real shipment, created by the saga for a confirmed order of this run."""
    carla = await new_customer(http, name="Carla Carrier")
    _, shipment = await confirmed_order(carla, product)
    return carla, shipment


def _carrier_update(tracking_number: str, status: str = "posted") -> bytes:
    return json.dumps(
        {
            "event_id": f"sec-{new_id()}",
            "tracking_number": tracking_number,
            "status": status,
            "occurred_at": datetime.now(UTC).isoformat(),
            "description": "Objeto postado",
            "location": "São Paulo - SP",
        }
    ).encode()


def _carrier_secret(carrier: str) -> str:
    secret = ShippingSettings().webhook_secret(carrier)
    assert secret is not None, carrier
    return secret.get_secret_value()


async def _post_carrier(
    http: httpx.AsyncClient, carrier: str, body: bytes, signature: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return await http.post(f"/api/shipping/webhooks/{carrier}", content=body, headers=headers)


async def _events(http: httpx.AsyncClient, tracking_number: str) -> list[str]:
    tracked = (await http.get(f"/api/shipping/track/{tracking_number}")).json()
    return [event["status"] for event in tracked["events"]]


async def test_carrier_webhooks_with_a_bad_hmac_are_refused_and_change_nothing(
    http: httpx.AsyncClient, parcel: tuple[Session, dict[str, Any]]
) -> None:
    _, shipment = parcel
    carrier, tracking = shipment["carrier"], shipment["tracking_number"]
    before = await _events(http, tracking)
    body = _carrier_update(tracking)
    now = int(time.time())
    other = "veloz" if carrier != "veloz" else "correios"
    for signature in (
        signature_header("not-the-secret", now, body),
        signature_header(_carrier_secret(other), now, body),  # another carrier's secret
        signature_header(_carrier_secret(carrier), now, body).replace("v1=", "v1=0"),
        f"t={now}",
        "nonsense",
        None,
    ):
        response = await _post_carrier(http, carrier, body, signature)
        _refused(response, "invalid-webhook-signature")
    tampered = body.replace(b'"posted"', b'"delivered"')
    signed_for_other_body = signature_header(_carrier_secret(carrier), now, body)
    _refused(
        await _post_carrier(http, carrier, tampered, signed_for_other_body),
        "invalid-webhook-signature",
    )
    assert await _events(http, tracking) == before


async def test_stale_carrier_webhooks_are_refused(
    http: httpx.AsyncClient, parcel: tuple[Session, dict[str, Any]]
) -> None:
    _, shipment = parcel
    carrier, tracking = shipment["carrier"], shipment["tracking_number"]
    before = await _events(http, tracking)
    tolerance = ShippingSettings().webhook_tolerance_seconds
    body = _carrier_update(tracking)
    for skew in (-tolerance - 60, tolerance + 60):
        signature = signature_header(_carrier_secret(carrier), int(time.time()) + skew, body)
        _refused(await _post_carrier(http, carrier, body, signature), "stale-webhook")
    assert await _events(http, tracking) == before


async def test_a_replayed_carrier_update_is_applied_once(
    http: httpx.AsyncClient, parcel: tuple[Session, dict[str, Any]]
) -> None:
    carla, shipment = parcel
    carrier, tracking = shipment["carrier"], shipment["tracking_number"]
    body = _carrier_update(tracking, "posted")
    signature = signature_header(_carrier_secret(carrier), int(time.time()), body)
    first = await _post_carrier(http, carrier, body, signature)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "applied"
    for _ in range(3):
        replay = await _post_carrier(http, carrier, body, signature)
        assert replay.status_code == 200, replay.text
        assert replay.json() == {"outcome": "duplicate", "shipment_status": None}
    assert (await _events(http, tracking)).count("posted") == 1
    # The dispatch it announced moved the order once, to SHIPPED.
    order = await carla.wait_for(shipment["order_id"], {"SHIPPED"}, TIMEOUT)
    assert [change["to"] for change in order["history"]].count("SHIPPED") == 1
    payments = await eventually(
        lambda: _captured(carla, shipment["order_id"]), timeout=TIMEOUT, interval=0.5
    )
    assert payments["amount_captured"] == order["total"]


async def _captured(session: Session, order_id: str) -> dict[str, Any] | None:
    view: dict[str, Any] = await session.get(f"/api/payments/orders/{order_id}")
    return view if view["amount_captured"] else None
