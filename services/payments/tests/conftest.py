"""Fixtures for the payments tests, all against real servers.

* `localstripe`: a private localstripe started from the project's launcher
  (infra/local/localstripe_server.py) on an ephemeral port, so test-only controls (injected
  delays, webhook registrations) never touch the shared one on 8420.
* `stack`: the payments app on a fresh migrated database and its own Kafka namespace, with
  localstripe's webhooks delivered over real HTTP to the same app (served by uvicorn on an
  ephemeral port), and every `payments.events` message it publishes collected from Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from payments_service.app import build_app
from payments_service.config import PaymentsSettings
from payments_service.runtime import Payments
from shopkit.kafka import ensure_topics
from shopkit.testing import (
    KAFKA_BOOTSTRAP,
    TestTokens,
    app_client,
    kafka_namespace,
    migrated_database,
)

from .support import LOCAL_KEY, WEBHOOK_SECRET, EventBus, PaymentEvents, Stripe

ROOT = Path(__file__).resolve().parents[3]
LAUNCHER = ROOT / "infra" / "local" / "localstripe_server.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as state:
        process = subprocess.Popen(
            [
                sys.executable,
                str(LAUNCHER),
                "--port",
                str(port),
                "--state-file",
                str(Path(state) / "store.pickle"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                if process.poll() is not None:
                    raise RuntimeError(f"localstripe exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(
                        f"{base}/v1/customers", auth=(LOCAL_KEY, ""), timeout=1
                    ).raise_for_status()
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("localstripe did not start")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


class Stack:
    def __init__(
        self,
        *,
        app: FastAPI,
        client: httpx.AsyncClient,
        payments: Payments,
        settings: PaymentsSettings,
        tokens: TestTokens,
        bus: EventBus,
        events: PaymentEvents,
        stripe: Stripe,
        database_url: str,
        webhook_id: str,
        webhook_url: str,
    ) -> None:
        self.app = app
        self.client = client
        self.payments = payments
        self.settings = settings
        self.tokens = tokens
        self.bus = bus
        self.events = events
        self.stripe = stripe
        self.database_url = database_url
        self.webhook_id = webhook_id
        self.webhook_url = webhook_url

    @contextlib.asynccontextmanager
    async def webhooks_lost(self) -> AsyncIterator[None]:
        """localstripe's webhooks stop reaching the app (a lost delivery) for a while."""
        await self.stripe.delete_webhook(self.webhook_id)
        try:
            yield
        finally:
            await self.stripe.register_webhook(self.webhook_id, self.webhook_url)


def settings_for(database_url: str, namespace: str, stripe_base: str) -> PaymentsSettings:
    return PaymentsSettings(
        database_url=database_url,
        kafka_namespace=namespace,
        environment="test",
        stripe_api_base=stripe_base,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_timeout_seconds=3.0,
        # Our own retry path (consumer retry after a rolled-back handler) is what tests prove.
        stripe_max_network_retries=0,
        sweep_interval_seconds=3600,
        webhook_poll_seconds=0.2,
        risk_user_attempts_medium=2,
        risk_user_attempts_high=4,
        risk_ip_attempts_medium=50,
        risk_ip_attempts_high=100,
        risk_card_attempts_medium=10_000,
        risk_card_attempts_high=20_000,
        risk_amount_review=500_000,
        risk_amount_block=5_000_000,
        consumer_max_attempts=8,
    )


@pytest.fixture(scope="session")
async def stack(localstripe: str) -> AsyncIterator[Stack]:
    namespace = kafka_namespace()
    async with migrated_database("payments") as url:
        settings = settings_for(url, namespace, localstripe)
        app = build_app(settings)
        tokens = TestTokens()
        await ensure_topics(
            KAFKA_BOOTSTRAP,
            [
                namespace + t
                for t in ("orders.events", "inventory.events", "shipping.events", "payments.events")
            ],
        )
        events = PaymentEvents(namespace)
        bus = EventBus(namespace)
        await bus.start()
        await events.start()
        async with app_client(app, tokens) as client:
            server, port = await _serve(app)
            webhook_id = f"payments-tests-{namespace.rstrip('.')}"
            stripe = Stripe(localstripe)
            webhook_url = f"http://127.0.0.1:{port}/api/payments/webhooks/stripe"
            await stripe.register_webhook(webhook_id, webhook_url)
            try:
                yield Stack(
                    app=app,
                    client=client,
                    payments=app.state.payments,
                    settings=settings,
                    tokens=tokens,
                    bus=bus,
                    events=events,
                    stripe=stripe,
                    database_url=url,
                    webhook_id=webhook_id,
                    webhook_url=webhook_url,
                )
            finally:
                await stripe.delete_webhook(webhook_id)
                await stripe.close()
                server.should_exit = True
                await asyncio.sleep(0.3)
                await events.stop()
                await bus.stop()


async def _serve(app: object) -> tuple[uvicorn.Server, int]:
    """Serve the already started app over HTTP (its lifespan is owned by the test client)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, port
