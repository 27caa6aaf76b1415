"""Data export across services, and account deletion announced to all of them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from contracts.events.auth import UserRegistered
from contracts.events.orders import OrderConfirmed, OrderLine, ShippingAddress, ShippingChoice
from contracts.events.users import UserDeletionRequested
from notifications_service.app import build_app as build_notifications
from notifications_service.config import NotificationsSettings
from notifications_service.service import scheduling
from pydantic import ValidationError
from shipping_service.app import build_app as build_shipping
from shipping_service.config import ShippingSettings
from shipping_service.service import shipments
from shopkit.app import sessionmaker_of
from shopkit.testing import (
    TestTokens,
    app_client,
    kafka_namespace,
    migrated_database,
    wait_for_events,
)
from sqlalchemy import func, select
from users_service.app import build_app
from users_service.config import UsersSettings
from users_service.models import Address, Profile

from contracts import Envelope, new_id

from .conftest import ADDRESS, Running


class HostRouter(httpx.AsyncBaseTransport):
    """Routes requests by host name to in-process ASGI apps (the other services)."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no route to {request.url.host}", request=request)
        return await transport.handle_async_request(request)


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Running]:
    """users wired to a real shipping and notifications (own databases) for the export."""
    tokens = TestTokens()
    quiet = {"consumers_enabled": False, "relay_enabled": False}
    async with AsyncExitStack() as stack:
        shipping_db = await stack.enter_async_context(migrated_database("shipping"))
        notifications_db = await stack.enter_async_context(migrated_database("notifications"))
        users_db = await stack.enter_async_context(migrated_database("users"))
        shipping = build_shipping(ShippingSettings(database_url=shipping_db, **quiet))
        notifications = build_notifications(
            NotificationsSettings(database_url=notifications_db, dispatch_enabled=False, **quiet)
        )
        await stack.enter_async_context(app_client(shipping, tokens))
        await stack.enter_async_context(app_client(notifications, tokens))
        router = HostRouter(
            {
                "shipping.test": httpx.ASGITransport(app=shipping),
                "notifications.test": httpx.ASGITransport(app=notifications),
            }
        )
        settings = UsersSettings(
            database_url=users_db,
            kafka_namespace=kafka_namespace(),
            export_sources={
                "shipping": "http://shipping.test/api/shipping/me/export",
                "notifications": "http://notifications.test/api/notifications/me/export",
                "unreachable": "http://unreachable.test/api/unreachable/me/export",
            },
        )
        app = build_app(settings, export_transport=router)
        client = await stack.enter_async_context(app_client(app, tokens))
        running = Running(app=app, client=client, settings=settings, tokens=tokens)
        running.others = {"shipping": shipping, "notifications": notifications}  # type: ignore[attr-defined]
        yield running


async def _activity_elsewhere(platform: Running, user_id: str) -> str:
    """A shipment and a queued email for the user, written by those services' own code."""
    order = OrderConfirmed(
        order_id=new_id(),
        user_id=user_id,
        payment_id=new_id(),
        lines=[
            OrderLine(
                sku="EXP-1",
                product_id=new_id(),
                name="Caderno",
                quantity=1,
                unit_price=1500,
                line_total=1500,
            )
        ],
        total=3000,
        currency="BRL",
        shipping_address=ShippingAddress(
            recipient="Beatriz Lima",
            street="Avenida Paulista",
            number="1000",
            district="Bela Vista",
            city="São Paulo",
            state="SP",
            cep="01310100",
        ),
        shipping_choice=ShippingChoice(
            quote_id="q", carrier="correios", service="PAC", price=1500, estimated_days=4
        ),
        confirmed_at=datetime.now(UTC),
    )
    others: dict[str, Any] = platform.others  # type: ignore[attr-defined]
    async with sessionmaker_of(others["shipping"])() as session, session.begin():
        await shipments.create_for_order(session=session, envelope=Envelope(data=order))
    registered = Envelope(
        data=UserRegistered(
            user_id=user_id,
            email="bia@mail.shoptest.com.br",
            name="Beatriz Lima",
            registered_at=datetime.now(UTC),
        )
    )
    async with sessionmaker_of(others["notifications"])() as session, session.begin():
        await scheduling.registered(
            session=session,
            user_id=user_id,
            email="bia@mail.shoptest.com.br",
            name="Beatriz Lima",
            at=datetime.now(UTC),
        )
        await scheduling.queue(
            session=session,
            envelope=registered,
            template="welcome",
            user_id=user_id,
            email="bia@mail.shoptest.com.br",
            context={"name": "Beatriz Lima"},
        )
    return order.order_id


