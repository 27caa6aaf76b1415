"""What shipping reacts to: catalog weights, confirmed and cancelled orders (and requests to
cancel them), account deletion."""

from __future__ import annotations

from contracts.events.catalog import ProductCreated, ProductDeactivated, ProductUpdated
from contracts.events.orders import (
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderFulfilmentReleased,
)
from contracts.events.users import UserDeletionRequested
from shopkit.handlers import EventHandlers
from shopkit.inbox import EventContext

from contracts import Envelope
from shipping_service import repository
from shipping_service.service import shipments

# One transaction for what all partitions brought (the handlers only touch the database),
# fetched in batches: a shipment may be created a moment after its order is confirmed.
handlers: EventHandlers[EventContext] = EventHandlers(
    "events", across_partitions=True, linger_seconds=0.2
)


@handlers.on(ProductCreated)
async def on_product_created(envelope: Envelope[ProductCreated], ctx: EventContext) -> None:
    await _project(envelope.data, ctx)


@handlers.on(ProductUpdated)
async def on_product_updated(envelope: Envelope[ProductUpdated], ctx: EventContext) -> None:
    await _project(envelope.data, ctx)


async def _project(product: ProductCreated | ProductUpdated, ctx: EventContext) -> None:
    await repository.upsert_product(
        ctx.session,
        product_id=product.product_id,
        sku=product.sku,
        weight_grams=product.weight_grams,
        is_active=product.is_active,
        version=product.version,
    )


@handlers.on(ProductDeactivated)
async def on_product_deactivated(envelope: Envelope[ProductDeactivated], ctx: EventContext) -> None:
    await repository.deactivate_product(
        ctx.session, product_id=envelope.data.product_id, version=envelope.data.version
    )


@handlers.on(OrderConfirmed)
async def on_order_confirmed(envelope: Envelope[OrderConfirmed], ctx: EventContext) -> None:
    created = await shipments.create_for_order(session=ctx.session, envelope=envelope)
    if created is not None:
        await ctx.emit(created)


@handlers.on(OrderCancelled)
async def on_order_cancelled(envelope: Envelope[OrderCancelled], ctx: EventContext) -> None:
    await _stop_parcel(envelope.data, ctx)


@handlers.on(OrderFulfilmentReleased)
async def on_order_fulfilment_released(
    envelope: Envelope[OrderFulfilmentReleased], ctx: EventContext
) -> None:
    release = envelope.data
    await shipments.release_for_order(
        session=ctx.session,
        order_id=release.order_id,
        user_id=release.user_id,
        released_at=release.released_at,
    )


@handlers.on(OrderCancellationRequested)
async def on_order_cancellation_requested(
    envelope: Envelope[OrderCancellationRequested], ctx: EventContext
) -> None:
    """A parcel stopped in time (or not made yet) answers with ShipmentCancelled; one already
    gone needs no answer, its ShipmentDispatched has told orders."""
    await _stop_parcel(envelope.data, ctx)


async def _stop_parcel(
    order: OrderCancelled | OrderCancellationRequested, ctx: EventContext
) -> None:
    cancelled = await shipments.cancel_for_order(session=ctx.session, cancellation=order)
    if cancelled is not None:
        await ctx.emit(cancelled)


# Its own consumer group: deletions never wait behind a burst of orders, and an erasure's
# transaction never holds the user's lock an order's transaction takes (`repository.ERASURES`).
account_handlers: EventHandlers[EventContext] = EventHandlers("accounts")


@account_handlers.on(UserDeletionRequested)
async def on_user_deletion(envelope: Envelope[UserDeletionRequested], ctx: EventContext) -> None:
    await shipments.anonymise_user(session=ctx.session, user_id=envelope.data.user_id)
