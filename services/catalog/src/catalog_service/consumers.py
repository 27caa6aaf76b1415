"""What the catalog learns from other contexts: what sells (trending), who received what
(verified purchases for reviews) and whose account was deleted (their reviews).

There are no multi-document transactions here, so every handler is idempotent on its own:
purchase facts are insert-only documents with deterministic ids, trending counts an order once
(atomically in Redis), and flipping `verified_purchase` to true can be repeated.
"""

from __future__ import annotations

from contracts.events.orders import OrderConfirmed
from contracts.events.shipping import ShipmentDelivered
from contracts.events.users import UserDeletionRequested
from shopkit.handlers import EventHandlers
from shopkit.mongo_outbox import Database, MongoEventContext

from catalog_service.repository import products
from catalog_service.resources import Catalog
from catalog_service.service import reviews as review_rules
from catalog_service.service.trending import day_of
from contracts import Envelope, Event


class CatalogContext(MongoEventContext):
    def __init__(self, db: Database, envelope: Envelope[Event], catalog: Catalog) -> None:
        super().__init__(db, envelope)
        self.catalog = catalog


# One inbox lookup for what all partitions brought (handlers write to MongoDB and Redis only).
handlers: EventHandlers[CatalogContext] = EventHandlers("sales", across_partitions=True)


@handlers.on(OrderConfirmed)
async def on_order_confirmed(envelope: Envelope[OrderConfirmed], ctx: CatalogContext) -> None:
    order = envelope.data
    await review_rules.record_purchases(
        ctx.db,
        kind="confirmed",
        order_id=order.order_id,
        user_id=order.user_id,
        skus=[line.sku for line in order.lines],
        at=order.confirmed_at,
    )
    await ctx.catalog.trending.record(
        order_id=order.order_id,
        day=day_of(order.confirmed_at),
        units=[(line.product_id, line.quantity) for line in order.lines],
    )


@handlers.on(ShipmentDelivered)
async def on_shipment_delivered(envelope: Envelope[ShipmentDelivered], ctx: CatalogContext) -> None:
    delivery = envelope.data
    await review_rules.record_purchases(
        ctx.db,
        kind="delivered",
        order_id=delivery.order_id,
        user_id=delivery.user_id,
        skus=delivery.skus,
        at=delivery.delivered_at,
    )
    # Reviews written before the parcel arrived become verified now.
    await review_rules.verify_reviews(
        ctx.db,
        user_id=delivery.user_id,
        product_ids=await products.ids_of_skus(ctx.db, delivery.skus),
    )


# Its own consumer group: deletions are rare and never wait behind a burst of sales.
account_handlers: EventHandlers[CatalogContext] = EventHandlers("accounts")


@account_handlers.on(UserDeletionRequested)
async def on_user_deletion(envelope: Envelope[UserDeletionRequested], ctx: CatalogContext) -> None:
    await review_rules.forget_author(ctx.catalog, user_id=envelope.data.user_id)
