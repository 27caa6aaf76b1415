"""The sandbox carrier: plays a carrier by sending correctly signed tracking webhooks.

It talks to the public webhook endpoint exactly as a real carrier would (HMAC over timestamp
and raw body, one event id per status), so the whole shipment lifecycle, including
payments' capture on dispatch and orders' SHIPPED/DELIVERED, runs locally. Used by
`shop carrier simulate` and by the background job of the demo mode.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from shopkit.app import sessionmaker_of
from shopkit.loops import every

from shipping_service import repository
from shipping_service.config import ShippingSettings
from shipping_service.service.tracking import FORWARD_PATH, RANK, next_status
from shipping_service.webhooks import SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    "posted": ("Objeto postado", "Sao Paulo/SP"),
    "in_transit": ("Objeto em transito - por favor aguarde", "Centro de distribuicao"),
    "out_for_delivery": ("Objeto saiu para entrega ao destinatario", None),
    "delivered": ("Objeto entregue ao destinatario", None),
    "exception": ("Destinatario ausente - nova tentativa sera realizada", None),
}


class SandboxCarrier:
    def __init__(self, *, http: httpx.AsyncClient, settings: ShippingSettings) -> None:
        self.http = http
        self.settings = settings

    async def send(
        self,
        *,
        carrier: str,
        tracking_number: str,
        status: str,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        description: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """POST one signed tracking update; the event id defaults to one per (parcel, status)
        so that two senders advancing the same parcel produce a replay, not a second update."""
        secret = self.settings.webhook_secret(carrier)
        if secret is None:
            raise ValueError(f"no webhook secret for carrier {carrier!r}")
        text, location = DESCRIPTIONS.get(status, (None, None))
        body = json.dumps(
            {
                "event_id": event_id or f"sandbox-{tracking_number}-{status}",
                "tracking_number": tracking_number,
                "status": status,
                "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
                "description": description or text,
                "location": location,
            }
        ).encode()
        stamp = timestamp if timestamp is not None else int(datetime.now(UTC).timestamp())
        return await self.http.post(
            f"/api/shipping/webhooks/{carrier}",
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature_header(secret.get_secret_value(), stamp, body),
            },
        )

    async def advance(
        self, tracking_number: str, *, to: str = "delivered", step_delay: float = 0.0
    ) -> list[str]:
        """Send every update from the parcel's current status up to `to`; returns them."""
        if to not in RANK:
            raise ValueError(f"cannot advance to {to!r}; one of {', '.join(FORWARD_PATH)}")
        response = await self.http.get(f"/api/shipping/track/{tracking_number}")
        response.raise_for_status()
        tracking = response.json()
        carrier = tracking["carrier"]
        reached = max((RANK.get(e["status"], 0) for e in tracking["events"]), default=0)
        sent: list[str] = []
        for status in FORWARD_PATH:
            if RANK[status] <= reached or RANK[status] > RANK[to]:
                continue
            if sent and step_delay:
                await asyncio.sleep(step_delay)
            reply = await self.send(carrier=carrier, tracking_number=tracking_number, status=status)
            reply.raise_for_status()
            sent.append(status)
        return sent


def _client_for(app: FastAPI, settings: ShippingSettings) -> httpx.AsyncClient:
    if settings.sandbox_webhook_base_url:
        return httpx.AsyncClient(base_url=settings.sandbox_webhook_base_url, timeout=10.0)
    # This app's own public endpoint, in-process: same routing, verification and inbox.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shipping")


async def sandbox_job(app: FastAPI, stop: asyncio.Event) -> None:
    """Demo mode: every shipment idle for `sandbox_step_seconds` moves one step forward."""
    settings: ShippingSettings = app.state.settings
    if not settings.sandbox_carrier_enabled:
        return
    log.info("sandbox carrier running", extra={"step_seconds": settings.sandbox_step_seconds})
    async with _client_for(app, settings) as http:
        carrier = SandboxCarrier(http=http, settings=settings)
        await every(
            stop,
            settings.sandbox_poll_seconds,
            lambda: _advance_idle(app, carrier, settings),
            name="sandbox-carrier",
        )


async def _advance_idle(app: FastAPI, carrier: SandboxCarrier, settings: ShippingSettings) -> None:
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.sandbox_step_seconds)
    async with sessionmaker_of(app)() as session:
        shipments = await repository.open_shipments_idle_since(session, cutoff)
        steps = [
            (s.carrier, s.tracking_number, next_status(s.status, s.progress)) for s in shipments
        ]
    for carrier_name, tracking_number, status in steps:
        if status is None or settings.webhook_secret(carrier_name) is None:
            continue
        reply = await carrier.send(
            carrier=carrier_name, tracking_number=tracking_number, status=status
        )
        if reply.is_error:
            log.warning(
                "sandbox webhook refused",
                extra={"status": reply.status_code, "tracking_number": tracking_number},
            )