async def test_export_gathers_the_users_data_from_each_service(platform: Running) -> None:
    user_id = await platform.new_user("Beatriz Lima")
    headers = platform.headers(user_id)
    await platform.client.patch("/api/users/me", headers=headers, json={"cpf": "390.533.447-05"})
    await platform.client.post("/api/users/me/addresses", headers=headers, json=ADDRESS)
    order_id = await _activity_elsewhere(platform, user_id)

    response = await platform.client.get("/api/users/me/export", headers=headers)

    assert response.status_code == 200
    export = response.json()
    assert export["user_id"] == user_id
    assert export["profile"]["cpf"] == "390.533.447-05"
    assert [a["street"] for a in export["addresses"]] == ["Avenida Paulista"]
    assert export["preferences"]["language"] == "pt-BR"
    shipping = export["services"]["shipping"]
    assert shipping["status"] == "ok"
    assert [s["order_id"] for s in shipping["data"]["shipments"]] == [order_id]
    notifications = export["services"]["notifications"]
    assert notifications["status"] == "ok"
    assert notifications["data"]["contact"]["email"] == "bia@mail.shoptest.com.br"
    assert [d["template"] for d in notifications["data"]["deliveries"]] == ["welcome"]
    # A service that cannot answer is reported, not hidden and not a failure of the export.
    assert export["services"]["unreachable"] == {
        "status": "unavailable",
        "data": None,
        "error": "ConnectError",
    }

    stranger = await platform.client.get(
        "/api/users/me/export", headers=platform.headers(await platform.new_user())
    )
    assert stranger.json()["services"]["shipping"]["data"]["shipments"] == []


async def test_deletion_anonymises_and_tells_every_service(platform: Running) -> None:
    user_id = await platform.new_user("Carla Dias")
    headers = platform.headers(user_id)
    await platform.client.patch(
        "/api/users/me",
        headers=headers,
        json={"cpf": "529.982.247-25", "phone": "+5511912345678", "birth_date": "1985-01-02"},
    )
    await platform.client.post("/api/users/me/addresses", headers=headers, json=ADDRESS)

    accepted = await platform.client.delete("/api/users/me", headers=headers)

    assert accepted.status_code == 202
    assert accepted.json()["user_id"] == user_id
    for path in ("/api/users/me", "/api/users/me/addresses", "/api/users/me/export"):
        gone = await platform.client.get(path, headers=headers)
        assert gone.status_code == 410, path
        assert gone.headers["content-type"] == "application/problem+json"
    [event] = await wait_for_events(
        platform.settings.kafka_namespace,
        UserDeletionRequested,
        where=lambda e: e.user_id == user_id,
    )
    assert event.user_id == user_id
    async with sessionmaker_of(platform.app)() as session:
        row = await session.get(Profile, user_id)
        assert row is not None
        assert (row.email, row.name, row.phone, row.cpf, row.birth_date) == (
            None,
            "[deleted]",
            None,
            None,
            None,
        )
        assert (
            await session.scalar(
                select(func.count()).select_from(Address).where(Address.user_id == user_id)
            )
            == 0
        )
    # The CPF is free again: nothing of the deleted person is kept.
    other = await platform.new_user()
    reuse = await platform.client.patch(
        "/api/users/me", headers=platform.headers(other), json={"cpf": "529.982.247-25"}
    )
    assert reuse.status_code == 200
    again = await platform.client.delete("/api/users/me", headers=headers)
    assert again.status_code == 410


async def test_deletion_needs_a_recent_sign_in(platform: Running) -> None:
    """A bearer token alone must not erase an account: one taken from a device left signed
    in, or kept alive by refreshes for weeks, carries the sign-in it started from."""
    user_id = await platform.new_user("Denise Rocha")
    max_age = platform.settings.deletion_sign_in_max_age_seconds
    signed_in_long_ago = int(time.time()) - max_age - 60
    stale = {
        "Authorization": f"Bearer {platform.tokens.mint(user_id, auth_time=signed_in_long_ago)}"
    }
    unknown = {"Authorization": f"Bearer {platform.tokens.mint(user_id, auth_time=None)}"}

    for headers in (stale, unknown):
        refused = await platform.client.delete("/api/users/me", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/reauthentication-required")
        assert refused.json()["max_age"] == max_age
        assert refused.headers["www-authenticate"] == (
            f'Bearer error="insufficient_user_authentication", max_age="{max_age}"'
        )
    still = await platform.client.get("/api/users/me", headers=stale)  # the token still reads
    assert (still.status_code, still.json()["name"]) == (200, "Denise Rocha")

    recent = int(time.time()) - max_age + 60
    fresh = {"Authorization": f"Bearer {platform.tokens.mint(user_id, auth_time=recent)}"}
    assert (await platform.client.delete("/api/users/me", headers=fresh)).status_code == 202


def test_the_export_asks_every_service_holding_personal_data() -> None:
    sources = UsersSettings().export_sources
    assert set(sources) == {"auth", "catalog", "orders", "payments", "shipping", "notifications"}
    assert sources["catalog"] == "http://127.0.0.1:8003/api/products/me/export"
    assert all(url.endswith("/me/export") for url in sources.values())
    # A source that is no URL is refused when the service starts, not at every export.
    for wrong in ("auth:8001/api/auth/me/export", "ftp://auth/export", "http://"):
        with pytest.raises(ValidationError, match="export source 'auth'"):
            UsersSettings(export_sources={"auth": wrong})
