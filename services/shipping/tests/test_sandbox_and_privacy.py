"""The sandbox carrier's background mode, and the user's data: export and anonymisation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from contracts.events.users import UserDeletionRequested
from shipping_service import repository
from shipping_service.app import build_app
from shipping_service.config import ShippingSettings
from shipping_service.models import ErasedUser
from shipping_service.service import shipments
from shopkit.app import sessionmaker_of
from shopkit.testing import app_client, eventually, kafka_namespace, migrated_database, publish

from contracts import Envelope, new_id

from . import factories
from .conftest import Running
from .test_lifecycle import _confirmed_order


async def test_background_sandbox_delivers_open_shipments() -> None:
    async with migrated_database("shipping") as url:
        settings = ShippingSettings(
            database_url=url,
            kafka_namespace=kafka_namespace(),
            consumers_enabled=False,
            relay_enabled=False,
            sandbox_carrier_enabled=True,
            sandbox_step_seconds=0.2,
            sandbox_poll_seconds=0.1,
        )
        app = build_app(settings)
        async with app_client(app) as client:
            order = factories.order_confirmed(user_id=new_id(), lines=[("SKU-BG", 1)])
            async with sessionmaker_of(app)() as session, session.begin():
                created = await shipments.create_for_order(
                    session=session, envelope=Envelope(data=order)
                )
            assert created is not None

            async def delivered() -> object:
                state = (await client.get(f"/api/shipping/track/{created.tracking_number}")).json()
                return state if state["status"] == "delivered" else None

            state = await eventually(delivered, timeout=30, interval=0.2)
    assert [e["status"] for e in state["events"]] == [
        "created",
        "posted",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]


async def test_export_and_deletion(shipping: Running) -> None:
    user_id, order_id, shipment = await _confirmed_order(shipping)
    headers = shipping.tokens.headers(user_id)
    export = (await shipping.client.get("/api/shipping/me/export", headers=headers)).json()
    assert export["user_id"] == user_id
    assert [s["order_id"] for s in export["shipments"]] == [order_id]
    assert export["addresses"][0]["recipient"] == "Maria Silva"
    other = (
        await shipping.client.get(
            "/api/shipping/me/export", headers=shipping.tokens.headers(new_id())
        )
    ).json()
    assert other["shipments"] == []

    await publish(
        shipping.settings.kafka_namespace,
        UserDeletionRequested(user_id=user_id, requested_at=datetime.now(UTC)),
    )

    async def anonymised() -> object:
        body = (await shipping.client.get("/api/shipping/me/export", headers=headers)).json()
        return body if body["addresses"][0]["recipient"] == "[removed]" else None

    body = await eventually(anonymised, timeout=30, interval=0.3)
    address = body["addresses"][0]
    assert address["street"] == "[removed]"
    assert address["number"] == ""
    assert address["complement"] is None
    assert address["city"] == "[removed]"
    assert address["cep"] == "01304000"
    assert address["state"] == "SP"
    label = await shipping.client.get(
        f"/api/shipping/shipments/{shipment['shipment_id']}/label",
        params={"format": "zpl"},
        headers=headers,
    )
    assert "Maria" not in label.text
    assert "Augusta" not in label.text
    tracking = (
        await shipping.client.get(f"/api/shipping/track/{shipment['tracking_number']}")
    ).json()
    assert tracking["destination_city"] is None


async def _deleted(shipping: Running, user_id: str) -> None:
    await publish(
        shipping.settings.kafka_namespace,
        UserDeletionRequested(user_id=user_id, requested_at=datetime.now(UTC)),
    )

    async def recorded() -> bool:
        async with sessionmaker_of(shipping.app)() as session:
            return await session.get(ErasedUser, user_id) is not None

    await eventually(recorded, timeout=30, interval=0.2)


async def _address_of(shipping: Running, order_id: str) -> dict[str, object]:
    async with sessionmaker_of(shipping.app)() as session:
        shipment = await repository.shipment_for_order(session, order_id)
    assert shipment is not None
    return dict(shipment.address)


async def test_a_shipment_created_after_the_deletion_keeps_no_address(shipping: Running) -> None:
    """The deletion (users.events) and the order's confirmation (orders.events) come on two
    topics: the erasure found no shipment, and the one created next kept the address for good."""
    user_id = new_id()
    await _deleted(shipping, user_id)
    order = factories.order_confirmed(user_id=user_id, lines=[("SKU-GONE", 1)])
    async with sessionmaker_of(shipping.app)() as session, session.begin():
        created = await shipments.create_for_order(session=session, envelope=Envelope(data=order))
    assert created is not None
    address = await _address_of(shipping, order.order_id)
    assert (address["recipient"], address["street"], address["cep"]) == (
        "[removed]",
        "[removed]",
        "01304000",
    )


async def test_a_shipment_being_created_when_the_deletion_arrives_is_anonymised_once_stored(
    shipping: Running,
) -> None:
    """The erasure cannot see a row not committed yet: it waits for the transaction creating
    it, then finds and anonymises it."""
    user_id = new_id()
    order = factories.order_confirmed(user_id=user_id, lines=[("SKU-RACE", 1)])
    async with sessionmaker_of(shipping.app)() as session, session.begin():
        await shipments.create_for_order(session=session, envelope=Envelope(data=order))
        await publish(
            shipping.settings.kafka_namespace,
            UserDeletionRequested(user_id=user_id, requested_at=datetime.now(UTC)),
        )
        await asyncio.sleep(2)  # the deletion is handled meanwhile, as far as it can go
        async with sessionmaker_of(shipping.app)() as other:
            assert await other.get(ErasedUser, user_id) is None  # it waits for this one

    async def anonymised() -> bool:
        return (await _address_of(shipping, order.order_id))["recipient"] == "[removed]"

    await eventually(anonymised, timeout=30, interval=0.2)
