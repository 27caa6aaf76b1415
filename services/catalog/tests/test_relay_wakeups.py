"""Two replicas on one database: the outbox relay runs on one of them, and a write made on the
other wakes it through the purge channel every write publishes on."""

from __future__ import annotations

from catalog_service.app import build_app
from contracts.events.catalog import ProductCreated
from shopkit.mongo_outbox import MongoOutboxRelay
from shopkit.testing import app_client, eventually, wait_for_events

from .conftest import Running, running_catalog
from .factories import create_product


async def test_a_write_on_another_replica_wakes_the_publishing_relay() -> None:
    # Idle polls far apart: the write below must come through the wake-up.
    async with running_catalog(relay_signalled_poll_seconds=600) as publisher:
        relay: MongoOutboxRelay = publisher.app.state.catalog.relay

        async def following_the_channel() -> bool:
            return relay.is_leader and relay.signalled

        await eventually(following_the_channel)
        wakeups = 0
        wake = relay.wake

        def counting_wake() -> None:
            nonlocal wakeups
            wakeups += 1
            wake()

        relay.wake = counting_wake  # type: ignore[method-assign]
        other_app = build_app(publisher.settings)
        async with app_client(other_app, publisher.tokens) as client:
            other = Running(
                app=other_app, client=client, settings=publisher.settings, tokens=publisher.tokens
            )
            assert not other_app.state.catalog.relay.is_leader
            created = await create_product(other)

            async def woken() -> bool:
                return wakeups > 0

            await eventually(woken)
            events = await wait_for_events(
                publisher.namespace, ProductCreated, where=lambda e: e.product_id == created["id"]
            )

    assert [e.version for e in events] == [1]
